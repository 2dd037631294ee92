"""Benchmarks declared once (``aigbench/suites/data/*.json``) and the generic runner:
``bench suites``, ``bench eval``, ``bench leaderboard``."""
