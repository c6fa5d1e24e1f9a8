"""Analyses of what a teacher writes (question diversity)."""
