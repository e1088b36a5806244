"""Duplicates and resubmissions: the same work sent to a repository that holds it.

A deposit is a **resubmission** when another deposit to the same repository, of a
submission whose DOI is the same (normalised: resolver prefixes dropped, case folded),
is ACCEPTED or SUBMITTED. (A submission without a DOI is never one: titles and file
names are not identities.) Then, unless the repository allows duplicates
(repositories.json ``operations.allow-duplicates``) or the operator forced the
deposit (``retry --force``):

- **duplicate**: the earlier submission's content is the same (same article and
  journal metadata, persons, grants, and files by name, role, label and type): nothing
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
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from deposit_services.errors import ModelError, NotFound
from deposit_services.model.builder import (
    build_deposit_submission,
    normalise_doi,
    parse_metadata,
)
from deposit_services.model.entities import (
    Deposit,
    DepositStatus,
    Publication,
    RepositoryCopy,
    Submission,
)
from deposit_services.model.graph import Graph
from deposit_services.model.submission import DepositSubmission
from deposit_services.store.base import AttemptOutcome
from deposit_services.store.uow import UnitOfWork, get_or_none
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


def doi_key(raw: str | None) -> str | None:
    """The DOI as deposits are compared by: normalised, case folded (DOIs ignore case)."""
    doi = normalise_doi(raw)
    return doi.casefold() if doi else None


def fingerprint(content: DepositSubmission) -> str:
    """What makes two submissions the same content (not their ids, dates or where
    their files are kept)."""
    data: dict[str, Any] = dataclasses.asdict(content)
    for key in ("id", "submitted_date", "metadata", "agreements"):
        data.pop(key, None)
    data["article"]["doi"] = doi_key(content.article.doi)
    data["files"] = sorted(
        [f["name"], str(f["role"]), f["label"], f["mime_type"]] for f in data["files"])
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def find_resubmission(uow: UnitOfWork, deposit: Deposit, content: DepositSubmission,
                      supports_update: bool) -> Resubmission | None:
    """The earlier deposit this one resubmits (see the module doc), or None. Reads the
    repository's ACCEPTED and SUBMITTED deposits, their submissions and publications;
    the earlier submission's graph only when its DOI matches."""
    doi = doi_key(content.article.doi)
    if doi is None or not deposit.repository:
        return None
    holding = [d for status in HOLDING
               for d in uow.records.find(Deposit, repository=deposit.repository,
                                         deposit_status=status)
               if d.id != deposit.id and d.submission != deposit.submission]
    if not holding:
        return None
    submissions = {s.id: s for s in uow.records.get_many(
        Submission, [d.submission for d in holding if d.submission])}
    publications = {p.id: p for p in uow.records.get_many(
        Publication, [s.publication for s in submissions.values() if s.publication])}

    def same_doi(d: Deposit) -> bool:  # the DOI as the builder takes it: blob, publication
        submission = submissions.get(d.submission or "")
        if submission is None:
            return False
        publication = publications.get(submission.publication or "")
        try:
            given = parse_metadata(submission).get("doi")
        except ModelError:
            given = None
        return doi_key(str(given) if given else publication.doi if publication else None) == doi

    matches = sorted((d for d in holding if same_doi(d)),
                     key=lambda d: (d.deposit_status is DepositStatus.ACCEPTED, d.id))
    if not matches:
        return None
    earlier = matches[-1]
    if _content_of(uow, earlier) == fingerprint(content):
        return Resubmission(Kind.DUPLICATE, earlier, doi)
    if supports_update:
        return Resubmission(Kind.UPDATE, earlier, doi, prior_item(uow, earlier))
    return Resubmission(Kind.REPLACEMENT, earlier, doi)


def _content_of(uow: UnitOfWork, deposit: Deposit) -> str | None:
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
