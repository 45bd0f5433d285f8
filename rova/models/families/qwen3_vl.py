"""Qwen3-VL (2B, 4B, 8B, 32B dense; 30B-A3B MoE): patch 16, merge 2 (frame sides in multiples of 32).

Time reaches the model as TEXT: the processor writes `<{t:.1f} seconds>` before each temporal patch, t being
the mean time of the patch's two frames, computed from the video metadata (frame indices / fps). So the
metadata carries the sampled frames' true indices in the source and the source's frame rate: the rendered
times are the true times of the frames (without metadata the processor assumes 24 fps). M-RoPE positions are
plain per-patch steps here (no `second_per_grid_ts`); `mm_token_type_ids` is mandatory whenever a grid is
passed. The vision tower also returns DeepStack features (one row per visual token, per injection layer),
indexed per clip by shared vision encoding like the embeddings.
"""

from __future__ import annotations

from typing import ClassVar

from rova.models.families.base import ClipTiming, ModelFamily


class Qwen3VL(ModelFamily):
    name = "qwen3_vl"
    title = "Qwen3-VL"
    model_types = ("qwen3_vl", "qwen3_vl_moe")
    patch_size = 16
    per_token_feature_fields: ClassVar[tuple[str, ...]] = ("deepstack_features",)
    decoder_visual_kwargs: ClassVar[tuple[str, str] | None] = ("visual_pos_masks", "deepstack_visual_embeds")
    tiny_dir_name = "tiny-qwen3_vl"
    chat_template_name = "qwen3_vl"

    def model_class(self, model_type: str):
        from transformers import Qwen3VLForConditionalGeneration, Qwen3VLMoeForConditionalGeneration

        return Qwen3VLMoeForConditionalGeneration if model_type == "qwen3_vl_moe" else Qwen3VLForConditionalGeneration

    def inner_model_classes(self) -> tuple[type, ...]:
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLModel
        from transformers.models.qwen3_vl_moe.modeling_qwen3_vl_moe import Qwen3VLMoeModel

        return (Qwen3VLModel, Qwen3VLMoeModel)

    def video_metadata(self, num_frames: int, timing: ClipTiming) -> dict:
        if timing.indices is not None and timing.source_fps:
            if len(timing.indices) != num_frames:
                raise ValueError(f"clip timing has {len(timing.indices)} frame indices for {num_frames} frames")
            indices = [int(i) for i in timing.indices]
            total = int(timing.source_frames or (max(indices) + 1))
            return {"total_num_frames": total, "fps": float(timing.source_fps), "frames_indices": indices}
        # Source unknown (a clip built in memory): frames i / sample_fps seconds apart, starting at 0.
        return {"total_num_frames": int(num_frames), "fps": float(timing.sample_fps),
                "frames_indices": list(range(num_frames))}

    def video_text_tokens(self, processor, timing: ClipTiming) -> int:
        """Per temporal patch: its `<t seconds>` label plus its own vision start / end tokens."""
        num_frames = len(timing.indices) if timing.indices is not None else 0
        if num_frames == 0:
            return 0
        metadata = self.video_metadata(num_frames, timing)
        times = processor._calculate_timestamps(metadata["frames_indices"], metadata["fps"], self.temporal_patch_size)
        labels = [f"<{t:.1f} seconds>" for t in times]
        return sum(len(ids) for ids in processor.tokenizer(labels, add_special_tokens=False)["input_ids"]) + 2 * len(times)

    def tiny_model(self, tokenizer, spec, token_ids: dict[str, int]):
        from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

        text = self.tiny_text_config(tokenizer, spec, token_ids)
        text["rope_parameters"].update(rope_theta=5e6, mrope_interleaved=True)
        config = Qwen3VLConfig(
            text_config=dict(text, head_dim=spec.hidden_size // spec.num_attention_heads),
            vision_config=dict(self.tiny_vision_config(spec), num_position_embeddings=256,
                               deepstack_visual_indexes=[0]),
            **self.tiny_token_config(token_ids),
            tie_word_embeddings=True,
        )
        return Qwen3VLForConditionalGeneration(config)

    def tiny_processor(self, tokenizer, chat_template: str):
        from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

        factor = self.frame_factor
        size = {"shortest_edge": factor ** 2, "longest_edge": (4 * factor) ** 2}
        return Qwen3VLProcessor(
            image_processor=Qwen2VLImageProcessor(size=size, patch_size=self.patch_size, merge_size=self.merge_size),
            video_processor=Qwen3VLVideoProcessor(size=size, patch_size=self.patch_size, merge_size=self.merge_size),
            tokenizer=tokenizer,
            chat_template=chat_template,
        )


FAMILY = Qwen3VL()
