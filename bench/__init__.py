"""Benchmarks: each prints its figures as ratios against raw limits measured in the same run."""
