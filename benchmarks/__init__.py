"""Benchmarks: ``python -m benchmarks.speed`` reproduces the paper's speed comparison (Table 1) on this machine."""
