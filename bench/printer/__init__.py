"""Benchmarks of the printer adapters."""
