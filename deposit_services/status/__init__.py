"""Resolvers of a deposit's remote status: ``base`` (the port, the state mapping, auth
realms) and ``sword`` (SWORDv2 Atom / ORE statements)."""
