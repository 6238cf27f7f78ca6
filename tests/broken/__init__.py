"""Deliberately broken models for the system-check tests; installed only by those tests."""
