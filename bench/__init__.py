"""fd-sync benchmarks: ``make bench`` (see bench/README.md)."""
