"""The default demo through launch.py: a real run dir with config, metrics, wandb offline run and model."""

from __future__ import annotations

import json

from tests.support.runs import launch, only_run_dir


def test_default_demo_run_writes_everything(tmp_path, cache_dir):
    proc = launch(tmp_path, cache_dir, "data.demo_num_clips=8")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    assert run_dir.parent.parent.name == "grpo"  # <root>/grpo/<date>/<time>
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["command"] and "git_sha" in meta
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rewarded = [line for line in lines if "rewards/clean/accuracy/mean" in line]
    assert rewarded and all(isinstance(line["reward/mean"], float) for line in rewarded)
    assert any(p.name.startswith("offline-run-") for p in (run_dir / "wandb").iterdir())
    assert (run_dir / "model" / "config.json").exists()
    assert list((run_dir / "model").glob("*.safetensors"))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 4
    # The reward curves, and the console's last line says where they are.
    from PIL import Image

    with Image.open(run_dir / "rewards.png") as image:
        assert image.size[0] > 300
    assert proc.stdout.strip().splitlines()[-1].endswith(str(run_dir / "rewards.png"))
