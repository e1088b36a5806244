"""Test-support servers and helpers shared by several test folders (importable as tests.support)."""
