"""The relay: writes the documents of committed changes to the index, after the commit.

``SearchRelay`` is the database's ``CommitHook``: inside each unit that writes records
or an attempt it records "to index" marks (``pending``) with the change (``marks_for``
says which), and after the commit it wakes its thread, which reads the marked entities
as committed, builds their documents and writes them in one bulk request, then removes
the marks. A change of an entity that documents only show (a Publication, Journal,
User, Repository, a copy whose deposit the unit did not read) is marked as itself and
turned by the relay into marks of the documents the index holds that show it, so the
committing unit reads nothing for it. A rolled-back unit leaves no mark, so no document
ever shows state that was not committed. When the index is down or refuses, the marks
stay and the thread tries again with a growing pause (up to ``MAX_PAUSE_S``): a deposit
never waits for the index, and the index catches up by itself when it is back
(``reindex`` is for a new index).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence

from deposit_services.errors import DepositServicesError, SearchUnavailable
from deposit_services.model.entities import (
    Deposit,
    Entity,
    Journal,
    Publication,
    Repository,
    RepositoryCopy,
    Submission,
    User,
)
from deposit_services.search.base import SearchIndex
from deposit_services.search.documents import INDEXED_TYPES, build
from deposit_services.search.pending import Mark, PendingMarks
from deposit_services.settings import Settings
from deposit_services.store.passcore.database import PassCoreDatabase
from deposit_services.store.sql import SqlDatabase
from deposit_services.store.uow import CommitHook, Database, UnitOfWork, run_unit

log = logging.getLogger(__name__)

BATCH = 500
IDLE_S = 5.0  # also picks up marks other processes (the CLI's retry) recorded
MAX_PAUSE_S = 15.0
LEASE = "job:search-relay"
LEASE_SECONDS = 60.0  # longer than a run (a batch and one bulk request) can take
PAGE = 500  # documents per search when finding those that show an entity
WINDOW = 10_000  # Elasticsearch's max_result_window: how far a search pages

# The entities documents show without having documents of their own, and the document
# fields that refer to them (a deposit's document carries its submission's publication,
# journal and submitter).
REFERRED_BY: dict[str, tuple[str, ...]] = {
    Publication.TYPE: ("publication",),
    Journal.TYPE: ("journal",),
    User.TYPE: ("submitter",),
    Repository.TYPE: ("repository", "repositories"),
    RepositoryCopy.TYPE: ("repositoryCopy",),
}


def marks_for(uow: UnitOfWork, entities: Sequence[Entity]) -> list[tuple[str, str]]:
    """The documents the writes of ``uow`` make stale, found in what it wrote and read
    (no read of its own): a written submission's or deposit's, a deposit's submission's
    (it lists its deposits' statuses), the deposit of each attempt written, and each
    deposit the unit read whose copy it wrote. Any other entity documents show (a
    Publication, Journal, submitter User, Repository, or a copy whose deposit the unit
    did not read) is marked as itself: the relay finds the documents that show it."""
    keys: dict[tuple[str, str], None] = dict.fromkeys((Deposit.TYPE, id)
                                                      for id in uow.attempted)
    for entity in entities:
        if entity.TYPE in INDEXED_TYPES:
            keys[(entity.TYPE, entity.id)] = None
        if isinstance(entity, Deposit) and entity.submission:
            keys[(Submission.TYPE, entity.submission)] = None
        if entity.TYPE in REFERRED_BY and not isinstance(entity, RepositoryCopy):
            keys[(entity.TYPE, entity.id)] = None
    copies = {e.id for e in entities if isinstance(e, RepositoryCopy)}
    if copies:
        readers = [d for d in uow.records.loaded(Deposit) if d.repository_copy in copies]
        keys.update(((Deposit.TYPE, d.id), None) for d in readers)
        keys.update(((RepositoryCopy.TYPE, id), None)
                    for id in sorted(copies - {d.repository_copy for d in readers}))
    return list(keys)


class SearchRelay(CommitHook):
    """Marks changes in their transaction and writes their documents after it."""

    def __init__(self, database: Database, index: SearchIndex, marks: PendingMarks) -> None:
        self.database = database
        self.index = index
        self.marks = marks
        self.owner = f"search-relay:{uuid.uuid4().hex}"
        self.holds_lease = False
        self.prepared = False
        self.down_since: str | None = None  # the error of an ongoing outage
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the hook (in the worker's threads) ---------------------------------------------

    def changed(self, uow: UnitOfWork, entities: Sequence[Entity]) -> None:
        keys = marks_for(uow, entities)
        if keys:
            PendingMarks.add(uow.state_connection(), keys)

    def committed(self) -> None:
        self._wake.set()

    # -- the relay ----------------------------------------------------------------------

    def run_once(self, limit: int = BATCH) -> int:
        """Write the documents of up to ``limit`` marks; returns how many marks were
        done. ``SearchUnavailable`` / ``SearchError``: the marks stay for later.

        One relay at a time among the processes on this store (the ``search-relay``
        lease): two that read the same mark could otherwise write an older document
        after a newer one and leave it so. Once the index is prepared, nothing marked
        means nothing written: the lease is taken only when there is work, so an idle
        relay's poll is one read."""
        if self.prepared and not self.marks.oldest(1):
            return 0
        if not run_unit(self.database, lambda uow: uow.state.acquire_lease(
                LEASE, self.owner, LEASE_SECONDS), what="search relay lease"):
            return 0
        self.holds_lease = True
        if not self.prepared:
            self.index.prepare()
            self.prepared = True
        marks = self.marks.oldest(limit)
        if not marks:
            return 0
        referred = [m for m in marks if m.kind in REFERRED_BY]
        if referred:  # their documents are marked now, written in the next runs
            self.marks.replace([m.id for m in referred], self._showing(referred))
            marks = [m for m in marks if m.kind not in REFERRED_BY]
            if not marks:
                return len(referred)
        submissions = list(dict.fromkeys(m.entity_id for m in marks
                                         if m.kind == Submission.TYPE))
        deposits = list(dict.fromkeys(m.entity_id for m in marks if m.kind == Deposit.TYPE))
        documents, missing = run_unit(self.database,
                                      lambda uow: build(uow, submissions, deposits),
                                      read_only=True, what="search documents")
        for kind, id in missing:
            log.warning("search index: %s %s is no longer in the records; its document "
                        "(if any) is left as it was", kind, id)
        self.index.write(documents, refresh=True)
        self.marks.remove([m.id for m in marks])
        return len(marks) + len(referred)

    def _showing(self, referred: Sequence[Mark]) -> list[tuple[str, str]]:
        """The documents in the index that show the entities of ``referred`` marks, by
        the fields that refer to them (a document not in the index yet is built from
        the records when its own mark is relayed, so it shows the change already)."""
        keys: dict[tuple[str, str], None] = {}
        for mark in referred:
            for field in REFERRED_BY[mark.kind]:
                offset = 0
                while True:
                    found = self.index.search("", size=PAGE, offset=offset,
                                              filters={field: mark.entity_id})
                    keys.update(((d["@type"], d["@id"]), None) for d in found.documents
                                if d.get("@type") in INDEXED_TYPES and d.get("@id"))
                    offset += len(found.documents)
                    if not found.documents or offset >= found.total:
                        break
                    if offset >= WINDOW:
                        log.warning("search index: %s %s is shown by %d documents, more "
                                    "than the %d a search can page through; run "
                                    "`deposit-services reindex` to bring the rest up to date",
                                    mark.kind, mark.entity_id, found.total, WINDOW)
                        break
        return list(keys)

    def catch_up(self) -> int:
        """Relay every mark there is now; returns how many."""
        done = 0
        while (step := self.run_once()) > 0:
            done += step
        return done

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="search-relay", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        pause = 1.0
        while not self._stop.is_set():
            try:
                done = self.run_once()
            except DepositServicesError as exc:
                self._outage(exc, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, MAX_PAUSE_S)
                continue
            except Exception:
                log.exception("search index relay failed; trying again in %.0f s", pause)
                self._stop.wait(pause)
                pause = min(pause * 2, MAX_PAUSE_S)
                continue
            pause = 1.0
            if self.down_since is not None:
                log.warning("search index answers again: catching up on the changes made "
                            "while it was down")
                self.down_since = None
            if done >= BATCH:
                continue
            self._wake.wait(IDLE_S)
            self._wake.clear()

    def _outage(self, exc: DepositServicesError, pause: float) -> None:
        if self.down_since is None:
            kind = "cannot be reached" if isinstance(exc, SearchUnavailable) else "refused"
            log.warning("search index %s (%s): deposits go on, their changes wait in "
                        "search_pending and are indexed when it answers (trying again in "
                        "%.0f s)", kind, exc, pause)
            self.down_since = str(exc)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=IDLE_S)
            self._thread = None
        if self.holds_lease:
            try:  # let another process's relay take over at once
                run_unit(self.database, lambda uow: uow.state.release_lease(LEASE, self.owner))
                self.holds_lease = False
            except DepositServicesError as exc:
                log.debug("search relay lease not released (%s); it runs out", exc)
        self.index.close()


def state_database(database: Database) -> SqlDatabase:
    """The SQL database that holds the worker state."""
    if isinstance(database, PassCoreDatabase):
        return database.state
    if isinstance(database, SqlDatabase):
        return database
    raise TypeError(f"the search index needs a SQL worker state, not {type(database).__name__}")


def build_index(settings: Settings, name: str | None = None) -> SearchIndex:
    from deposit_services.search.elastic import ElasticIndex

    assert settings.elasticsearch_url
    return ElasticIndex(settings.elasticsearch_url, name or settings.search_index,
                        user=settings.search_user, password=settings.search_password,
                        api_key=settings.search_api_key, ca_file=settings.search_ca_file)


def search_from_settings(settings: Settings, database: Database) -> SearchRelay | None:
    """The relay for ``database``, its hook installed; None without DEPOSIT_SEARCH_URL."""
    if not settings.elasticsearch_url:
        return None
    marks = PendingMarks(state_database(database).engine)
    relay = SearchRelay(database, build_index(settings), marks)
    database.commit_hooks.append(relay)
    return relay
