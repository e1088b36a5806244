"""Transports: one module (or package, for a protocol family) per protocol, registered by
the protocol-binding name in ``base.TRANSPORTS``."""
