"""Peak memory of one KL-consistency pass: whole-prompt logits (baseline) vs the completion span only.

    uv run python benchmarks/kl_memory_bench.py [--prompt 4096] [--completion 256] [--vocab 151936]

A Qwen2.5-VL with the REAL vocabulary (151,936, Qwen2.5-VL-7B's) but a tiny trunk, a prompt as long as a
16-frame video prompt of Video-R1 (~4k tokens), one row. Each variant runs in a fresh process, which
reports the growth of its peak resident memory during the pass:
- baseline: `model(...).logits[:, -L-1:-1]`, what the KL passes did before (logits for every position);
- span:     `completion_span_logits` (rova.training.trainer), `logits_to_keep = L + 1`.
Both the no-grad KL reward pass (two forwards, clean and corrupted) and the auxiliary-loss pass (the
corrupted forward keeps its logits in the graph, then backward) are measured. Prints MiB and the ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(variant: str, pass_kind: str, prompt: int, completion: int, vocab: int) -> dict:
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from rova.rewards import kl_consistency_loss, sequence_kl
    from rova.training.trainer import completion_span_logits

    torch.manual_seed(0)
    torch.set_num_threads(1)
    config = Qwen2_5_VLConfig(
        text_config={"vocab_size": vocab, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]}},
        vision_config={"depth": 1, "hidden_size": 16, "out_hidden_size": 64, "num_heads": 2, "intermediate_size": 32},
    )
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    ids = torch.randint(1000, vocab - 1, (1, prompt + completion))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    mask = torch.ones(1, completion)

    def logits(grad: bool):
        with torch.set_grad_enabled(grad):
            if variant == "baseline":
                return model(**inputs).logits[:, -completion - 1 : -1]
            return completion_span_logits(model, inputs, completion)

    before = _rss_mib()
    if pass_kind == "reward":
        with torch.no_grad():
            kl = sequence_kl(logits(False), logits(False), mask)
        value = float(kl[0])
    else:
        clean = logits(False).detach()
        loss = kl_consistency_loss(clean, logits(True), mask)
        loss.backward()
        value = float(loss)
    return {"peak_growth_mib": _peak_mib() - before, "value": value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt", type=int, default=4096)
    parser.add_argument("--completion", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=151936)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "PASS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_variant(*args.child, args.prompt, args.completion, args.vocab)))
        return
    print(f"KL pass peak memory, 1 row, prompt {args.prompt} + completion {args.completion} tokens, vocab {args.vocab}")
    for pass_kind in ("reward", "aux_loss"):
        results = {}
        for variant in ("baseline", "span"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", variant, pass_kind, "--prompt", str(args.prompt),
                 "--completion", str(args.completion), "--vocab", str(args.vocab)],
                check=True, capture_output=True, text=True,
            )
            results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        base, span = results["baseline"], results["span"]
        same = abs(base["value"] - span["value"]) <= 1e-4 * max(1.0, abs(base["value"]))
        print(f"  {pass_kind:<9} baseline {base['peak_growth_mib']:8.0f} MiB   span {span['peak_growth_mib']:7.0f} MiB   "
              f"ratio {base['peak_growth_mib'] / max(span['peak_growth_mib'], 1e-9):5.1f}x   same KL: {same}")


if __name__ == "__main__":
    main()
