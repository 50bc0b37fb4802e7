"""Slots: which Spoolman spool sits in which tray, set by a person or matched by RFID."""
