"""Benchmarks of the print-analysis engine."""
