"""The status refs of NIHMS deposits and the package id they are matched by.

A drop deposit with NIHMS's mails as status source is SUBMITTED with
``nihms-package:<package id>``; NIHMS's mail names the package by that id (the package
file's name without its archive extension: ``nihms-native-2022-05_<date>_<time>_<id>``,
as PASS names it too) and, once NIHMS took it, the manuscript id it gave
(``nihms-id:<manuscript id>``).
"""

from __future__ import annotations

PACKAGE_REF_PREFIX = "nihms-package:"
MANUSCRIPT_REF_PREFIX = "nihms-id:"
STATUS_SOURCE = "nihms-email"
"""The ``status-source`` value of a drop binding whose deposits NIHMS's mails follow."""

ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".tar", ".zip", ".gz",
                    ".bz2")


def package_id(file_name: str) -> str:
    """The package id NIHMS reports for the package file ``file_name``."""
    lowered = file_name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lowered.endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return file_name


def package_ref(package: str) -> str:
    return PACKAGE_REF_PREFIX + package


def manuscript_ref(manuscript: str) -> str:
    return MANUSCRIPT_REF_PREFIX + manuscript


def manuscript_id(status_ref: str | None) -> str | None:
    """The NIHMS manuscript id of a ``nihms-id:`` status ref, else None."""
    if status_ref and status_ref.startswith(MANUSCRIPT_REF_PREFIX):
        return status_ref[len(MANUSCRIPT_REF_PREFIX):] or None
    return None


def submission_of(package: str) -> str | None:
    """The submission id in a package id (what follows the third ``_``: the name is
    ``<format>_<yyyy-MM-dd>_<HH-mm-ss>_<submission id>``), None if it has no such part."""
    parts = package.split("_", 3)
    return parts[3] if len(parts) == 4 and parts[3] else None
