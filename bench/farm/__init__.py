"""A print farm on one Layerwise: resources, loop lag, bill latency, exact billing per farm size."""
