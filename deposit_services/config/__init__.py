"""repositories.json: load, interpolate, validate."""
