"""spoolman"""
