"""Vision-tower work per trainer pass: calls, clips, patches and (optionally) forward FLOPs.

A measuring tool for tests and benchmarks (tests/training/test_video_trainer.py, tests/models/test_shared_vision_encoding.py,
benchmarks/vision_encoding_bench.py): it wraps the vision tower's forward of the given models and the
trainer's pass methods, without changing what they compute, and attributes every tower call to the pass
that is running.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager

PASSES = ("generation", "kl_reward", "old_policy", "reference", "policy", "kl_aux")


class VisionProbe:
    """Counts per pass (the phase "other" outside any attributed pass) for the vision towers of `models`."""

    def __init__(self, *models, flops: bool = False):
        self.phase = "other"
        self.calls: Counter = Counter()
        self.clips: Counter = Counter()
        self.patches: Counter = Counter()
        self.flops: Counter = Counter()
        self.tower_seconds: Counter = Counter()  # wall time inside the vision tower's forward, per pass
        self.seconds: Counter = Counter()  # wall time per pass, a nested pass's time counted in the nested one only
        self._nested = 0.0  # seconds spent in passes nested inside the current one
        self._wrapped = []
        for model in models:
            if model is None:
                continue
            from rova.models.lora import vision_tower

            _, visual = vision_tower(model)  # any family, any wrapper (PEFT, DDP)
            visual.forward = self._counted(visual.forward, flops)
            self._wrapped.append(visual)

    def _counted(self, forward, with_flops: bool):
        def counted(hidden_states, grid_thw, *args, **kwargs):
            start = time.perf_counter()
            if with_flops:
                from torch.utils.flop_counter import FlopCounterMode

                with FlopCounterMode(display=False) as counter:
                    out = forward(hidden_states, grid_thw, *args, **kwargs)
                self.flops[self.phase] += counter.get_total_flops()
            else:
                out = forward(hidden_states, grid_thw, *args, **kwargs)
            self.tower_seconds[self.phase] += time.perf_counter() - start  # FLOP counting included when on
            self.calls[self.phase] += 1
            self.clips[self.phase] += int(grid_thw.shape[0])
            self.patches[self.phase] += int(hidden_states.shape[0])
            return out

        return counted

    @contextmanager
    def during(self, phase: str):
        previous, self.phase = self.phase, phase
        outer_nested, self._nested = self._nested, 0.0
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[phase] += elapsed - self._nested
            self._nested = outer_nested + elapsed
            self.phase = previous

    def close(self) -> None:
        for visual in self._wrapped:
            del visual.forward  # back to the class's forward
        self._wrapped = []


def attribute_passes(trainer, probe: VisionProbe) -> None:
    """Wrap (not replace) the trainer's passes on this instance so each tower call is counted under its pass:
    generation, kl_reward, old_policy / reference log-probs, policy (the loss) and kl_aux."""
    wrapped = {name: getattr(trainer, name) for name in (
        "generate_rows", "_measure_kl", "_get_per_token_logps_and_entropies", "_compute_loss", "_kl_aux_loss")}

    def phase(name: str, label: str):
        def run(*args, **kwargs):
            with probe.during(label):
                return wrapped[name](*args, **kwargs)
        return run

    def logps(model, *args, **kwargs):
        reference = probe.phase == "reference" or model is trainer.ref_model
        label = "policy" if probe.phase == "policy" else ("reference" if reference else "old_policy")
        with probe.during(label):
            return wrapped["_get_per_token_logps_and_entropies"](model, *args, **kwargs)

    reference_model = trainer._reference_model

    @contextmanager
    def reference_pass():  # with LoRA the reference pass is the policy with its adapter disabled
        with reference_model() as model, probe.during("reference"):
            yield model

    trainer.generate_rows = phase("generate_rows", "generation")
    trainer._measure_kl = phase("_measure_kl", "kl_reward")
    trainer._compute_loss = phase("_compute_loss", "policy")
    trainer._kl_aux_loss = phase("_kl_aux_loss", "kl_aux")
    trainer._get_per_token_logps_and_entropies = logps
    trainer._reference_model = reference_pass
