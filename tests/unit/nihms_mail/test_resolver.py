"""The refresh job on a NIHMS drop deposit: nothing to fetch, the deposit stays SUBMITTED
and says what it waits for."""

from __future__ import annotations

import pytest

from deposit_services.config.repositories import parse_repositories
from deposit_services.model.entities import DepositStatus, Repository
from deposit_services.nihms_mail.resolver import NihmsRefResolver
from deposit_services.service.targets import Targets
from deposit_services.status.base import StatusDocumentError


def test_sftp_and_ftp_repositories_resolve_nihms_refs() -> None:
    binding = {"server-fqdn": "h", "username": "u", "password": "p",
               "status-source": "nihms-email"}
    config = parse_repositories({
        key: {"assembler": {"specification": "nihms-native-2022-05"},
              "transport-config": {"protocol-binding": {"protocol": key, **binding}}}
        for key in ("sftp", "ftp")}, {})
    targets = Targets(config, "test")
    for key in ("sftp", "ftp"):
        resolver = targets.resolver_for(Repository(id=key, repository_key=key))
        assert isinstance(resolver, NihmsRefResolver)


def test_what_a_nihms_deposit_waits_for() -> None:
    resolver = NihmsRefResolver()
    waiting = resolver.resolve("nihms-package:nihms-native-2022-05_a_b_1")
    assert waiting.deposit_status is DepositStatus.SUBMITTED and not waiting.is_terminal
    assert "Bulk submission email about package nihms-native-2022-05_a_b_1" in (
        waiting.description or "")
    taken = resolver.resolve("nihms-id:1502302")
    assert taken.deposit_status is DepositStatus.SUBMITTED
    assert "NIHMS manuscript 1502302" in (taken.description or "")
    with pytest.raises(StatusDocumentError, match="not a NIHMS status ref"):
        resolver.resolve("https://example.org/statement")
