"""sessionstore benchmarks: `python -m benchmarks` (or `make bench`). Reports ratios from one run."""
