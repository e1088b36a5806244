"""The works index's content fingerprint: what counts as the same content, and the same
digest as the form it was first written in (``dataclasses.asdict``), so rows indexed
before stay comparable."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

from deposit_services.model.entities import FileRole
from deposit_services.model.submission import (
    ArticleMetadata,
    DepositFile,
    DepositSubmission,
    GrantInfo,
    Issn,
    IssnPubType,
    JournalMetadata,
    Person,
    PersonType,
)
from deposit_services.model.works import doi_key
from deposit_services.service.duplicates import fingerprint


def _content(**changes: Any) -> DepositSubmission:
    pi = Person(PersonType.PI, first_name="Ada", last_name="Lovelace", affiliation=("X", "Y"))
    content = DepositSubmission(
        id="s1",
        submitted_date=datetime(2024, 5, 1, tzinfo=UTC),
        article=ArticleMetadata(title="T", doi="https://doi.org/10.1/ABC",
                                embargo_end_date=date(2025, 1, 2)),
        journal=JournalMetadata(title="J", issns=(Issn("1234-5678", IssnPubType.PRINT),)),
        persons=(pi, Person(PersonType.AUTHOR, full_name="B. Author")),
        grants=(GrantInfo("A1", "NIH", "nih", pi),),
        files=(DepositFile("f2", "b.pdf", "file:///b", FileRole.FIGURE, "Fig", "image/png"),
               DepositFile("f1", "a.pdf", "file:///a", FileRole.MANUSCRIPT, None,
                           "application/pdf")),
        agreements={"repo": "I agree"},
        collection_tags=("c",),
        metadata={"deep": {"list": [1, {"x": None}]}, "title": "T"},
    )
    return dataclasses.replace(content, **changes)


def _as_first_written(content: DepositSubmission,
                      contents: list[tuple[str, int, str]]) -> str:
    data = dataclasses.asdict(content)
    for key in ("id", "submitted_date", "metadata", "agreements"):
        data.pop(key)
    data["article"]["doi"] = doi_key(content.article.doi)
    written = {id: [size, digest] for id, size, digest in contents}
    data["files"] = sorted(
        [f["name"], str(f["role"]), f["label"], f["mime_type"], *written.get(f["id"], [])]
        for f in data["files"])
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def test_the_digest_is_the_one_first_written() -> None:
    contents = [("f1", 10, "d1"), ("f2", 20, "d2")]
    for given in ([], contents):
        assert fingerprint(_content(), given) == _as_first_written(_content(), given)


def test_ids_dates_metadata_and_agreements_are_not_content() -> None:
    same = _content(id="s2", submitted_date=None, metadata={}, agreements={})
    assert fingerprint(same) == fingerprint(_content())


def test_a_changed_file_label_or_digest_is_other_content() -> None:
    files = _content().files
    relabelled = _content(files=(dataclasses.replace(files[0], label="Figure 1"), files[1]))
    assert fingerprint(relabelled) != fingerprint(_content())
    assert fingerprint(_content(), [("f1", 10, "d1")]) != fingerprint(_content(),
                                                                        [("f1", 10, "d9")])
