"""The data layer: Video-R1 records, frame sampling, video decoding, prompts, and a demo dataset.

- records.py: load_records / VideoQARecord (annotation files -> validated records)
- sampling.py: sample_frame_indices, target_size (Qwen2.5-VL rules; FrameSamplingConfig is rova/config/data.py)
- screening.py: screen_records (records a run cannot use: skipped and counted, too many refuse the run)
- video.py: read_clip / probe_video / filter_decodable (decord or PyAV; broken videos skipped)
- prompts.py: build_prompt_text / build_messages (the Video-R1 prompt)
- task_mixing.py: single_kind_batches (data.task_mixing=per_batch: an epoch's single-kind generation batches)
- demo.py: build_demo_dataset (rendered, verifiable clips; `python -m rova.data.demo --out DIR`)

Submodules are imported where used (no cv2/decord on import). The `data.*` settings are rova/config/data.py.
"""
