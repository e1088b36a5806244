"""The search index: one document per submission and per deposit, for operators.

``base`` is the port (``SearchIndex``), ``elastic`` its Elasticsearch 8 adapter,
``documents`` builds the documents from the records (PASS's field names), ``pending``
keeps the durable "to index" marks that a unit of work records with its changes, and
``relay`` writes the marked documents after the commit, catching up when the index was
down. ``commands`` holds ``reindex`` and ``search`` for the CLI.
"""
