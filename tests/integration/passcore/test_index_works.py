"""``deposit-services index-works`` on a pass-core deployment: deposits made before the
index of works sent (their rows missing) are indexed from pass-core's records, so the
duplicate check finds them again; a second run adds nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from deposit_services.cli import main
from deposit_services.model.builder import build_deposit_submission
from deposit_services.model.entities import Deposit
from deposit_services.model.graph import Graph
from deposit_services.service.duplicates import Kind, find_resubmission, fingerprint
from deposit_services.service.submissions import SubmissionProcessor
from deposit_services.store import schema
from deposit_services.store.engine import make_engine
from deposit_services.store.uow import UnitOfWork, run_unit
from tests.integration.passcore.conftest import FS_REPO, FS_REPO_2, World, related


def _rows(state: Path) -> int:
    engine = make_engine(f"sqlite:///{state}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.sent_works)
                                    ).scalar_one())
    finally:
        engine.dispose()


def test_index_works_restores_the_rows_of_earlier_deposits(
        make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    world = make_world()
    sid = world.seed("s1", [FS_REPO, FS_REPO_2])
    SubmissionProcessor(world.ctx).process(sid, redelivered=False)
    state = world.root / "state.db"
    assert _rows(state) == 2  # written with each deposit's intent
    engine = make_engine(f"sqlite:///{state}")
    with engine.begin() as conn:  # as a release before the index left them
        conn.execute(delete(schema.sent_works))
    engine.dispose()

    for name, value in {"PASS_CORE_URL": world.passcore.base_url,
                        "PASS_CORE_USER": world.passcore.username,
                        "PASS_CORE_PASSWORD": world.passcore.password,
                        "DEPOSIT_STORE_URL": f"sqlite:///{state}",
                        "DEPOSIT_DATA_DIR": str(world.root / "data")}.items():
        monkeypatch.setenv(name, value)
    assert main(["index-works", "--repository", "nowhere"]) == 2
    assert "no repository has the key nowhere" in capsys.readouterr().err
    assert main(["index-works", "--repository", "archive"]) == 0
    assert "indexed 1 earlier deposit(s)" in capsys.readouterr().out
    assert _rows(state) == 1
    assert main(["index-works"]) == 0  # every repository: the mirror's row too
    assert "indexed 1 earlier deposit(s)" in capsys.readouterr().out
    assert main(["index-works"]) == 0
    assert "indexed 0 earlier deposit(s)" in capsys.readouterr().out

    # the backfilled row has no fingerprint: the earlier submission's is computed
    (archived,) = [d for d in world.passcore.find("deposit", submission=sid)
                   if related(world, "deposit", d["id"], "repository")
                   == related(world, "submission", sid, "repositories")[0]]
    repository = related(world, "deposit", archived["id"], "repository")

    def check(uow: UnitOfWork) -> tuple[Kind | None, str | None]:
        graph = Graph(tuple(uow.records.submission_graph(sid)))
        content = build_deposit_submission(graph.submission, graph)
        again = Deposit(id="another", submission="another-submission", repository=repository)
        found = find_resubmission(uow, again, content, fingerprint(content), False)
        return (found.kind, found.earlier.id) if found else (None, None)

    assert run_unit(world.database, check, read_only=True) == (Kind.DUPLICATE,
                                                                archived["id"])
