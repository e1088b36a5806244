"""NIHMS deposits in a store, as a drop with NIHMS's mails as status source leaves them:
Deposit SUBMITTED with ``nihms-package:<id>``, its copy IN_PROGRESS at the drop URL,
the submission IN_PROGRESS. Used by the integration tests and bench/nihms_mail.py."""

from __future__ import annotations

from dataclasses import dataclass
from string import Template

from deposit_services.model.entities import (
    AggregatedDepositStatus,
    CopyStatus,
    Deposit,
    DepositStatus,
    Repository,
    RepositoryCopy,
    Submission,
)
from deposit_services.nihms_mail.refs import package_ref
from deposit_services.store.uow import Database, UnitOfWork, run_unit

REPOSITORY = "repo-pmc"


def package_name(submission_id: str) -> str:
    return f"nihms-native-2022-05_2026-11-30_01-02-03_{submission_id}"


@dataclass(frozen=True)
class Seeded:
    submission: str
    deposit: str
    copy: str
    package: str


def seed(database: Database, submission_ids: list[str]) -> list[Seeded]:
    """One submission, SUBMITTED NIHMS deposit and IN_PROGRESS copy per id."""
    made: list[Seeded] = []

    def add(uow: UnitOfWork) -> None:
        if not uow.records.find(Repository, repository_key="pmc"):
            uow.records.add(Repository(id=REPOSITORY, name="PubMed Central",
                                       repository_key="pmc"))
        for sid in submission_ids:
            package = package_name(sid)
            uow.records.add(Submission(
                id=sid, submitted=True, repositories=[REPOSITORY],
                aggregated_deposit_status=AggregatedDepositStatus.IN_PROGRESS))
            url = f"sftp://127.0.0.1:2222/upload/2026-11-30/{package}.tar.gz"
            uow.records.add(RepositoryCopy(id=f"copy-{sid}", repository=REPOSITORY,
                                           copy_status=CopyStatus.IN_PROGRESS,
                                           access_url=url, external_ids=[url]))
            uow.records.add(Deposit(id=f"dep-{sid}", submission=sid, repository=REPOSITORY,
                                    repository_copy=f"copy-{sid}",
                                    deposit_status=DepositStatus.SUBMITTED,
                                    deposit_status_ref=package_ref(package)))
            made.append(Seeded(sid, f"dep-{sid}", f"copy-{sid}", package))

    run_unit(database, add)
    return made


def body(template: str, **packages: str) -> str:
    """A fixture body (tests/fixtures/nihms_mail) with its ``$name`` placeholders filled."""
    return Template(template).substitute(packages)
