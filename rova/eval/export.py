"""Export a corrupted copy of a benchmark: every cell of the robustness grid as real files.

For each cell variant@severity (families expand to their variants, as in stage=eval), the corrupted clip
of every item is written as an H.264 mp4 (PyAV/libx264, yuv420p, at the clip's sampling fps) under
`out/<variant>/s<severity>/videos/`, images as PNG under `.../images/`, beside a Video-R1-format eval
file holding the original records with `path` pointing at the new media ("./videos/..."). The clip is
the one stage=eval scores: read_item_clip (the benchmark's sampling and pixel budget, inside the
record's segment), then runner.corrupted_clip with seed stable_seed(eval.seed, "eval", item id, variant,
severity). manifest.json records the settings and, per cell and item, the seed and the SHA-1 of the
corrupted uint8 frames BEFORE encoding (runner.clip_digest: the `clip_sha1` of stage=eval's
predictions); the mp4 itself is lossy (crf), so decoded frames are close to, not equal to, those bytes.

Media that are missing or do not decode are skipped and listed (manifest "skipped"), never replaced.
Every file is written atomically; a re-run skips every clip whose file exists with the size its
manifest entry records, and rewrites no file whose content is unchanged (resumable, idempotent).

    python -m rova.eval.export benchmark=mmvu benchmark.file=/data/eval_mmvu.json \\
        eval.corruptions=[weather,shake] eval.severities=[1,3,5] eval.seed=0 --out /data/mmvu-c
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import numpy as np

from rova.errors import ConfigError, RovaError, exit_status

MANIFEST = "manifest.json"
FORMAT = "rova-corrupted-benchmark/1"
SEED_RULE = "stable_seed(eval_seed, 'eval', item_id, variant, severity)  (rova.inference.seeding.stable_seed)"
DIGEST_RULE = "SHA-1 of the corrupted uint8 [T, H, W, 3] RGB frames before encoding (rova.eval.runner.clip_digest)"
SAVE_EVERY_S = 30.0


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Atomic write, skipped when the file already holds exactly these bytes (so mtimes stay put)."""
    from rova.utils.io import atomic_write_bytes

    try:
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write_bytes(path, data)
    return True


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _even(frames: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """yuv420p needs even dimensions: pad one edge-replicated row / column where odd."""
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frames, [pad_h, pad_w]


def encode_mp4(frames: np.ndarray, fps: float, crf: int = 12) -> bytes:
    """H.264 (libx264, yuv420p, one thread) mp4 of uint8 [T, H, W, 3] RGB frames; the manifest records its size."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def encode_png(frame: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(frame[..., ::-1]))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


def _media_name(item) -> str:
    sample = re.sub(r"[^A-Za-z0-9._-]+", "_", str(item.record.sample_id)).strip("._")[:60] or "item"
    return f"{item.index:06d}_{sample}"


def _cell_dir(variant: str, severity: int) -> str:
    return f"{variant}/s{severity}"


def _exported_record(raw: dict, item, rel_path: str, entry: dict, cell: str) -> dict:
    """The original record, its media key now the exported file; keys that no longer apply moved aside."""
    record = dict(raw)
    source: dict[str, Any] = {}
    for key in ("path", "video"):
        if key in record:
            source[key] = record.pop(key)
    if item.segment is not None:  # the segment was sampled already: the new clip is the segment
        for key in ("start", "end"):
            if key in record:
                source[key] = record.pop(key)
    if "frames" in (item.media_kind, item.declared_kind):  # a frame folder (or a "frame" record) became a video file
        source["data_type"] = record.get("data_type")
        record["data_type"] = "video"
        if "fps" in record:
            source["fps"] = record.pop("fps")
    record["path"] = rel_path
    record["rova_export"] = {"cell": cell, "item_id": item.item_id, "seed": entry["seed"],
                             "clip_sha1": entry["clip_sha1"], "source": source}
    return record


def _settings(data, cfg, seed: int, backend: str, crf: int) -> dict:
    return {
        "eval_seed": seed,
        "benchmark": {
            "name": cfg.name, "file": str(Path(cfg.file).absolute()),
            "file_sha1": hashlib.sha1(Path(cfg.file).read_bytes()).hexdigest(), "media_root": data.media_root,
            "num_records": data.num_records, "max_items": cfg.max_items, "segments": cfg.segments,
            "frame_folder_fps": cfg.frame_folder_fps, "subtask_keys": list(cfg.subtask_keys),
        },
        "sampling": {**data.summary()["sampling"], "backend": backend},
        "encoding": {"video": "mp4, H.264 (libx264), yuv420p, at the clip's sampling fps; odd sizes padded by "
                              "one edge row/column", "crf": crf, "image": "png (lossless)"},
    }


def _load_manifest(path: Path, settings: dict) -> dict:
    if not path.is_file():
        return {}
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError("out", f"{path}: unreadable manifest ({exc}); remove it or choose another folder") from None
    differing = [k for k in settings if old.get(k) != settings[k]]
    if old.get("format") != FORMAT or differing:
        raise ConfigError(
            "out", f"{path.parent} holds an export with other settings ({', '.join(differing) or 'format'}); "
            "choose another folder"
        )
    return old


def export_corrupted(
    benchmark_cfg,
    corruptions: list[str],
    severities: list[int],
    seed: int,
    out_dir,
    *,
    backend: str = "decord",
    image_factor: int = 28,
    crf: int = 12,
    progress: bool = False,
) -> dict:
    """Write the corrupted benchmark of every cell (variant x severity) into out_dir; return the manifest.

    benchmark_cfg: a BenchmarkConfig (the demo is built first when build_demo); corruptions: families or
    variants (eval.corruptions); severities 1-5; seed: eval.seed. Resumable: clips already in the
    manifest whose file exists with the recorded size are not re-encoded; unchanged files are not rewritten.
    """
    from rova.data.records import read_raw_records
    from rova.errors import VideoDecodeError
    from rova.eval.benchmark import SkippedItem, load_benchmark, read_item_clip
    from rova.config.eval import EvalConfig
    from rova.eval.cells import cell_name
    from rova.eval.runner import clip_digest, corrupted_clip
    from rova.inference.seeding import stable_seed

    eval_cfg = EvalConfig(corruptions=list(corruptions), severities=list(severities), seed=seed)
    variants = eval_cfg.grid_variants()
    if not variants:
        raise ConfigError("eval.corruptions", "nothing to export: name corruption families or variants")
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise ConfigError("crf", f"must be an integer 0-51, got {crf!r}")
    cells = [(v, s) for v in variants for s in eval_cfg.severities]
    out = Path(out_dir).absolute()

    # probe=False: media are checked to exist here and decoded once below (read errors skip the item there).
    data = load_benchmark(benchmark_cfg, backend=backend, image_factor=image_factor, probe=False)
    raw = read_raw_records(Path(benchmark_cfg.file))
    settings = _settings(data, benchmark_cfg, seed, backend, crf)
    old = _load_manifest(out / MANIFEST, settings)

    # Cells already exported (this run's and others'), keyed by item id.
    done: dict[str, dict[str, dict]] = {
        name: {e["item_id"]: e for e in cell.get("items", [])} for name, cell in (old.get("cells") or {}).items()
    }
    old_cells = {name: cell for name, cell in (old.get("cells") or {}).items()}
    skipped: dict[str, dict] = {s.item_id: s.to_dict() for s in data.skipped}
    current = {item.item_id for item in data.items}

    def cell_entry(variant: str, severity: int) -> dict:
        name = cell_name(variant, severity)
        items = sorted((e for i, e in done.get(name, {}).items() if i in current and i not in skipped),
                       key=lambda e: e["index"])
        return {"variant": variant, "severity": severity, "dir": _cell_dir(variant, severity),
                "file": f"{_cell_dir(variant, severity)}/{Path(benchmark_cfg.file).stem}.json",
                "num_items": len(items), "items": items}

    def manifest() -> dict:
        all_cells = dict(old_cells)
        for variant, severity in cells:
            all_cells[cell_name(variant, severity)] = cell_entry(variant, severity)
        return {"format": FORMAT, **settings, "seed_rule": SEED_RULE, "digest": DIGEST_RULE,
                "cells": all_cells, "skipped": sorted(skipped.values(), key=lambda s: s["index"])}

    def complete(name: str, item) -> bool:
        entry = done.get(name, {}).get(item.item_id)
        if entry is None:
            return False
        path = out / _cell_dir(entry["variant"], entry["severity"]) / entry["file"]
        return path.is_file() and path.stat().st_size == entry["bytes"]

    last_save = time.monotonic()
    written = 0
    try:
        for number, item in enumerate(data.items, 1):
            todo = [(v, s) for v, s in cells if not complete(cell_name(v, s), item)]
            if not todo:
                continue
            try:
                frames, timing, is_image = read_item_clip(item, benchmark_cfg, backend=backend, image_factor=image_factor)
                fps = timing.sample_fps
            except VideoDecodeError as exc:
                skipped[item.item_id] = SkippedItem(item.item_id, item.index, item.media_path, str(exc)).to_dict()
                continue
            except Exception as exc:  # as load_benchmark's probe: a decoder bug skips the item, said why
                reason = f"{item.media_path}: unexpected error while reading ({type(exc).__name__}: {exc})"
                skipped[item.item_id] = SkippedItem(item.item_id, item.index, item.media_path, reason).to_dict()
                continue
            skipped.pop(item.item_id, None)
            for variant, severity in todo:
                name = cell_name(variant, severity)
                corrupted = corrupted_clip(frames, variant, severity, seed, item.item_id)
                entry = {"item_id": item.item_id, "index": item.index, "variant": variant, "severity": severity,
                         "seed": stable_seed(seed, "eval", item.item_id, variant, severity),
                         "clip_sha1": clip_digest(corrupted), "frames": int(corrupted.shape[0]),
                         "height": int(corrupted.shape[1]), "width": int(corrupted.shape[2]), "fps": float(fps)}
                if is_image:
                    rel, blob = f"images/{_media_name(item)}.png", encode_png(corrupted[0])
                else:
                    even, pad = _even(corrupted)
                    rel, blob = f"videos/{_media_name(item)}.mp4", encode_mp4(even, fps, crf)
                    if any(pad):
                        entry["padded"] = pad
                entry.update(file=rel, bytes=len(blob))
                _write_if_changed(out / _cell_dir(variant, severity) / rel, blob)
                done.setdefault(name, {})[item.item_id] = entry
                written += 1
            if progress:
                print(f"[rova] export {number}/{len(data.items)} items ({written} clips written)", flush=True)
            if time.monotonic() - last_save > SAVE_EVERY_S:
                _write_if_changed(out / MANIFEST, _json_bytes(manifest()))
                last_save = time.monotonic()
    finally:
        # What is done survives an interruption: the next run resumes from it.
        _write_if_changed(out / MANIFEST, _json_bytes(manifest()))

    # One Video-R1 eval file per cell: the original records, media -> the exported files.
    limit = benchmark_cfg.max_items
    raw_records = [obj for _, obj in (raw[:limit] if limit is not None else raw)]
    for variant, severity in cells:
        name = cell_name(variant, severity)
        records = []
        for item in data.items:
            entry = done.get(name, {}).get(item.item_id)
            if entry is not None and item.item_id not in skipped:
                records.append(_exported_record(raw_records[item.index], item, "./" + entry["file"], entry, name))
        _write_if_changed(out / cell_entry(variant, severity)["file"], _json_bytes(records))
    result = manifest()
    _write_if_changed(out / MANIFEST, _json_bytes(result))
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rova.eval.export",
        description="Write the corrupted clips of every eval.corruptions x eval.severities cell of a benchmark as "
                    "mp4 files plus a Video-R1-format eval file per cell and a manifest (seeds, SHA-1s).",
        epilog="example: python -m rova.eval.export benchmark=demo eval.corruptions=[rain] eval.severities=[1,5] "
               "--out exports/demo-c",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as launch.py takes them (benchmark=..., eval.*)")
    parser.add_argument("--out", required=True, help="output folder (created; an earlier export there is resumed)")
    parser.add_argument("--crf", type=int, default=12, help="libx264 quality, 0-51 (default 12: near-lossless)")
    parser.add_argument("--quiet", action="store_true", help="no per-item progress lines")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    try:
        from rova.config.compose import load_typed
        from rova.config.paths import absolutize

        cfg = load_typed(list(args.overrides))
        cfg = absolutize(cfg, Path.cwd())
        manifest = export_corrupted(
            cfg.benchmark, cfg.eval.corruptions, cfg.eval.severities, cfg.eval.seed, args.out,
            backend=cfg.data.backend, image_factor=cfg.model.image_factor, crf=args.crf, progress=not args.quiet,
        )
    except RovaError as exc:
        return exit_status(exc)
    out = Path(args.out).absolute()
    for name, cell in manifest["cells"].items():
        print(f"[rova] {name:<20} {cell['num_items']:>6} items  {out / cell['file']}")
    print(f"[rova] skipped media: {len(manifest['skipped'])}; manifest: {out / MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
