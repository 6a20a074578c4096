"""Helpers that both tests/ and bench/ use: neither imports the other.

Not shipped to Azure (.amlignore uploads jobs/ and scoring/ only).
"""
