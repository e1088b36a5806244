"""Pass-core JSON graphs for tests: one submission with small real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def make_graph(
    submission_id: str,
    files_dir: Path,
    repositories: list[dict[str, Any]] | None = None,
    files: dict[str, bytes] | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A graph whose Submission ``submission_id`` names ``repositories`` (Repository
    entity dicts; default: one ONE_WAY repository keyed "archive") and has ``files``
    (name -> bytes, written under ``files_dir/submission_id``; default: a manuscript
    and a figure). Shared entities (user, journal, repositories) have fixed ids."""
    repositories = repositories if repositories is not None else [
        {"@type": "Repository", "id": "repo-archive", "name": "Archive",
         "repositoryKey": "archive", "integrationType": "ONE_WAY"},
    ]
    files = files if files is not None else {
        "manuscript.txt": f"manuscript of {submission_id}\n".encode() * 20,
        "figure 1.png": b"\x89PNG\r\n\x1a\n" + submission_id.encode() * 50,
    }
    folder = files_dir / submission_id
    folder.mkdir(parents=True, exist_ok=True)
    entities: list[dict[str, Any]] = [
        {"@type": "User", "id": "user-1", "firstName": "Ada", "lastName": "Lovelace",
         "email": "ada@example.org"},
        {"@type": "Journal", "id": "journal-1", "journalName": "Journal of Tests",
         "issns": ["Print:1234-5678"], "nlmta": "J Tests"},
        {"@type": "Publication", "id": f"pub-{submission_id}", "title": f"Paper {submission_id}",
         "doi": "10.1234/test." + submission_id, "journal": "journal-1"},
        *repositories,
    ]
    blob = {"title": f"Paper {submission_id}", "abstract": "An abstract.",
            "doi": "10.1234/test." + submission_id, "journal-title": "Journal of Tests",
            "authors": [{"author": "Ada Lovelace"}]}
    blob.update(metadata or {})
    entities.append({
        "@type": "Submission", "id": submission_id, "submitted": True, "source": "PASS",
        "submittedDate": "2026-11-01T10:00:00Z", "aggregatedDepositStatus": "NOT_STARTED",
        "submissionStatus": "SUBMITTED", "publication": f"pub-{submission_id}",
        "repositories": [r["id"] for r in repositories], "submitter": "user-1",
        "metadata": json.dumps(blob),
    })
    for n, (name, data) in enumerate(sorted(files.items()), start=1):
        (folder / name).write_bytes(data)
        entities.append({
            "@type": "File", "id": f"{submission_id}-file-{n}", "name": name,
            "uri": f"{submission_id}/{name}", "fileRole": "MANUSCRIPT" if n == 1 else "FIGURE",
            "mimeType": "application/octet-stream", "submission": submission_id,
        })
    return entities


def write_graph(path: Path, entities: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(entities, indent=1))
    return path
