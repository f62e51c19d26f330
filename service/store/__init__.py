"""Persistence: tables, engine set-up and every query (called through `Store`)."""
