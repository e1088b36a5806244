"""The operator's web dashboard: a WSGI app (``app.create_app``) of server-rendered pages
(Jinja2, autoescaped), usable without JavaScript; ``serve`` runs it for ``deposit-services
web``, and the HTTP server of ``listen`` can mount it."""
