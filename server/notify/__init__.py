"""Notifications through Apprise: ``rules`` decides (pure), ``service`` listens to the bus and sends."""
