"""Transports: one module per protocol, registered by the protocol-binding name."""
