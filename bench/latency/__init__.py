"""Latency from a layer-change report to Spoolman's use."""
