"""Peak memory of TW-GRPO's token weights: the release's full materialisation (baseline) vs rova's chunked pass.

    uv run python -m rova.bench token_weights [--groups 1] [--group-size 8] [--length 64] [--vocab 151936]
                                              [--device cpu|cuda]

Both start from the same final hidden states [groups x G, L, H] and vocabulary projection (Qwen2.5-VL-7B's
vocabulary, 151,936 entries; a small H: the projection's weight is not what differs). Each variant runs in a
fresh process, which reports the growth of its peak memory during the pass (CPU: peak resident memory; cuda:
peak allocated):
- baseline: the release (longmalongma/TW-GRPO, `compute_token_importance_kl_logs_uniform`): the log-probs of
  every row, position and vocabulary entry at once ([groups x G, L, V]), then the formula on the whole tensor;
- chunked:  rova.training.token_weights, one group at a time and `chunk_positions` positions of it at a time
  ([G, chunk, V] at most; chunk 13 for G = 8 at this vocabulary).
Prints MiB, the ratio, and the largest difference between the two variants' weights.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline_weights(logps, mask, group_size: int, alpha: float):
    """The release's computation, on [B*G, L, V] log-probs (B groups padded to one length L)."""
    import torch

    total, length, vocab = logps.shape
    grouped = logps.view(total // group_size, group_size, length, vocab)
    grouped_mask = mask.view(total // group_size, group_size, length).unsqueeze(-1)
    uniform = torch.full_like(grouped, -math.log(vocab))
    masked = torch.where(grouped_mask == 1, grouped, uniform)
    diff = torch.clamp(masked.mean(dim=1, keepdim=True) - masked, min=-11.0, max=11.0)
    kl = (torch.exp(diff) - diff - 1).sum(dim=-1).mean(dim=1)
    low, high = kl.min(dim=1, keepdim=True)[0], kl.max(dim=1, keepdim=True)[0]
    weights = 1.0 + (alpha - 1.0) * (kl - low) / (high - low + 1e-8)
    return weights.repeat_interleave(group_size, dim=0) * mask


def run_variant(variant: str, groups: int, group_size: int, length: int, vocab: int, device: str) -> dict:
    import torch

    from rova.training.token_weights import chunk_positions, group_token_weights, lm_head_log_probs

    torch.manual_seed(0)
    torch.set_num_threads(1)
    hidden_size, alpha = 64, 1.7
    head = torch.nn.Linear(hidden_size, vocab, bias=False).to(device)
    hidden = torch.randn(groups * group_size, length, hidden_size, device=device)
    # Every group's longest completion fills the length (the release's padded length is its group's).
    lengths = torch.randint(1, length + 1, (groups * group_size,), device=device)
    lengths[::group_size] = length
    mask = (torch.arange(length, device=device).unsqueeze(0) < lengths.unsqueeze(1)).long()
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.max_memory_allocated() / 2**20
    else:
        before = _rss_mib()
    with torch.no_grad():
        if variant == "baseline":
            weights = baseline_weights(torch.log_softmax(head(hidden), dim=-1), mask, group_size, alpha)
        else:
            weights = torch.zeros(groups * group_size, length, device=device)
            for g in range(groups):
                rows = slice(g * group_size, (g + 1) * group_size)
                w = group_token_weights(lm_head_log_probs(hidden[rows], head), lengths[rows], alpha,
                                        chunk_positions(group_size, vocab))
                weights[rows, : w.numel()] = w.unsqueeze(0)
            weights = weights * mask
    peak = (torch.cuda.max_memory_allocated() / 2**20) if cuda else _peak_mib()
    return {"peak_growth_mib": peak - before, "weights": weights.double().cpu().flatten().tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=1, help="prompt groups in the batch (B)")
    parser.add_argument("--group-size", type=int, default=8, help="completions per group (G)")
    parser.add_argument("--length", type=int, default=64, help="completion positions (L)")
    parser.add_argument("--vocab", type=int, default=151936)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", metavar="VARIANT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = (args.groups, args.group_size, args.length, args.vocab, args.device)
    if args.child:
        print(json.dumps(run_variant(args.child, *sizes)))
        return
    print(f"TW-GRPO token weights, peak memory: {args.groups} group(s) x G={args.group_size}, L={args.length}, "
          f"V={args.vocab}, {args.device}")
    results = {}
    for variant in ("baseline", "chunked"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", variant, "--groups", str(args.groups), "--group-size",
             str(args.group_size), "--length", str(args.length), "--vocab", str(args.vocab), "--device", args.device],
            check=True, capture_output=True, text=True,
        )
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    base, chunked = results["baseline"], results["chunked"]
    diff = max(abs(a - b) for a, b in zip(base["weights"], chunked["weights"]))
    print(f"  baseline (full [B*G, L, V]) {base['peak_growth_mib']:8.0f} MiB   chunked {chunked['peak_growth_mib']:7.0f} "
          f"MiB   ratio {base['peak_growth_mib'] / max(chunked['peak_growth_mib'], 1e-9):5.1f}x   "
          f"max |weight difference| {diff:.1e}")


if __name__ == "__main__":
    main()
