"""Evaluation: scoring, aggregation, robustness metrics and reports (../shared/docs/eval.md)."""
