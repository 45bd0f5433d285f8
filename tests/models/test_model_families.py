"""Model families: one adapter module each (rova/models/families), presets, a tiny builder; nobody else names one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rova.config.model import BUILD_SPECS
from rova.errors import ConfigError
from rova.models.families import FAMILY_MODULES, ClipTiming, ModelFamily, family_names, get_family

REPO = Path(__file__).resolve().parents[2]
FAMILIES_DIR = REPO / "rova" / "models" / "families"

# What only an adapter may say: family names, transformers' family classes, placeholder tokens, family-only inputs.
FAMILY_SPECIFIC = re.compile(
    r"qwen2_5_vl|qwen3_vl|qwen2_vl|Qwen2_5_VL|Qwen3VL|Qwen2VL|second_per_grid_ts|deepstack"
    r"|<\|(video_pad|image_pad|vision_start|vision_end|im_start|im_end|endoftext)\|>"
)


def _presets() -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in (REPO / "conf" / "model").glob("*.yaml")}


@pytest.mark.parametrize("name", family_names())
def test_a_family_is_one_adapter_module_presets_and_a_tiny_builder(name):
    family = get_family(name)
    assert isinstance(family, ModelFamily) and family.name == name
    assert FAMILY_MODULES[name] == f"rova.models.families.{name}"
    assert (FAMILIES_DIR / f"{name}.py").is_file()
    presets = {stem: p for stem, p in _presets().items() if p.get("family") == name}
    real = [p for p in presets.values() if not p.get("build_tiny")]
    built = [p for p in presets.values() if p.get("build_tiny")]
    assert real, f"no conf/model preset of a real {family.title} checkpoint"
    # One preset per random-init size (tiny for the fast tests, small for the learnable shapes task), each
    # built into its own folder.
    by_spec = {spec: [p for p in built if p.get("build_spec", "tiny") == spec] for spec in BUILD_SPECS}
    assert all(len(found) == 1 for found in by_spec.values()), {k: len(v) for k, v in by_spec.items()}
    assert by_spec["tiny"][0]["path"].endswith("/" + family.tiny_dir_name)
    assert by_spec["small"][0]["path"].endswith("/" + family.tiny_dir_name.replace("tiny", "small"))
    assert family.frame_factor == family.patch_size * family.merge_size
    # The adapter's own answers that the rest of rova relies on.
    assert family.model_types and family.video_keys[:2] == ("pixel_values_videos", "video_grid_thw")


def test_every_preset_names_a_known_family():
    for stem, preset in _presets().items():
        assert preset.get("family") in family_names(), f"conf/model/{stem}.yaml: family {preset.get('family')!r}"


def _family_specific_uses(path: Path, root: Path = REPO) -> list[str]:
    """Identifiers, imports and non-docstring string constants of a module that name a family."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
        and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            text = " ".join([getattr(node, "module", None) or ""] + [a.name for a in node.names])
        else:
            continue
        if FAMILY_SPECIFIC.search(text):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {text[:80]!r}")
    return found


def _declared_for_config(use: str) -> bool:
    """rova/config/model.py's FAMILIES: the one declaration of each family (adapter module, frame factor), read
    by compose-time validation without importing the adapters; test_the_config_layer_declares_the_adapters_families
    keeps it equal to the adapters'. Nothing else there may name a family."""
    from rova.config.model import FAMILIES

    path, _, text = use.partition(": ")
    declared = set(FAMILIES) | {d.adapter for d in FAMILIES.values()}
    return path.startswith("rova/config/model.py:") and text.strip("'") in declared


def test_nothing_outside_the_adapters_names_a_family():
    outside = [p for p in (REPO / "rova").rglob("*.py") if FAMILIES_DIR not in p.parents]
    found = [use for path in outside for use in _family_specific_uses(path) if not _declared_for_config(use)]
    assert not found, "family-specific code outside rova/models/families:\n" + "\n".join(found)


def test_the_config_layer_declares_the_adapters_families():
    from rova.config.model import FAMILIES
    from rova.config.model import family_names as config_family_names

    assert config_family_names() == family_names()
    assert {name: declared.frame_factor for name, declared in FAMILIES.items()} == {
        name: get_family(name).frame_factor for name in family_names()}


def test_the_scan_catches_a_family_name(tmp_path):
    module = tmp_path / "rova" / "leak.py"
    module.parent.mkdir()
    module.write_text('"""Docstrings may say <|video_pad|>."""\nTOKEN = "<|video_pad|>"\nfrom x import Qwen3VLModel\n')
    found = _family_specific_uses(module, tmp_path)
    assert len(found) == 2, found
    assert any("<|video_pad|>" in f for f in found) and any("Qwen3VLModel" in f for f in found), found


@pytest.fixture(scope="session")
def tiny_dirs(tiny_model_dir, tiny_qwen3_model_dir) -> dict[str, Path]:
    return {"qwen2_5_vl": tiny_model_dir, "qwen3_vl": tiny_qwen3_model_dir}


@pytest.mark.parametrize("name", family_names())
def test_tiny_model_loads_as_its_family_and_sees_the_video(name, tiny_dirs):
    from rova.config.model import ModelConfig
    from rova.models.families import family_of_model
    from rova.models.loading import load_model_and_processor
    from rova.inference.prompts import render_prompt

    family = get_family(name)
    model, processor = load_model_and_processor(ModelConfig(family=name, path=str(tiny_dirs[name])))
    assert family_of_model(model) is family and processor.video_processor.patch_size == family.patch_size
    text = render_prompt(processor, [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "count"}]}])
    f = family.frame_factor
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 2 * f, 3 * f, 3), dtype=np.uint8)
    other = rng.integers(0, 255, (4, 2 * f, 3 * f, 3), dtype=np.uint8)

    def logits(clip):
        enc = family.encode(processor, text, clip, ClipTiming(2.0), False)
        assert int(enc.visual["video_grid_thw"].prod()) == 4 // 2 * 2 * 2 * 3 * 2  # t/2 x (2f/patch) x (3f/patch)
        ids = torch.tensor([enc.input_ids])
        with torch.no_grad():
            return model(input_ids=ids, attention_mask=torch.ones_like(ids),
                         mm_token_type_ids=family.mm_token_type_ids(ids, processor.tokenizer), **enc.visual).logits

    first = logits(frames)
    assert torch.isfinite(first).all()
    assert not torch.allclose(first, logits(other)), "the clip's pixels never reached the language model"


def test_a_checkpoint_of_another_family_is_refused_naming_the_key(tiny_model_dir):
    from rova.config.model import ModelConfig
    from rova.models.loading import load_model_and_processor

    with pytest.raises(ConfigError, match=r"model\.family.*set model\.family=qwen2_5_vl"):
        load_model_and_processor(ModelConfig(family="qwen3_vl", path=str(tiny_model_dir)))


def test_an_unknown_family_fails_at_compose_time_naming_the_key(tmp_path, cache_dir):
    from tests.support.runs import launch

    proc = launch(tmp_path, cache_dir, "model.family=llava", "logger=none")
    assert proc.returncode == 2 and "model.family" in proc.stderr and "qwen3_vl" in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_build_tiny_never_overwrites_a_directory_that_is_not_a_tiny_build(tmp_path):
    """model.path=<run>/model with the tiny preset's build_tiny=true must not replace a trained model."""
    from rova.models.tiny import ensure_tiny_model

    trained = tmp_path / "run" / "model"
    trained.mkdir(parents=True)
    (trained / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(ConfigError, match=r"model\.build_tiny.*left untouched"):
        ensure_tiny_model(trained, "qwen2_5_vl")
    assert (trained / "model.safetensors").read_bytes() == b"weights"


def test_the_first_tiny_build_says_what_it_does_and_how_long_it_took(tmp_path, capsys):
    """The build is silent for ~25 s on a free core (minutes under load): it says so, once."""
    import re

    from rova.models.tiny import SPECS, ensure_tiny_model

    out_dir = tmp_path / "tiny"
    ensure_tiny_model(out_dir, "qwen2_5_vl", SPECS["small"])  # the small spec has no warm-up: well under a second
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[rova]")]
    assert lines[0] == f"[rova] building the tiny qwen2_5_vl model at {out_dir} (first time only, ~1 s)..."
    assert re.fullmatch(r"\[rova\] built the tiny qwen2_5_vl model in \d+ s", lines[1]) and len(lines) == 2
    ensure_tiny_model(out_dir, "qwen2_5_vl", SPECS["small"])  # built already: nothing to say
    assert "[rova]" not in capsys.readouterr().out


def test_the_built_sizes_declared_in_config_are_the_ones_the_builder_has():
    from rova.models.tiny import SPECS

    assert tuple(SPECS) == BUILD_SPECS
    assert SPECS["small"].hidden_size > SPECS["tiny"].hidden_size and SPECS["small"].corpus == "shapes"
