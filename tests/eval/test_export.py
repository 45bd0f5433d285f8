"""rova.eval.export: a corrupted benchmark on disk, identical (by SHA-1) to what stage=eval scores."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import av
import numpy as np
import pytest

from rova.errors import ConfigError
from rova.eval.benchmark import load_benchmark, read_item_clip
from rova.eval.export import MANIFEST, export_corrupted, main
from rova.eval.runner import clip_digest, corrupted_clip
from rova.inference.seeding import stable_seed

VARIANT, SEVERITIES, SEED = "rain", [1, 5], 3


def _overrides(cache: Path) -> list[str]:
    return ["benchmark=demo", "benchmark.demo_num_clips=3", f"run.cache_dir={cache}"]


@pytest.fixture(scope="module")
def demo_cfg(tmp_path_factory):
    from rova.config.compose import load_typed

    cfg = load_typed(_overrides(tmp_path_factory.mktemp("cache")))
    return cfg


@pytest.fixture(scope="module")
def exported(demo_cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    manifest = export_corrupted(demo_cfg.benchmark, [VARIANT], SEVERITIES, SEED, out,
                                backend=demo_cfg.data.backend, image_factor=demo_cfg.model.image_factor)
    return out, manifest


def _decode_all(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_manifest(exported, demo_cfg):
    out, manifest = exported
    assert json.loads((out / MANIFEST).read_text()) == manifest
    assert manifest["eval_seed"] == SEED and manifest["benchmark"]["name"] == "demo"
    assert manifest["sampling"]["max_frames"] == demo_cfg.benchmark.max_frames
    assert set(manifest["cells"]) == {f"{VARIANT}@{s}" for s in SEVERITIES}
    assert manifest["skipped"] == []
    for severity in SEVERITIES:
        cell = manifest["cells"][f"{VARIANT}@{severity}"]
        assert cell["file"] == f"{VARIANT}/s{severity}/demo-3.json" and cell["num_items"] == 3
        for entry in cell["items"]:
            assert entry["file"].startswith("videos/") and entry["file"].endswith(".mp4")
            path = out / cell["dir"] / entry["file"]
            assert path.stat().st_size == entry["bytes"]
            assert entry["seed"] == stable_seed(SEED, "eval", entry["item_id"], VARIANT, severity)


def test_cell_json_loads_as_a_benchmark_and_mp4s_decode_to_the_same_frames(exported, demo_cfg):
    out, manifest = exported
    original = load_benchmark(demo_cfg.benchmark)
    by_id = {item.item_id: item for item in original.items}
    for severity in SEVERITIES:
        cell = manifest["cells"][f"{VARIANT}@{severity}"]
        entries = {e["item_id"]: e for e in cell["items"]}
        cfg = dataclasses.replace(demo_cfg.benchmark, file=str(out / cell["file"]), build_demo=False, media_root=None)
        data = load_benchmark(cfg)
        assert len(data.items) == 3 and not data.skipped
        for item in data.items:
            # Same ids (the records keep their problem_id), same questions, media in the cell's videos/.
            assert item.item_id in by_id and item.record.problem == by_id[item.item_id].record.problem
            assert Path(item.media_path).parent == out / cell["dir"] / "videos"
            entry = entries[item.item_id]
            assert item.record.extra["rova_export"]["clip_sha1"] == entry["clip_sha1"]
            frames = _decode_all(Path(item.media_path))
            assert frames.shape == (entry["frames"], entry["height"], entry["width"], 3)
            # Read back through the benchmark's own sampling: the same frames, close to the encoded ones.
            again, timing, _ = read_item_clip(item, cfg)
            fps = timing.sample_fps
            assert again.shape == frames.shape and fps == pytest.approx(entry["fps"], rel=1e-3)
            clean, _, _ = read_item_clip(by_id[item.item_id], demo_cfg.benchmark)
            corrupted = corrupted_clip(clean, VARIANT, severity, SEED, item.item_id)
            assert np.abs(frames.astype(int) - corrupted.astype(int)).mean() < 6.0


def test_manifest_sha1_equals_the_clip_stage_eval_scores(exported, demo_cfg):
    out, manifest = exported
    data = load_benchmark(demo_cfg.benchmark)
    assert len(data.items) == 3
    for severity in SEVERITIES:
        entries = {e["item_id"]: e for e in manifest["cells"][f"{VARIANT}@{severity}"]["items"]}
        for item in data.items:
            frames, _, _ = read_item_clip(item, demo_cfg.benchmark, image_factor=demo_cfg.model.image_factor)
            assert entries[item.item_id]["clip_sha1"] == clip_digest(
                corrupted_clip(frames, VARIANT, severity, SEED, item.item_id))
            assert entries[item.item_id]["clip_sha1"] != clip_digest(frames)


def test_a_second_run_rewrites_nothing(exported, demo_cfg):
    out, manifest = exported
    before = _mtimes(out)
    again = export_corrupted(demo_cfg.benchmark, [VARIANT], SEVERITIES, SEED, out)
    assert again == manifest and _mtimes(out) == before


def test_a_lost_clip_is_restored_and_nothing_else_moves(exported, demo_cfg):
    out, manifest = exported
    before = _mtimes(out)
    # A clip removed (or cut short: its size no longer matches) is re-encoded from the same corrupted frames
    # (same clip_sha1); no other clip moves. The H.264 bytes of a re-encode are not guaranteed equal: decord2 and
    # PyAV each bundle an FFmpeg + libx264, decord loads its libraries RTLD_GLOBAL, and which build PyAV's encoder
    # ends up calling depends on what the process loaded first (the same frames gave other bytes in a process
    # that imported decord before its first encode). The manifest follows the file on disk: it is rewritten
    # exactly when the restored clip came out another size (the full fast tier hit that in some runs).
    cell = manifest["cells"][f"{VARIANT}@5"]
    victim = out / cell["dir"] / cell["items"][1]["file"]
    original = _decode_all(victim)
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    restored = export_corrupted(demo_cfg.benchmark, [VARIANT], SEVERITIES, SEED, out)
    assert json.loads((out / MANIFEST).read_text()) == restored
    entry = restored["cells"][f"{VARIANT}@5"]["items"][1]
    assert entry["bytes"] == victim.stat().st_size > len(data) // 2
    same_size = entry["bytes"] == len(data)
    entry["bytes"] = len(data)
    assert restored == manifest
    again_frames = _decode_all(victim)
    assert again_frames.shape == original.shape
    # Two lossy encodes of the same frames: a few grey levels apart at most (another clip differs by tens).
    assert np.abs(again_frames.astype(int) - original.astype(int)).mean() < 4.0
    after = _mtimes(out)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {str(victim.relative_to(out))} | (set() if same_size else {MANIFEST})


def test_other_settings_in_the_same_folder_are_refused(exported, demo_cfg):
    out, _ = exported
    with pytest.raises(ConfigError, match="other settings.*eval_seed"):
        export_corrupted(demo_cfg.benchmark, [VARIANT], SEVERITIES, SEED + 1, out)


def test_missing_media_are_listed_not_replaced(demo_cfg, tmp_path):
    records = json.loads(Path(demo_cfg.benchmark.file).read_text())
    records.append({**records[0], "problem_id": 99, "path": "./videos/missing.mp4"})
    bench = tmp_path / "eval_x.json"
    bench.write_text(json.dumps(records))
    cfg = dataclasses.replace(demo_cfg.benchmark, name="x", file=str(bench), build_demo=False,
                              media_root=str(Path(demo_cfg.benchmark.file).parent))
    manifest = export_corrupted(cfg, ["night"], [2], 0, tmp_path / "out")
    assert [s["item_id"] for s in manifest["skipped"]] == ["x/99"]
    assert "missing.mp4" in manifest["skipped"][0]["reason"]
    exported = json.loads((tmp_path / "out" / "night" / "s2" / "eval_x.json").read_text())
    assert [r["problem_id"] for r in exported] == [1, 2, 3]
    assert manifest["cells"]["night@2"]["num_items"] == 3


def test_cli(demo_cfg, tmp_path, capsys):
    cache = Path(demo_cfg.run.cache_dir)
    args = ["eval.corruptions=[dusk]", "eval.severities=[4]", "--out", str(tmp_path), "--quiet"]
    assert main([*_overrides(cache), *args]) == 0
    assert "dusk@4" in capsys.readouterr().out
    assert json.loads((tmp_path / MANIFEST).read_text())["cells"]["dusk@4"]["num_items"] == 3
    assert main([*_overrides(cache), "eval.corruptions=[drizzle]", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("config error: eval.corruptions:") and "\n" not in err
    assert main([*_overrides(cache), "eval.corruptions=[]", "--out", str(tmp_path / "c")]) == 2
    assert "nothing to export" in capsys.readouterr().err
