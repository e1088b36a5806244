"""The Elasticsearch 8 adapter of the search index (the ``elasticsearch`` client).

Against Elasticsearch the client's defaults are kept: its compatibility media type
(``application/vnd.elasticsearch+json; compatible-with=8``), TLS verified (the system's
CA bundle or ``DEPOSIT_SEARCH_CA_FILE``), basic auth or an API key. A server that says
it is not Elasticsearch (OpenSearch, or the in-memory osmem-server of the tests)
refuses that media type; for it alone the same requests go as plain JSON
(``PlainJsonNode``). The client's errors become ``SearchUnavailable`` (cannot reach,
time-out, 429, 5xx) or ``SearchError`` (a refused request) here, at the boundary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import HttpHeaders, TlsError, TransportError, Urllib3HttpNode
from elastic_transport._models import DEFAULT, DefaultType
from elastic_transport._node._base import NodeApiResponse
from elasticsearch import ApiError, Elasticsearch

from deposit_services.errors import SearchError, SearchUnavailable
from deposit_services.safetext import mask_url, safe
from deposit_services.search.base import Document, SearchIndex, SearchResult, operator_query

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
BULK_CHUNK = 1000
_COMPAT = "application/vnd.elasticsearch+"

# Keyword fields are matched whole (ids, statuses, DOIs, checksums); text fields by word.
_KEYWORDS = ("@id", "@type", "depositStatus", "depositStatusRef", "submission", "repository",
             "repositoryKey", "repositoryCopy", "copyStatus", "aggregatedDepositStatus",
             "submissionStatus", "source", "publication", "journal", "doi", "pmid", "issns",
             "submitter", "submitterEmail", "repositories", "repositoryKeys", "deposits",
             "depositStatuses", "externalIds", "accessUrl", "lastAttemptTrigger",
             "lastAttemptOutcome", "packageName", "packageMd5", "packageSha256")
_TEXTS = ("title", "journalName", "submitterName", "repositoryName", "statusMessage",
          "lastError", "errors")
_DATES = ("submittedDate", "nextAttemptAt", "lastAttemptAt", "firstAttemptAt")
_NUMBERS = {"attempts": "integer", "packageSize": "long"}


def mappings() -> dict[str, Any]:
    """The index mapping: PASS's field names, each typed for how operators search it."""
    properties: dict[str, Any] = {name: {"type": "keyword"} for name in _KEYWORDS}
    # text only (no keyword sub-field: it costs the index a third of its speed); terms
    # aggregations (Kibana) use the keyword fields: repositoryKey, depositStatus ...
    properties.update({name: {"type": "text"} for name in _TEXTS})
    properties.update({name: {"type": "date"} for name in _DATES})
    properties.update({name: {"type": kind} for name, kind in _NUMBERS.items()})
    properties["submitted"] = {"type": "boolean"}
    return {"dynamic": True, "properties": properties}


class PlainJsonNode(Urllib3HttpNode):
    """The client's requests with plain JSON media types, for servers that are not
    Elasticsearch and refuse its compatibility type (OpenSearch, osmem-server)."""

    def perform_request(self, method: str, target: str, body: bytes | None = None,
                        headers: HttpHeaders | None = None,
                        request_timeout: DefaultType | float | None = DEFAULT,
                        ) -> NodeApiResponse:
        if headers is not None:
            headers = headers.copy()
            for name in ("content-type", "accept"):
                value = headers.get(name)
                if value and value.startswith(_COMPAT):
                    plain = value[len(_COMPAT):].split(";", 1)[0].strip()
                    headers[name] = f"application/{plain}"
        return super().perform_request(method, target, body=body, headers=headers,
                                       request_timeout=request_timeout)


def _error(exc: Exception, doing: str) -> SearchError:
    """Our error for a client failure while ``doing`` something."""
    if isinstance(exc, ApiError):
        status = exc.meta.status
        text = f"{doing}: the index answered {status} ({safe(str(exc.message))})"
        if status == 429 or status >= 500:
            return SearchUnavailable(text)
        return SearchError(text)
    if isinstance(exc, TlsError):
        return SearchUnavailable(
            f"{doing}: the index cannot be reached: its TLS certificate was not verified "
            f"({safe(str(exc))}); set DEPOSIT_SEARCH_CA_FILE to the CA that signed it")
    return SearchUnavailable(f"{doing}: the index cannot be reached ({safe(str(exc))})")


class ElasticIndex(SearchIndex):
    """The index ``name`` on the cluster at ``url``; the client is made on first use
    (no connection at start-up), after asking the server what it is."""

    def __init__(self, url: str, name: str, *, user: str | None = None,
                 password: str | None = None, api_key: str | None = None,
                 ca_file: str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url
        self.name = name
        # no retries and no dead-node pause of the client's own: the relay keeps the
        # changes and decides when to try again
        self._options: dict[str, Any] = {"request_timeout": timeout, "max_retries": 0,
                                         "verify_certs": True, "max_dead_node_backoff": 1.0}
        if api_key:
            self._options["api_key"] = api_key
        elif user:
            self._options["basic_auth"] = (user, password or "")
        if ca_file:
            self._options["ca_certs"] = ca_file
        self._client: Elasticsearch | None = None

    def __repr__(self) -> str:
        return f"ElasticIndex({mask_url(self.url)!r}, {self.name!r})"

    def client(self) -> Elasticsearch:
        if self._client is None:
            probe = Elasticsearch(self.url, **self._options)
            try:
                info = probe.info()
            except (ApiError, TransportError) as exc:
                probe.close()
                raise _error(exc, f"connecting to {mask_url(self.url)}") from exc
            version = info.body.get("version", {}) if isinstance(info.body, dict) else {}
            if version.get("distribution", "elasticsearch") == "elasticsearch":
                self._client = probe
            else:
                probe.close()
                log.info("search index at %s is %s %s, not Elasticsearch: plain JSON requests",
                         mask_url(self.url), version.get("distribution"), version.get("number"))
                self._client = Elasticsearch(self.url, node_class=PlainJsonNode,
                                             **self._options)
        return self._client

    def prepare(self) -> None:
        try:
            client = self.client()
            client.indices.put_index_template(
                name=self.name, index_patterns=[self.name],
                template={"mappings": mappings()}, priority=100)
            if not client.indices.exists(index=self.name):
                client.indices.create(index=self.name)
        except (ApiError, TransportError) as exc:
            if isinstance(exc, ApiError) and exc.meta.status == 400 and \
                    "already_exists" in str(exc.message):
                return  # another replica created it between our check and our create
            raise _error(exc, f"preparing index {self.name}") from exc

    def write(self, documents: Iterable[Document], refresh: bool = False) -> int:
        written = 0
        batch: list[dict[str, Any]] = []
        for document in documents:
            source = dict(document)
            batch += [{"index": {"_index": self.name, "_id": source.pop("_id")}}, source]
            if len(batch) >= 2 * BULK_CHUNK:
                written += self._bulk(batch, refresh)
                batch = []
        if batch:
            written += self._bulk(batch, refresh)
        return written

    def _bulk(self, operations: list[dict[str, Any]], refresh: bool) -> int:
        try:
            answer = self.client().bulk(operations=operations,
                                        refresh="wait_for" if refresh else False)
        except (ApiError, TransportError, TransportConnectionError) as exc:
            raise _error(exc, f"writing {len(operations) // 2} document(s)") from exc
        if answer.get("errors"):
            failed = [item.get("index", {}) for item in answer.get("items", [])
                      if item.get("index", {}).get("error")]
            statuses = {int(item.get("status", 500)) for item in failed}
            first = failed[0] if failed else {}
            text = (f"the index refused {len(failed)} document(s), e.g. {first.get('_id')}: "
                    f"{safe(str(first.get('error')))}")
            if statuses and all(s == 429 or s >= 500 for s in statuses):
                raise SearchUnavailable(text)
            raise SearchError(text)
        return len(operations) // 2

    def search(self, query: str, *, size: int = 50, offset: int = 0,
               filters: Mapping[str, str] | None = None) -> SearchResult:
        must: list[dict[str, Any]] = []
        query = operator_query(query)
        if query.strip():
            must.append({"query_string": {"query": query, "lenient": True,
                                          "default_operator": "AND"}})
        clauses = [{"term": {field: value}} for field, value in (filters or {}).items()]
        body = {"bool": {"must": must or [{"match_all": {}}], "filter": clauses}}
        try:
            answer = self.client().search(index=self.name, query=body, size=size,
                                          from_=offset, track_total_hits=True)
        except (ApiError, TransportError) as exc:
            raise _error(exc, f"searching for {safe(query)!r}") from exc
        hits = answer.get("hits", {})
        total = hits.get("total", 0)
        return SearchResult(
            total=int(total.get("value", 0) if isinstance(total, dict) else total),
            documents=[dict(hit.get("_source", {})) for hit in hits.get("hits", [])])

    def refresh(self) -> None:
        try:
            self.client().indices.refresh(index=self.name)
        except (ApiError, TransportError) as exc:
            raise _error(exc, f"refreshing index {self.name}") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
