"""Package assemblers: one module per package format, registered by specification."""
