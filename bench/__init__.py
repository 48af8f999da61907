"""Benchmarks: what a recovery costs and how long it takes, measured by running the shipped scenarios."""
