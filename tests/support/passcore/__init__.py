"""A test pass-core: Eclipse PASS's JSON:API server as our adapter's tests meet it.

Faithful to pass-core's source (eclipse-pass/pass-core, Elide 7.1 JSON:API, Spring
Security) rather than to our client: ``/data/{type}`` with RSQL filters, include, paging,
sparse fieldsets and sorting; optimistic locking on Submission and Deposit (409); PATCH
answered 200 with the document; double-submit CSRF before HTTP Basic (403, then 401 with
no challenge); the file service under ``/file``; SubmissionReady / DepositStatus /
SubmissionEvent messages handed to a callback after each committed change. The modules:
schema (the model), rsql and query (filters, sorting, paging, include), store (the write
path, versions, messages), jsonapi (documents), files (file service), http (security and
routing), graph (seeding from our graph files), server (the handle).

Usage::

    with running_passcore(on_message=lambda kind, body, props: ...) as pc:
        ids = pc.load_graph(make_graph("s1", tmp_path), files_dir=tmp_path)
        sub = ids[("Submission", "s1")]
        requests.get(f"{pc.base_url}/data/submission/{sub}?include=repositories",
                     auth=pc.auth)
        pc.resource("submission", sub)["attributes"]["version"]
        pc.find("deposit", submission=sub, depositStatus="accepted")
        pc.update("submission", sub, {"aggregatedDepositStatus": "in-progress"})
        pc.fail_next(2, status=503, path_prefix="/data/deposit")
        pc.delay_next(1, seconds=0.5)
        pc.drop_next(1, after_commit=True)
        len(pc.requests), pc.messages
"""

from __future__ import annotations

from tests.support.passcore.errors import JSON_API
from tests.support.passcore.http import CSRF_COOKIE, CSRF_HEADER, OnMessage, Request
from tests.support.passcore.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from tests.support.passcore.schema import TYPES
from tests.support.passcore.server import PassCore, running_passcore
from tests.support.passcore.store import (
    DEPOSIT_STATUS,
    SUBMISSION_EVENT,
    SUBMISSION_READY,
    Message,
)

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "DEFAULT_PAGE_SIZE",
    "DEPOSIT_STATUS",
    "JSON_API",
    "MAX_PAGE_SIZE",
    "SUBMISSION_EVENT",
    "SUBMISSION_READY",
    "TYPES",
    "Message",
    "OnMessage",
    "PassCore",
    "Request",
    "running_passcore",
]
