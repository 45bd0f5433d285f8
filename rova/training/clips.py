"""Clean, shuffled and corrupted views of a sample's clip, decoded once and seeded per (sample, step)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from rova.config.corruption import CorruptionConfig
from rova.config.data import FrameSamplingConfig
from rova.config.branches import CLEAN, CORRUPTED, SHUFFLED
from rova.corruption import apply_random_corruption, replay, shuffle_frames
from rova.corruption import CorruptionRecord
from rova.inference.clips import View, read_view
from rova.inference.seeding import stable_seed


class ClipSource:
    def __init__(
        self, sampling: FrameSamplingConfig, backend: str, corruption: CorruptionConfig, seed: int, cache_size: int = 64,
        shuffle_mode: str = "uniform", blank_video: bool = False,
    ):
        self.sampling = sampling
        self.backend = backend
        self.corruption = corruption
        self.seed = seed
        self.cache_size = cache_size
        self.shuffle_mode = shuffle_mode  # tgrpo.shuffle: "uniform" (Video-R1) or "derangement"
        self.blank_video = blank_video    # data.blank_video: every view is flat grey (a control)
        self._cache: OrderedDict[str, View] = OrderedDict()
        self._cache_lock = threading.Lock()  # decode workers (rova.training.prefetch) share the cache

    def clean(self, row: dict) -> View:
        path = row["media_path"]
        with self._cache_lock:
            if path in self._cache:
                self._cache.move_to_end(path)
                return self._cache[path]
        # Decoded outside the lock: two threads may decode one path at once; both get the same frames.
        view = read_view(path, row.get("data_type"), self.sampling, self.backend, self.blank_video)
        with self._cache_lock:
            self._cache[path] = view
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return view

    def views(self, row: dict, step: int, shuffled: bool, corrupted: bool) -> dict[str, View | None]:
        """The clean view of a prompt and, when wanted, its shuffled (videos only) and corrupted views at `step`:
        a pure function of (row, step), so it gives the same frames inline or in a decode worker."""
        clean = self.clean(row)
        return {
            CLEAN: clean,
            SHUFFLED: self.shuffled(row, step) if shuffled and not clean.is_image else None,
            CORRUPTED: self.corrupted(row, step) if corrupted else None,
        }

    def corruption_seed(self, row: dict, step: int) -> int:
        """Replayed memory rows carry their stored seed; fresh rows draw one from (run seed, sample, step)."""
        if row.get("corruption_seed") is not None:
            return int(row["corruption_seed"])
        return stable_seed(self.seed, "corrupt", row["sample_id"], step)

    def corrupted(self, row: dict, step: int) -> View:
        clean = self.clean(row)
        seed = self.corruption_seed(row, step)
        if row.get("corruption_record"):
            frames = replay(clean.frames, CorruptionRecord.from_dict(row["corruption_record"]))
            record = row["corruption_record"]
        else:
            frames, rec = apply_random_corruption(clean.frames, self.corruption, seed)
            record = rec.to_dict() if rec is not None else {"family": "clean", "seed": seed}
        return View(frames, clean.timing, clean.is_image, record)

    def perturbed(self, row: dict, step: int) -> View:
        """memory.augment_easy's clip for an all-right group: a corruption of the mix drawn given that it corrupts
        (rova.training.difficulty_augment.perturbed_clip), seeded by (run seed, sample, step) apart from the
        corrupted branch's draw; its record is replayable as the corrupted view's."""
        from rova.training.difficulty_augment import perturbed_clip

        clean = self.clean(row)
        frames, record = perturbed_clip(clean.frames, self.corruption,
                                        stable_seed(self.seed, "augment-easy", row["sample_id"], step))
        return View(frames, clean.timing, clean.is_image, record)

    def shuffled(self, row: dict, step: int) -> View:
        clean = self.clean(row)
        frames, permutation = shuffle_frames(
            clean.frames, stable_seed(self.seed, "shuffle", row["sample_id"], step), mode=self.shuffle_mode
        )
        return View(frames, clean.timing, clean.is_image, {"permutation": [int(i) for i in permutation]})
