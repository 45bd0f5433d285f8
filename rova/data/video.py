"""Decode the sampled frames of a video (decord or PyAV) and resize them by the Qwen2.5-VL rules.

Also: a segment of a video (`segment=(start, end)` seconds: frames are sampled inside it only), and
frame folders (a directory of JPEG/PNG frames, sorted naturally, at a stated fps; read_frame_folder),
as evaluation benchmarks ship them.

transformers 5 decodes video paths only through torchcodec, so we decode ourselves and hand the
processor a uint8 [T, H, W, 3] array plus the true sampling fps (`do_sample_frames=False`).

Failures raise VideoDecodeError naming the path and the reason. Callers skip and count such
videos (filter_decodable); they never substitute another video.
"""

from __future__ import annotations

import logging
import math
import os
import re
import struct
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import cv2
import numpy as np

from rova.config.data import FrameSamplingConfig
from rova.data.probe_pool import probe_all
from rova.data.sampling import sample_frame_indices, target_size
from rova.data.timing import ClipTiming
from rova.errors import VideoDecodeError

if TYPE_CHECKING:
    from rova.data.records import VideoQARecord

log = logging.getLogger(__name__)

BACKENDS = ("decord", "pyav")
# Image files a frame folder may hold (anything else in the folder is ignored).
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# (start, end) in seconds; None = from the first frame / to the last one.
Segment = tuple[Optional[float], Optional[float]]

# Top-level ISO-BMFF (mp4/mov) box types a file may start with.
_BMFF_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp"}
# Boxes that hold the index or the frames: one of these cut short means frames are missing.
_BMFF_MEDIA_BOXES = {b"moov", b"mdat", b"moof"}


@dataclass
class Clip:
    """Sampled, resized frames of one video and the numbers the processor needs."""

    frames: np.ndarray  # uint8 [T, H, W, 3], RGB, H and W multiples of cfg.image_factor
    sample_fps: float  # the TRUE rate of the sampled frames: T / duration
    indices: np.ndarray  # int64 [T], source frame indices
    source_fps: float
    total_frames: int
    path: str

    @property
    def nframes(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        return self.total_frames / self.source_fps

    @property
    def timing(self) -> ClipTiming:
        """When each sampled frame was taken (the family adapter turns it into video metadata / timestamps)."""
        return ClipTiming(float(self.sample_fps), tuple(int(i) for i in self.indices), float(self.source_fps),
                          int(self.total_frames))


@dataclass
class VideoInfo:
    """What a successful probe learned about a video (the frames were decoded, then dropped)."""

    path: str
    total_frames: int
    source_fps: float
    sample_fps: float
    nframes: int
    source_height: int
    source_width: int
    height: int  # after resizing
    width: int
    indices: tuple[int, ...] = ()  # source frame indices of the sampled frames

    @property
    def timing(self) -> ClipTiming:
        return ClipTiming(float(self.sample_fps), tuple(self.indices), float(self.source_fps), int(self.total_frames))


def _check_mp4_structure(path: str, size: int) -> None:
    """Detect truncated mp4/mov files from their top-level boxes, before any decoder touches them.

    A decoder on a truncated mp4 may fail, hang while seeking, or return garbage for the missing
    tail; the box sizes say for certain whether the file is complete. Non-BMFF files pass through,
    and so do junk bytes after a complete index and media box (some tools append padding).
    """
    complete: set[bytes] = set()

    def cut(problem: str, box_type: bytes | None) -> bool:
        """True to stop walking (harmless trailing bytes); raises if media is missing."""
        if box_type not in _BMFF_MEDIA_BOXES and {b"moov", b"mdat"} <= complete:
            log.debug("%s: ignoring trailing bytes after the media (%s)", path, problem)
            return True
        raise VideoDecodeError(f"{path}: truncated mp4 ({problem}; file incomplete or cut)")

    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8 or head[4:8] not in _BMFF_FIRST_BOXES:
            return
        offset = 0
        while offset < size:
            handle.seek(offset)
            header = handle.read(16)
            if len(header) < 8:
                if cut(f"partial box header at byte {offset}", None):
                    break
            box_size, box_type = struct.unpack(">I4s", header[:8])
            name = box_type.decode("latin-1")
            if box_size == 1:
                if len(header) < 16:
                    if cut(f"partial box header at byte {offset}", box_type):
                        break
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:  # the box runs to the end of the file
                box_size = size - offset
            if box_size < 8:
                if cut(f"box '{name}' at byte {offset} has impossible size {box_size}", box_type):
                    break
            if offset + box_size > size:
                problem = f"box '{name}' declares {box_size} bytes, only {size - offset} remain"
                if cut(problem, box_type):
                    break
            complete.add(box_type)
            offset += box_size
    if b"moov" not in complete:
        raise VideoDecodeError(f"{path}: mp4 has no complete 'moov' box (index missing: file incomplete or cut)")


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise VideoDecodeError(f"{path}: file not found")
    if not os.path.isfile(path):
        raise VideoDecodeError(f"{path}: not a regular file")
    size = os.path.getsize(path)
    if size == 0:
        raise VideoDecodeError(f"{path}: file is empty (0 bytes)")
    _check_mp4_structure(path, size)


def segment_frame_range(total_frames: int, fps: float, segment: Segment) -> tuple[int, int]:
    """[first, last] frame indices (inclusive) of a (start, end) segment in seconds; ValueError if it holds none.

    Frame i is taken to show time i / fps (as MVBench's and lmms-eval's segment readers do); the bounds
    are rounded to the nearest frame and clamped to the video.
    """
    start, end = segment
    duration = total_frames / fps
    first = 0 if start is None else max(0, int(round(start * fps)))
    last = total_frames - 1 if end is None else min(total_frames - 1, int(round(end * fps)))
    if first > total_frames - 1:
        raise ValueError(f"segment starts at {start:g} s, after the video ends ({duration:.2f} s)")
    if last < first:
        raise ValueError(f"segment [{start}, {end}] s holds no frames of this {duration:.2f} s video")
    return first, last


def _plan(
    path: str, total_frames: int, fps: float, cfg: FrameSamplingConfig, segment: Segment | None = None
) -> tuple[np.ndarray, float]:
    if not fps or not np.isfinite(fps) or fps <= 0:
        raise VideoDecodeError(f"{path}: invalid frame rate {fps!r} (must be > 0)")
    if total_frames <= 0:
        raise VideoDecodeError(f"{path}: video has no frames")
    first, count = 0, total_frames
    try:
        if segment is not None and segment != (None, None):
            first, last = segment_frame_range(total_frames, fps, segment)
            count = last - first + 1
        indices, sample_fps = sample_frame_indices(count, fps, cfg)
    except ValueError as exc:
        where = "" if first == 0 and count == total_frames else f" (segment {segment[0]}-{segment[1]} s)"
        raise VideoDecodeError(f"{path}: {exc}{where}") from None
    return indices + first, sample_fps


def _decode_decord(
    path: str, cfg: FrameSamplingConfig, segment: Segment | None = None
) -> tuple[np.ndarray, np.ndarray, float, float, int]:
    from rova.data.decord_import import decord_module

    decord = decord_module()

    try:
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        total, fps = len(reader), float(reader.get_avg_fps())
    except Exception as exc:  # decord raises RuntimeError / DECORDError with native messages
        raise VideoDecodeError(f"{path}: cannot open with decord ({_short(exc)})") from None
    indices, sample_fps = _plan(path, total, fps, cfg, segment)
    try:
        batch = reader.get_batch(indices.tolist())
        frames = batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)
    except Exception as exc:
        raise VideoDecodeError(f"{path}: decord failed to decode the sampled frames ({_short(exc)})") from None
    return frames, indices, sample_fps, fps, total


def _decode_pyav(
    path: str, cfg: FrameSamplingConfig, segment: Segment | None = None
) -> tuple[np.ndarray, np.ndarray, float, float, int]:
    import av

    try:
        container = av.open(path)
    except Exception as exc:
        raise VideoDecodeError(f"{path}: cannot open with PyAV ({_short(exc)})") from None
    with container:
        if not container.streams.video:
            raise VideoDecodeError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        total = int(stream.frames or 0)
        if total <= 0 and stream.duration and stream.time_base and fps > 0:
            # Containers without a frame count: estimate from the duration (as decord does).
            total = int(round(float(stream.duration * stream.time_base) * fps))
        indices, sample_fps = _plan(path, total, fps, cfg, segment)
        wanted = set(indices.tolist())
        last = int(indices[-1])
        kept: list[np.ndarray] = []
        decoded = 0
        try:
            # Sequential decode (no seeking); convert only the frames we keep.
            for decoded, frame in enumerate(container.decode(stream), start=1):
                if decoded - 1 in wanted:
                    kept.append(frame.to_ndarray(format="rgb24"))
                if decoded - 1 >= last:
                    break
        except Exception as exc:
            raise VideoDecodeError(
                f"{path}: PyAV failed after {decoded} frames ({_short(exc)}); file truncated or corrupt?"
            ) from None
    if len(kept) != len(indices):
        raise VideoDecodeError(
            f"{path}: only {decoded} frames decodable but the container declares {total} (truncated?)"
        )
    return np.stack(kept), indices, sample_fps, fps, total


# decord's native messages carry "[13:01:25] /project/src/video/ffmpeg/threaded_decoder.cc:218: " per frame of its
# C++ stack, then a stack trace: neither says anything about the clip.
_DECORD_NOISE = re.compile(r"\[\d{2}:\d{2}:\d{2}\] \S+:\d+: ")


def _short(exc: BaseException) -> str:
    text = _DECORD_NOISE.sub("", str(exc)).split("Stack trace:")[0]
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [T, H, W, 3] -> uint8 [T, height, width, 3], exactly as qwen-vl-utils resizes video frames.

    qwen-vl-utils (Video-R1's and Qwen's own preprocessing) calls torchvision's resize with BICUBIC and
    antialias=True on the uint8 frames; that is torch's antialiased bicubic uint8 kernel, called here
    directly, so a clip the model sees in training has the pixels it would see in Qwen's pipeline. The
    kernel works in fixed point and gives the same bytes on every CPU path (AVX512, AVX2, the portable
    default: tests/data/test_video_decode.py checks it), and it is ~5x faster than cv2's INTER_AREA here.
    """
    import torch
    import torch.nn.functional as F

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"resize_frames needs uint8 [T, H, W, 3], got {frames.shape} {frames.dtype}")
    if frames.shape[1:3] == (height, width):
        return np.ascontiguousarray(frames)
    # [T, H, W, 3] viewed as NCHW in channels-last memory: the kernel's fast path, and no copy either way.
    source = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    resized = F.interpolate(source, size=(height, width), mode="bicubic", antialias=True, align_corners=False)
    return np.ascontiguousarray(resized.permute(0, 2, 3, 1).numpy())


def _decode_sampled(
    path: str, cfg: FrameSamplingConfig, backend: str, segment: Segment | None = None
) -> tuple[np.ndarray, np.ndarray, float, float, int, tuple[int, int]]:
    """Checked decode of the sampled frames: (frames, indices, sample_fps, fps, total, target (h, w))."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    _check_file(path)
    decode = _decode_decord if backend == "decord" else _decode_pyav
    frames, indices, sample_fps, fps, total = decode(path, cfg, segment)
    if frames.ndim != 4 or frames.shape[0] != len(indices) or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise VideoDecodeError(
            f"{path}: decoder returned frames of shape {frames.shape} {frames.dtype}, "
            f"expected ({len(indices)}, H, W, 3) uint8"
        )
    try:
        size = target_size(frames.shape[1], frames.shape[2], len(indices), cfg)
    except ValueError as exc:
        raise VideoDecodeError(f"{path}: {exc}") from None
    return frames, indices, float(sample_fps), fps, total, size


def read_clip(
    path: str | os.PathLike, cfg: FrameSamplingConfig, backend: str = "decord", *, segment: Segment | None = None
) -> Clip:
    """Decode only the sampled frames of `path` and resize them to target_size; raise VideoDecodeError.

    `segment` = (start, end) seconds (either may be None): the frames are sampled inside it only, by
    the same rules as a whole video of that length; `indices` stay indices into the whole video.
    """
    path = os.fspath(path)
    frames, indices, sample_fps, fps, total, (height, width) = _decode_sampled(path, cfg, backend, segment)
    return Clip(
        frames=resize_frames(frames, height, width),
        sample_fps=sample_fps,
        indices=indices,
        source_fps=fps,
        total_frames=total,
        path=path,
    )


def probe_video(
    path: str | os.PathLike, cfg: FrameSamplingConfig, backend: str = "decord", *, segment: Segment | None = None
) -> VideoInfo:
    """Fully decode the sampled frames (the only reliable test) and report what was found.

    Raises VideoDecodeError exactly when read_clip would; the frames are not kept (nor resized).
    """
    path = os.fspath(path)
    frames, indices, sample_fps, fps, total, (height, width) = _decode_sampled(path, cfg, backend, segment)
    return VideoInfo(
        path=path,
        total_frames=total,
        source_fps=fps,
        sample_fps=sample_fps,
        nframes=len(indices),
        source_height=int(frames.shape[1]),
        source_width=int(frames.shape[2]),
        height=height,
        width=width,
        indices=tuple(int(i) for i in indices),
    )


def probe_image(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of a fully decoded image; raise VideoDecodeError if it cannot be read."""
    from PIL import Image

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoDecodeError(f"{path}: file not found")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(f"{path}: file is empty (0 bytes)")
    try:
        with Image.open(path) as image:
            image.load()
            return image.height, image.width
    except Exception as exc:
        raise VideoDecodeError(f"{path}: cannot decode image ({_short(exc)})") from None


def read_image(path: str | os.PathLike, cfg: FrameSamplingConfig) -> np.ndarray:
    """An image as a one-frame clip uint8 [1, H, W, 3], sized as training sizes images (2-frame budget)."""
    from PIL import Image

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoDecodeError(f"{path}: file not found")
    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise VideoDecodeError(f"{path}: cannot read image ({_short(exc)})") from None
    try:
        height, width = target_size(array.shape[0], array.shape[1], 2, cfg)
    except ValueError as exc:
        raise VideoDecodeError(f"{path}: {exc}") from None
    return resize_frames(array[None], height, width)


def _natural_key(name: str) -> list:
    """Sort key that orders frame_2.jpg before frame_10.jpg (digit runs compare as numbers)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | os.PathLike) -> list[str]:
    """The frame images of a frame folder (FRAME_EXTENSIONS), sorted naturally; VideoDecodeError if none."""
    folder = os.fspath(folder)
    if not os.path.exists(folder):
        raise VideoDecodeError(f"{folder}: frame folder not found")
    if not os.path.isdir(folder):
        raise VideoDecodeError(f"{folder}: not a directory (expected a frame folder)")
    names = [
        n for n in os.listdir(folder)
        if n.lower().endswith(FRAME_EXTENSIONS) and not n.startswith(".") and os.path.isfile(os.path.join(folder, n))
    ]
    if not names:
        raise VideoDecodeError(f"{folder}: frame folder holds no frame images ({', '.join(FRAME_EXTENSIONS)})")
    return [os.path.join(folder, n) for n in sorted(names, key=_natural_key)]


def _read_frame_file(path: str) -> np.ndarray:
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise VideoDecodeError(f"{path}: cannot read frame ({_short(exc)})") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise VideoDecodeError(f"{path}: cannot decode frame image (empty, truncated or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frame_folder(
    folder: str | os.PathLike, cfg: FrameSamplingConfig, fps: float, *, segment: Segment | None = None
) -> Clip:
    """Sample and resize the frames of a frame folder (frames at `fps`), by the same rules as read_clip.

    Only the sampled frame files are decoded. Frames of different sizes are each resized to the size
    planned from the first sampled frame. Raises VideoDecodeError naming the folder or the bad frame.
    """
    folder = os.fspath(folder)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise VideoDecodeError(f"{folder}: invalid frame-folder fps {fps!r} (must be > 0)")
    files = list_frame_files(folder)
    indices, sample_fps = _plan(folder, len(files), float(fps), cfg, segment)
    first = _read_frame_file(files[int(indices[0])])
    try:
        height, width = target_size(first.shape[0], first.shape[1], len(indices), cfg)
    except ValueError as exc:
        raise VideoDecodeError(f"{folder}: {exc}") from None
    out = np.empty((len(indices), height, width, 3), dtype=np.uint8)
    for i, index in enumerate(indices.tolist()):
        frame = first if i == 0 else _read_frame_file(files[index])
        out[i] = resize_frames(frame[None], height, width)[0]
    return Clip(
        frames=out, sample_fps=float(sample_fps), indices=indices, source_fps=float(fps),
        total_frames=len(files), path=folder,
    )


# (reason it cannot be used or None, visual tokens the model will see for it or None, and for a video the
# sampled frames' timing as [sample_fps, source frame indices, source fps, source frames] or None)
Verdict = tuple[str | None, int | None, list | None]


def verdict_timing(verdict: Verdict) -> ClipTiming | None:
    """The clip timing a video's verdict recorded (None for images and unreadable media)."""
    if len(verdict) < 3 or verdict[2] is None:
        return None
    sample_fps, indices, source_fps, total = verdict[2]
    return ClipTiming(float(sample_fps), tuple(int(i) for i in indices), float(source_fps), int(total))


def probe_media(path: str, data_type: str, cfg: FrameSamplingConfig, backend: str = "decord") -> Verdict:
    """Whether the media decodes (a video's sampled frames, or an image), its visual token count (one token per
    image_factor x image_factor area per frame pair) and, for a video, when its sampled frames were taken."""
    merge = cfg.image_factor
    try:
        if data_type == "image":
            height, width = probe_image(path)
            height, width = target_size(height, width, 2, cfg)
            return None, (height // merge) * (width // merge), None
        info = probe_video(path, cfg, backend)
        timing = [info.sample_fps, list(info.indices), info.source_fps, info.total_frames]
        return None, (info.nframes // 2) * (info.height // merge) * (info.width // merge), timing
    except VideoDecodeError as exc:
        return str(exc), None, None


# What a verdict is about: a media file read as its record's data_type says (an .mp4 read as an image fails).
MediaKey = tuple[str, str]


def media_key(record: VideoQARecord) -> MediaKey:
    return record.media_path, record.data_type


def _probe_job(args: tuple) -> tuple[MediaKey, Verdict]:
    path, data_type, cfg, backend = args
    return (path, data_type), probe_media(path, data_type, cfg, backend)


def media_verdicts(
    records: Iterable[VideoQARecord], cfg: FrameSamplingConfig, backend: str = "decord", workers: int = 1
) -> dict[MediaKey, Verdict]:
    """Probe each distinct (media file, data_type) once (several questions often share a video), optionally in
    parallel; keyed by media_key."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    jobs = list({media_key(r): (r.media_path, r.data_type, cfg, backend) for r in records}.values())
    return dict(probe_all(_probe_job, jobs, workers))


def split_by_verdict(
    records: Iterable[VideoQARecord], verdicts: dict[MediaKey, Verdict]
) -> tuple[list[VideoQARecord], list[tuple[VideoQARecord, str]]]:
    """(kept, skipped) by the verdict of each record's media; every skip is logged, nothing substituted."""
    kept: list[VideoQARecord] = []
    skipped: list[tuple[VideoQARecord, str]] = []
    for record in records:
        reason = verdicts[media_key(record)][0]
        if reason is None:
            kept.append(record)
        else:
            skipped.append((record, reason))
    bad = {key: reason for key, (reason, *_) in verdicts.items() if reason is not None}
    for reason in bad.values():
        log.warning("skipping undecodable media: %s", reason)
    if skipped:
        log.warning(
            "filter_decodable: kept %d records, skipped %d (%d undecodable media files of %d)",
            len(kept), len(skipped), len(bad), len(verdicts),
        )
    else:
        log.info("filter_decodable: all %d records decodable (%d media files)", len(kept), len(verdicts))
    return kept, skipped


def filter_decodable(
    records: Iterable[VideoQARecord], cfg: FrameSamplingConfig, backend: str = "decord", workers: int = 1
) -> tuple[list[VideoQARecord], list[tuple[VideoQARecord, str]]]:
    """Split records into (kept, skipped) by whether their media decodes; never substitutes."""
    records = list(records)
    return split_by_verdict(records, media_verdicts(records, cfg, backend, workers))


def skip_reason_counts(skipped: Iterable[tuple[VideoQARecord, str]]) -> Counter[str]:
    """Count skipped records by reason kind (the text after the path), for run summaries."""
    counts: Counter[str] = Counter()
    for record, reason in skipped:
        prefix = f"{record.media_path}: "
        text = reason[len(prefix):] if reason.startswith(prefix) else reason
        counts[text.split(" (")[0]] += 1
    return counts
