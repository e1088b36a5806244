"""Duplicates and resubmissions: the same work sent to a repository that holds it.

A deposit is a **resubmission** when another deposit to the same repository, of a
submission whose DOI is the same (normalised: resolver prefixes dropped, case folded),
is ACCEPTED or SUBMITTED. (A submission without a DOI is never one: titles and file
names are not identities.) Then, unless the repository allows duplicates
(repositories.json ``operations.allow-duplicates``) or the operator forced the
deposit (``retry --force``):

- **duplicate**: the earlier submission's content is the same (same article and
  journal metadata, persons, grants, and files by name, role, label and type, and by
  the size and digest the package recorded of each, so a corrected file under the same
  name is a change; the whole package's MD5 is no measure: packages carry their
  submission's id and date): nothing
  is sent; the deposit is FAILED, with a message naming the earlier deposit and how to
  send it anyway. FAILED because it is the one status DESIGN.md's semantics allow for
  "not transferred": FAILED has no RepositoryCopy (ACCEPTED would need the copy the
  other deposit made, REJECTED a REJECTED copy, and neither was decided by the
  repository), and FAILED is what ``retry --force`` takes;
- **update**: the content changed and the transport can replace an item
  (``Transport.supports_update``): the earlier item is updated (``PriorItem`` from the
  earlier deposit's records and its attempt log);
- **replacement**: the content changed and the protocol cannot update (file drops): a
  new package is sent and the deposit's message names it as a replacement of the
  earlier deposit's item.

Finding the earlier deposit is one indexed lookup of the works sent to the repository
with that DOI (``WorkerState.sent_works``, model/works.py), written in each deposit's
intent unit: no deposit of the repository is read unless one matches, so the check
costs the same on an empty repository and on one holding 10,000 items, and behind
pass-core no request at all.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from deposit_services.errors import ModelError, NotFound
from deposit_services.model.builder import build_deposit_submission
from deposit_services.model.entities import (
    Deposit,
    DepositStatus,
    Publication,
    RepositoryCopy,
    Submission,
)
from deposit_services.model.graph import Graph
from deposit_services.model.submission import DepositSubmission
from deposit_services.model.works import DOI_LIMIT, SentWork, doi_key, works_of
from deposit_services.store.base import AttemptOutcome
from deposit_services.store.uow import Database, UnitOfWork, get_or_none, run_unit
from deposit_services.transports.base import PriorItem

log = logging.getLogger(__name__)

HOLDING = (DepositStatus.ACCEPTED, DepositStatus.SUBMITTED)
_EVIDENCE = (AttemptOutcome.SENT, AttemptOutcome.RECONCILED)


class Kind(enum.StrEnum):
    DUPLICATE = "duplicate"
    UPDATE = "update"
    REPLACEMENT = "replacement"


@dataclass(frozen=True)
class Resubmission:
    """What a deposit is to an earlier one (``kind``), with the earlier deposit."""

    kind: Kind
    earlier: Deposit
    doi: str
    prior: PriorItem | None = None

    def message(self, deposit_id: str, protocol: str) -> str:
        earlier = self.earlier
        status = earlier.deposit_status.value if earlier.deposit_status else "-"
        held = f"deposit {earlier.id} ({status}, submission {earlier.submission})"
        if self.kind is Kind.DUPLICATE:
            return (f"not sent: DOI {self.doi} with the same content is already in this "
                    f"repository from {held}; to send it anyway run `deposit-services retry "
                    f"--force --uri {deposit_id}`")
        if self.kind is Kind.UPDATE:
            return f"a corrected resubmission of DOI {self.doi}: updated the item of {held}"
        return (f"a corrected resubmission of DOI {self.doi}: {protocol} cannot update an "
                f"item in place, so this new package replaces the one of {held}")


_NOT_CONTENT = frozenset({"id", "submitted_date", "metadata", "agreements"})


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` as JSON sees it, without its deep copy of every value
    (a third of a millisecond a submission, most of it the metadata left out)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def fingerprint(content: DepositSubmission,
                contents: Sequence[tuple[str, int, str]] = ()) -> str:
    """What makes two submissions the same content (not their ids, dates or where
    their files are kept): the metadata, and each file's name, role, label and type,
    with its size and digest as the package recorded them (``Package.contents``; left
    out when not given, as for a deposit made before the index)."""
    data: dict[str, Any] = {f.name: _plain(getattr(content, f.name))
                            for f in dataclasses.fields(content) if f.name not in _NOT_CONTENT}
    data["article"]["doi"] = doi_key(content.article.doi)
    written = {id: [size, digest] for id, size, digest in contents}
    data["files"] = sorted(
        [f["name"], str(f["role"]), f["label"], f["mime_type"], *written.get(f["id"], [])]
        for f in data["files"])
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def sent_work(deposit: Deposit, content: DepositSubmission, printed: str) -> SentWork | None:
    """The index row of ``deposit`` sending ``content`` (fingerprint ``printed``); None
    without a DOI or a repository."""
    doi = doi_key(content.article.doi)
    if doi is None or not deposit.repository or not deposit.submission:
        return None
    if len(doi) > DOI_LIMIT:
        log.warning("deposit %s: its DOI is %d characters long, not indexed for the "
                    "duplicate check (longer than %d: not a DOI)", deposit.id, len(doi),
                    DOI_LIMIT)
        return None
    return SentWork(deposit.repository, doi, deposit.id, deposit.submission, printed)


def find_resubmission(uow: UnitOfWork, deposit: Deposit, content: DepositSubmission,
                      printed: str, supports_update: bool) -> Resubmission | None:
    """The earlier deposit this one resubmits (see the module doc), or None. One
    indexed lookup of the works sent to the repository with this DOI (``sent_works``);
    only on a match the earlier deposits are read (to confirm they still hold the
    work), and the earlier submission's graph only when its row has no fingerprint.
    ``printed`` is this deposit's fingerprint (``fingerprint``, with its package's
    contents)."""
    doi = doi_key(content.article.doi)
    if doi is None or not deposit.repository:
        return None
    rows = {w.deposit_id: w for w in uow.state.sent_works(deposit.repository, doi)
            if w.deposit_id != deposit.id and w.submission_id != deposit.submission}
    if not rows:
        return None
    holding = [d for d in uow.records.get_many(Deposit, list(rows))
               if d.deposit_status in HOLDING and d.repository == deposit.repository]
    if not holding:
        return None
    earlier = max(holding, key=lambda d: (d.deposit_status is DepositStatus.ACCEPTED, d.id))
    stored = rows[earlier.id].fingerprint
    same = (stored == printed if stored is not None
            else _content_of(uow, earlier) == fingerprint(content))
    if same:
        return Resubmission(Kind.DUPLICATE, earlier, doi)
    if supports_update:
        return Resubmission(Kind.UPDATE, earlier, doi, prior_item(uow, earlier))
    return Resubmission(Kind.REPLACEMENT, earlier, doi)


def _content_of(uow: UnitOfWork, deposit: Deposit) -> str | None:
    """The fingerprint of a deposit made before the index, from its submission (its
    files by name, role, label and type only)."""
    try:
        graph = Graph(tuple(uow.records.submission_graph(deposit.submission or "")))
        return fingerprint(build_deposit_submission(graph.submission, graph))
    except (NotFound, ModelError) as exc:
        log.warning("deposit %s: its submission cannot be compared (%s); taken as changed",
                    deposit.id, exc)
        return None


def prior_item(uow: UnitOfWork, earlier: Deposit) -> PriorItem:
    """The item the earlier deposit left: its records and its last transfer's evidence
    in the attempt log (``edit_iri``, ``status_ref``, ``access_url``)."""
    copy = get_or_none(uow, RepositoryCopy, earlier.repository_copy)
    evidence: dict[str, str] = {}
    for attempt in uow.state.attempts(earlier.id):
        if attempt.outcome in _EVIDENCE:
            evidence = {k: v for k, v in (("edit_iri", attempt.edit_iri),
                                          ("status_ref", attempt.status_ref),
                                          ("access_url", attempt.access_url)) if v}
    return PriorItem(status_ref=earlier.deposit_status_ref,
                     access_url=copy.access_url if copy else None,
                     external_ids=tuple(copy.external_ids) if copy else (),
                     evidence=evidence)


INDEX_BATCH = 200  # deposits indexed per unit (their submissions and publications: 2 reads)


def index_earlier_works(database: Database, repository: str | None,
                        progress: Callable[[int, int], None]) -> int:
    """Index the works of ACCEPTED and SUBMITTED deposits (of ``repository``, a
    Repository id, or of every repository) that have no row yet: the deposits made
    before the index (``deposit-services index-works``). One unit per batch, so a stop
    loses at most a batch, done again next time; rows written since are kept. Calls
    ``progress(done, total)`` after each batch; returns how many rows were added."""
    where = {"repository": repository} if repository else {}
    deposits = run_unit(database, lambda uow: [
        d for status in HOLDING for d in uow.records.find(Deposit, deposit_status=status,
                                                          **where)],
        read_only=True, what="finding the deposits to index")
    added = 0
    for start in range(0, len(deposits), INDEX_BATCH):
        batch = deposits[start:start + INDEX_BATCH]

        def index(uow: UnitOfWork, batch: list[Deposit] = batch) -> int:
            submissions = uow.records.get_many(
                Submission, list(dict.fromkeys(d.submission for d in batch if d.submission)))
            publications = uow.records.get_many(Publication, list(dict.fromkeys(
                s.publication for s in submissions if s.publication)))
            return uow.state.backfill_sent_works(works_of(batch, submissions, publications))

        added += run_unit(database, index, what="indexing the works sent")
        progress(start + len(batch), len(deposits))
    return added
