"""Home Assistant through MQTT discovery: ``discovery`` (pure: entities, topics, states), ``bridge`` (the MQTT side)."""
