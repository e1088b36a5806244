"""The SWORD protocol family: one package, so that each concept has one place.

- ``client``: HTTP to a SWORD server (per-thread sessions, credentials, TLS, bounded
  reads, HTTP answers and ``sword:error`` documents mapped to our TransferErrors);
- ``documents``: the XML a SWORD server serves (service document, deposit receipt,
  error document, SWORDv2 statement), read by local name;
- ``transport``: ``SwordV2Transport`` and its ``SwordV2Binding`` (protocol ``SWORDv2``);
- ``statement``: ``SwordStatementResolver``, the StatusResolver that follows a SWORDv2
  deposit's Atom / ORE statement.

``client`` and ``documents`` are meant to serve every SWORD version; what is SWORDv2
only says so in its name (``SwordV2*``) or docstring. Nothing is imported here: the
transport registry and the service layer import the modules lazily.
"""
