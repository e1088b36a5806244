"""The DSpace 7+ REST protocol family (protocol ``DSpace``).

- ``client``: HTTP to the REST API (CSRF token, JWT login and re-login, HAL JSON,
  errors mapped to our TransferErrors, a streamed multipart body);
- ``metadata``: the JSON Patch of a workspace item's sections, and the marker that
  lets a restart find an item made before;
- ``transport``: ``DSpaceTransport`` and its ``DSpaceBinding``;
- ``status``: ``DSpaceItemResolver``, the item's state mapped to a DepositStatus.

Nothing is imported here: the registries import the modules lazily.
"""
