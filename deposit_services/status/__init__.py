"""Resolvers of a deposit's remote status (e.g. a SWORD statement)."""
