"""Qwen2.5-VL (3B, 7B, 32B, 72B): patch 14, merge 2 (frame sides in multiples of 28), `second_per_grid_ts`.

Time reaches the model as M-RoPE time positions: `second_per_grid_ts` (seconds per temporal patch) comes from
the sampling fps in the video metadata. transformers 5.17 truncates that interval before scaling it; the
correction (`_qwen2_5_vl_rope`, docs/upstream_fixes.md) is installed before any model is built.
"""

from __future__ import annotations

from typing import ClassVar

from rova.models.families.base import ClipTiming, ModelFamily


class Qwen25VL(ModelFamily):
    name = "qwen2_5_vl"
    title = "Qwen2.5-VL"
    model_types = ("qwen2_5_vl",)
    patch_size = 14
    video_keys: ClassVar[tuple[str, ...]] = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")
    tiny_dir_name = "tiny-qwen2_5_vl"
    chat_template_name = "qwen2_5_vl"

    def model_class(self, model_type: str):
        from transformers import Qwen2_5_VLForConditionalGeneration

        return Qwen2_5_VLForConditionalGeneration

    def inner_model_classes(self) -> tuple[type, ...]:
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

        return (Qwen2_5_VLModel,)

    def install_fixes(self) -> None:
        from rova.models.families._qwen2_5_vl_rope import install_mrope_time_fix

        install_mrope_time_fix()

    def video_metadata(self, num_frames: int, timing: ClipTiming) -> dict:
        # `sampled_fps` (from fps and frame indices) must be the true sampling rate: it sets second_per_grid_ts.
        return {"total_num_frames": int(num_frames), "fps": float(timing.sample_fps),
                "frames_indices": list(range(num_frames))}

    def video_outputs(self, out) -> dict:
        import torch

        return {
            "pixel_values_videos": out["pixel_values_videos"],
            "video_grid_thw": out["video_grid_thw"],
            "second_per_grid_ts": torch.as_tensor(out["second_per_grid_ts"], dtype=torch.float32).reshape(-1),
        }

    def tiny_model(self, tokenizer, spec, token_ids: dict[str, int]):
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        text = self.tiny_text_config(tokenizer, spec, token_ids)
        text["rope_parameters"]["rope_theta"] = 1e6
        config = Qwen2_5_VLConfig(
            text_config=dict(
                text,
                bos_token_id=None,  # Qwen2.5 has no BOS token; matching the tokenizer avoids a config rewrite
                eos_token_id=token_ids[self.end_of_turn],
                tie_word_embeddings=True,
            ),
            vision_config=dict(self.tiny_vision_config(spec), window_size=56,
                               fullatt_block_indexes=[spec.vision_depth - 1]),
            **self.tiny_token_config(token_ids),
            tie_word_embeddings=True,
        )
        return Qwen2_5_VLForConditionalGeneration(config)

    def tiny_processor(self, tokenizer, chat_template: str):
        from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

        pixels = dict(min_pixels=self.frame_factor ** 2, max_pixels=(4 * self.frame_factor) ** 2)
        return Qwen2_5_VLProcessor(
            image_processor=Qwen2VLImageProcessor(**pixels),
            video_processor=Qwen2VLVideoProcessor(**pixels),
            tokenizer=tokenizer,
            chat_template=chat_template,
        )


FAMILY = Qwen25VL()
