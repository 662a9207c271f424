"""Benchmarks (`make bench`): measured figures, never timed assertions (DESIGN.md §8)."""
