"""The system of record: a port (base.Store) and its adapters."""
