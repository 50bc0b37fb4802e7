"""Fault campaign: randomized kills, broker drops and Spoolman outages during real prints."""
