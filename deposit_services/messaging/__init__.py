"""Message brokers: a port (base.Broker) and its adapters."""
