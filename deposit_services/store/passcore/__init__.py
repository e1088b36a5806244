"""pass-core, PASS's JSON:API server, as the system of record: the records port over
HTTP (``records.py``, on ``client.py`` and the JSON:API mapping in ``jsonapi.py``) and a
unit of work that writes the records there and keeps the worker state in SQL beside it
(``database.py``)."""
