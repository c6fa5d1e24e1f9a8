"""Readable orchestration: plain functions that wire components together."""
