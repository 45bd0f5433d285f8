"""Build a tiny, randomly initialised model of a family (model + tokenizer + processor) fully offline.

The tiny model exercises every code path of a real checkpoint of its family (vision tower, video tokens,
M-RoPE time positions, timestamps, chat template) in well under a second per GRPO step on a CPU. The family
adapter (rova.models.families) supplies the architecture and processor; the tokenizer, the format warm-up and
the atomic write are shared. It is written with `save_pretrained` and loaded back through the same
`from_pretrained` code as a real checkpoint. `ensure_tiny_model` builds it the first time only (saying so, and
how long it took: the build runs silently for ~25 s on a free core, minutes under load) and reuses it after.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Bumped whenever the recipe changes so cached builds are rebuilt rather than silently reused.
TINY_RECIPE_VERSION = 6


@dataclass(frozen=True)
class TinySpec:
    """Architecture of the tiny model (all small enough for a CPU step in well under a second)."""

    vocab_size: int = 512
    hidden_size: int = 32
    intermediate_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    vision_depth: int = 2
    vision_hidden_size: int = 16
    vision_heads: int = 2
    # Steps of text-only language-model training on well-formed "<think>..</think><answer>..</answer>"
    # completions, so the tiny model's rollouts earn non-zero, varied rewards (a purely random model never
    # writes an answer tag, every advantage is 0 and GRPO has nothing to learn from).
    format_warmup_steps: int = 400
    seed: int = 0
    # Text the tokenizer is trained on: "base" (prompt and answer words) or "shapes" (also the Video-R1 prompt
    # templates and the shapes task's questions and rationales, so its sequences are short words, not bytes).
    corpus: str = "base"


# The random-init architectures `model.build_spec` names (rova.config.model.BUILD_SPECS declares the names).
SPECS: dict[str, TinySpec] = {
    # 2 layers, width 32: every code path in well under a second per step (the fast tests).
    "tiny": TinySpec(),
    # 4 layers, width 128, a 2-block vision tower of width 64: learns the shapes task on 2 CPU cores in minutes.
    # No format warm-up: the tiny model's (lr 5e-3) leaves this width with activations in the hundreds, after
    # which SFT no longer learns from the video; the base model is a plain random init.
    "small": TinySpec(vocab_size=1024, hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, vision_depth=2, vision_hidden_size=64,
                      vision_heads=4, format_warmup_steps=0, corpus="shapes"),
}


def _corpus(kind: str = "base") -> list[str]:
    """Text the byte-level BPE is trained on: the words our prompts and answers are made of."""
    words = (
        "<think> </think> <answer> </answer> the a an of to in is which what how many when where video frame "
        "object appears first moves left right up down red green blue yellow ball square circle triangle "
        "number count seconds answer option please think step by reason final provide only single letter "
        "A B C D E 0 1 2 3 4 5 6 7 8 9 . , : ; ( ) [ ] ? ! user assistant system you are a helpful"
    )
    lines = [words, words.upper(), words.lower()]
    lines += [f"<answer>{c}</answer> <think>{w}</think>" for c in "ABCDE" for w in words.split()[:40]]
    if kind == "shapes":
        lines += _shapes_corpus()
    return lines


def _shapes_corpus() -> list[str]:
    """The Video-R1 prompt templates and the shapes task's questions, options and rationales (train split)."""
    from rova.config.data import VIDEO_R1_QUESTION_TEMPLATE, VIDEO_R1_TYPE_TEMPLATES
    from rova.data.shapes import SPLIT_SEEDS, clip_spec

    lines = [VIDEO_R1_QUESTION_TEMPLATE, *VIDEO_R1_TYPE_TEMPLATES.values(), "Options:"]
    for i in range(120):
        _, spec, _ = clip_spec(SPLIT_SEEDS["train"], i)
        lines += [spec["problem"], *spec["options"], f"<think>{spec['think']}</think><answer>{spec['answer']}</answer>"]
    return lines


def build_tokenizer(vocab_size: int, adapter, corpus: str = "base"):
    """A byte-level BPE over the corpus with the family's special tokens (padding first, end of turn = EOS)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=adapter.special_tokens(),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(corpus), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=adapter.end_of_turn,
        pad_token=adapter.pad_token,
        additional_special_tokens=adapter.special_tokens()[1:],
    )


def _chat_template(name: str) -> str:
    import trl

    path = Path(trl.__file__).parent / "chat_templates" / f"{name}.jinja"
    return path.read_text()


def _format_warmup(model, tokenizer, adapter, steps: int, seed: int) -> None:
    """Teach the answer format (not the answers): random rationale words, a random option or number."""
    import random

    import torch

    if steps <= 0:
        return
    rng = random.Random(seed)
    words = _corpus()[0].split()[4:60]
    answers = list("ABCD") + [str(n) for n in range(10)]

    def sample() -> tuple[str, str]:
        question = " ".join(rng.choice(words) for _ in range(rng.randint(8, 40)))
        start, end, vision = adapter.turn_start, adapter.end_of_turn, adapter.tokens
        prompt = (
            f"{start}system\nYou are a helpful assistant.{end}\n{start}user\n"
            f"{vision.vision_start}{vision.vision_end}{question}{end}\n{start}assistant\n"
        )
        thought = " ".join(rng.choice(words) for _ in range(rng.randint(1, 4)))
        return prompt, f"<think>{thought}</think><answer>{rng.choice(answers)}</answer>{end}"

    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(steps):
        pairs = [sample() for _ in range(16)]
        batch = tokenizer([p + c for p, c in pairs], return_tensors="pt", padding=True, padding_side="right")
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        prompt_ids = tokenizer([prompt for prompt, _ in pairs])["input_ids"]  # one call: the same ids as one per row
        for row, ids in enumerate(prompt_ids):  # loss on the assistant turn only
            labels[row, : len(ids)] = -100
        loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    log.info("tiny model format warm-up: %d steps, final loss %.3f", steps, loss.item())


def build_tiny_model(out_dir: str | os.PathLike, family: str, spec: TinySpec = TinySpec()) -> Path:
    """Write model + processor of `family` to `out_dir` (atomically: built in a temp dir, then renamed)."""
    import torch

    from rova.models.families import get_family

    adapter = get_family(family)
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(spec.vocab_size, adapter, spec.corpus)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in adapter.special_tokens()}
    torch.manual_seed(spec.seed)
    model = adapter.tiny_model(tokenizer, spec, ids)
    _format_warmup(model, tokenizer, adapter, spec.format_warmup_steps, spec.seed)
    model.generation_config.bos_token_id = None
    model.generation_config.eos_token_id = ids[adapter.end_of_turn]
    model.generation_config.pad_token_id = ids[adapter.pad_token]
    processor = adapter.tiny_processor(tokenizer, _chat_template(adapter.chat_template_name))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp, is_main_process=True)
        processor.save_pretrained(tmp)
        if not list(tmp.glob("*.safetensors")):
            raise RuntimeError(f"building the tiny model wrote no weights into {tmp}")
        (tmp / "rova_tiny.json").write_text(json.dumps(_marker(family, spec)))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _marker(family: str, spec: TinySpec) -> dict:
    return {"recipe": TINY_RECIPE_VERSION, "family": family, **asdict(spec)}


def ensure_tiny_model(out_dir: str | os.PathLike, family: str, spec: TinySpec = TinySpec()) -> Path:
    """Build the tiny model unless an identical build (same recipe, family and spec) is already on disk."""
    out_dir = Path(out_dir)
    marker = out_dir / "rova_tiny.json"
    if marker.exists():
        try:
            if json.loads(marker.read_text()) == _marker(family, spec):
                return out_dir
        except (OSError, ValueError):
            pass
    elif out_dir.exists() and any(out_dir.iterdir()):
        # Builds are written whole (temp dir + rename): a non-empty dir without our marker is someone's model.
        from rova.errors import ConfigError

        raise ConfigError("model.build_tiny", f"true, but {out_dir} already holds files that are not a tiny-model "
                          "build (a trained model?); it is left untouched. Set model.build_tiny=false to load it")
    expected = _expected_seconds(spec)  # the build says nothing until it is done: minutes under load
    print(f"[rova] building the tiny {family} model at {out_dir} (first time only, ~{expected:.0f} s)...", flush=True)
    start = time.monotonic()
    built = build_tiny_model(out_dir, family, spec)
    print(f"[rova] built the tiny {family} model in {time.monotonic() - start:.0f} s", flush=True)
    return built


def _expected_seconds(spec: TinySpec) -> float:
    """About how long a build takes on one free CPU core (measured: 400 warm-up steps ~24 s, none ~1 s)."""
    return 1 + 0.06 * spec.format_warmup_steps
