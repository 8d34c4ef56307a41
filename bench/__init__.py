"""Benchmarks: data generators at scale and per-stage timings; results in bench/RESULTS.md."""
