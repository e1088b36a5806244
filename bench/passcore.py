"""HTTP requests to pass-core per submission: ours next to PASS's Java deposit services.

Runs the worker in this process against the test pass-core (tests/support/passcore,
over HTTP on loopback), its records there and its worker state in a SQLite file, on
filesystem targets, for a submission with one and with two repositories, and prints the
JSON:API requests it makes: processing the SubmissionReady, then handling every message
pass-core publishes about our own writes (its "echoes": SubmissionReady after each
update of the submission, DepositStatus after each Deposit write), as the same worker
and as another replica would; file downloads apart. Target: at most 2 + 4R JSON:API
requests, fewer than PASS.

PASS's figures are counted from its source (eclipse-pass/pass-support 61a6d6f,
pass-deposit-services/deposit-core, and pass-data-client's JsonApiPassClient; G = the
submission's grants, 0 here; a filesystem-like target that accepts at once):

 1. GET submission (SubmissionListener.processSubmissionMessage)
 2. GET submission (CriticalPath.performCritical: precondition)
 3. GET submission?include=publication,repositories,submitter,preparers,grants,
    effectivePolicies (SubmissionReader.readPassSubmission), then one GET per grant
 4. GET file?filter=submission.id==s (SubmissionReader)
 5. PATCH submission in-progress, 6. GET submission (CriticalPath: claim, re-read)
 per repository:
 7. GET repository (SubmissionProcessor.accept), 8. POST deposit,
 9. GET submission with includes (DepositTaskHelper.submitDeposit),
 10-12. GET, PATCH (SUBMITTED), GET deposit (DepositTask via CriticalPath),
 13. POST repositoryCopy, 14. PATCH deposit (link it),
 15-17. GET, PATCH (COMPLETE), GET repositoryCopy, 18-20. GET, PATCH (ACCEPTED), GET
    deposit (FilesystemTransport's onSuccess)
 = 6 + G + 14R: 20 for R=1, 34 for R=2. Files: each file is read twice per package
 (DefaultStreamWriterImpl: the stream, then contentLength reads it again), each read a
 GET /data/file/{id} and a GET /file/{uuid}/{name}: 2F JSON:API + 2F downloads per
 repository. Echoes: SubmissionReady costs 2 GETs; a DepositStatus 1 GET, 2 more for a
 terminal deposit, and while the submission is not final a deposit query (2 GETs), an
 unconditional PATCH of the submission and a GET (which sends another SubmissionReady):
 13-16 more for R=1, 21-24 for R=2. The submission is ACCEPTED only through that path.

Usage: ``python bench/passcore.py`` from the repository root.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deposit_services.assemblers.sources import FileSources
from deposit_services.config.repositories import parse_repositories
from deposit_services.entrypoints.worker import MessageHandler
from deposit_services.messaging.base import Broker, Delivery
from deposit_services.model.messages import parse_message
from deposit_services.service.context import ServiceContext, WorkerMemory
from deposit_services.service.targets import Targets
from deposit_services.store.passcore.client import PassCoreClient
from deposit_services.store.passcore.database import PassCoreDatabase
from deposit_services.store.sql import SqlDatabase
from tests.support.graphs import make_graph
from tests.support.passcore import PassCore, running_passcore

REPOSITORIES = [
    {"@type": "Repository", "id": f"repo-{key}", "name": key, "repositoryKey": key,
     "integrationType": "one-way"} for key in ("archive", "mirror")]
PASS_PROCESSING = {1: 20, 2: 34}
PASS_ECHOES = {1: "13-16", 2: "21-24"}


class NoBroker(Broker):
    def publish(self, queue: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        raise AssertionError("behind pass-core the worker publishes nothing")

    def receive(self, queues: Sequence[str], timeout: float) -> Delivery | None:
        return None

    def ack(self, delivery: Delivery) -> None: ...

    def nack(self, delivery: Delivery, reason: str) -> None: ...

    def dead_letter(self, delivery: Delivery, reason: str) -> None: ...


def count(passcore: PassCore) -> tuple[int, int]:
    """(JSON:API requests, file downloads) since the last clear."""
    requests = passcore.requests
    return (sum(r.path.startswith("/data") for r in requests),
            sum(r.path.startswith("/file/") for r in requests))


def run(root: Path, repositories: int) -> dict[str, Any]:
    messages: list[tuple[str, str, dict[str, str]]] = []
    with running_passcore(on_message=lambda k, b, p: messages.append((k, b, dict(p)))) as pc:
        client = PassCoreClient(pc.base_url, pc.username, pc.password)
        database = PassCoreDatabase(client, SqlDatabase(f"sqlite:///{root / 'state.db'}"))
        config = parse_repositories({r["repositoryKey"]: {
            "assembler": {"specification": "simple", "options": {"archive": "ZIP"}},
            "transport-config": {"protocol-binding": {
                "protocol": "filesystem", "baseDir": str(root / "target" / r["repositoryKey"]),
                "createIfMissing": True}}} for r in REPOSITORIES}, {})
        targets = Targets(config, "bench", sources=FileSources({client.base_url:
                                                                client.session}))
        ctx = ServiceContext(database=database, targets=targets, work_dir=root / "work",
                             owner="bench", deposit_queue=None)
        ids = pc.load_graph(make_graph("s", root / "files",
                                       repositories=REPOSITORIES[:repositories]),
                            files_dir=root / "files")
        sid = ids[("Submission", "s")]
        database.state.check()
        pc.clear_requests()
        handler = MessageHandler(ctx, NoBroker(), touch_interval=60)
        handler.dispatch(parse_message(f'{{"submission": "{sid}", "type": "SubmissionReady"}}',
                                       {}), redelivered=False)
        processing, downloads = count(pc)
        echoes = list(messages)
        messages.clear()
        pc.clear_requests()
        for kind, body, props in echoes:  # the same worker gets them
            if kind in ("submission", "deposit"):
                handler.dispatch(parse_message(body, props), redelivered=False)
        own, _ = count(pc)
        pc.clear_requests()
        other = MessageHandler(replace(ctx, owner="replica-2", memory=WorkerMemory()),
                               NoBroker(), touch_interval=60)
        for kind, body, props in echoes:  # another replica gets them
            if kind in ("submission", "deposit"):
                other.dispatch(parse_message(body, props), redelivered=False)
        replica, _ = count(pc)
        status = pc.resource("submission", sid)["attributes"]["aggregatedDepositStatus"]
        targets.close()
        database.close()
    return {"processing": processing, "downloads": downloads, "echoes": len(echoes),
            "own": own, "replica": replica, "status": status}


def main() -> None:
    print("JSON:API requests to pass-core per submission (2 files, 0 grants, filesystem "
          "targets that accept at once)")
    for r in (1, 2):
        with tempfile.TemporaryDirectory(prefix="bench-passcore-") as tmp:
            got = run(Path(tmp), r)
        print(f"R={r}: ours {got['processing']} (target {2 + 4 * r}; PASS "
              f"{PASS_PROCESSING[r]}), file downloads {got['downloads']} (PASS {4 * r} "
              f"JSON:API + {4 * r}); pass-core's {got['echoes']} echoes of our writes cost "
              f"{got['own']} on this worker, {got['replica']} on another replica (PASS "
              f"{PASS_ECHOES[r]}); submission {got['status']}")


if __name__ == "__main__":
    main()
