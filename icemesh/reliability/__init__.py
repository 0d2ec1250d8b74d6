"""Workloads and integrity checks the reliability tests and benchmarks share: contention, kill -9 cycles, fuzzing."""
