"""The Invenio protocol family: InvenioRDM's records API (protocol ``invenioRdm``) and
Zenodo's deposition API (protocol ``zenodo``, the legacy Invenio one).

- ``client``: HTTP with a bearer token, JSON, errors mapped to our TransferErrors
  (401/403 permanent, 400/422 naming the fields, 429/5xx/time-outs transient), and
  files streamed from the package;
- ``files``: the files a package holds (a zip's entries, or the package itself);
- ``rdm``: ``InvenioRdmTransport`` (drafts, files, publish, community review, versions);
- ``zenodo``: ``ZenodoTransport`` (deposition, bucket, publish, new versions);
- ``status``: the resolvers of both.

Nothing is imported here: the registries import the modules lazily.
"""
