"""check-target's probe of a dtool base URI (``dataset.probe``) with dtoolcore on real
directories: a probe dataset written and removed, a base URI that cannot be written
refused naming the fix, a base URI of another broker reported as not probed."""

from __future__ import annotations

from pathlib import Path

import dtoolcore.utils
import pytest

from deposit_services.errors import PermanentTransferError
from deposit_services.transports.dtool.dataset import probe


def test_probe_writes_a_dataset_and_removes_it(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    base = str(dtoolcore.utils.sanitise_uri(str(tmp_path)))
    made: list[str] = []
    real = dtoolcore.ProtoDataSet.put_readme

    def seen(self: dtoolcore.ProtoDataSet, content: str) -> None:
        real(self, content)
        made.append(self.uri)  # the dataset was there, admin metadata and README written

    monkeypatch.setattr(dtoolcore.ProtoDataSet, "put_readme", seen)
    answer = probe(base)
    assert "is writable" in answer and len(made) == 1
    assert list(tmp_path.iterdir()) == [], "the probe dataset is removed"


def test_probe_of_a_base_uri_that_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    base = str(dtoolcore.utils.sanitise_uri(str(blocker / "datasets")))
    with pytest.raises(PermanentTransferError, match=r"is not writable.*correct base-uri"):
        probe(base)
    assert blocker.read_text() == "not a directory"


def test_other_brokers_are_not_probed() -> None:
    assert "not probed" in probe("s3://bucket/datasets")
