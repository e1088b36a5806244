"""The status resolver of NIHMS drop deposits: their refs are answered by mail, not fetched.

The refresh job resolves every SUBMITTED deposit; for a ``nihms-package:`` or
``nihms-id:`` ref there is nothing to fetch (NIHMS reports only by its mails, which the
nihms-mail job reads), so it says "still submitted" with what the deposit waits for,
and the deposit is left as it is.
"""

from __future__ import annotations

from deposit_services.config.repositories import RepositoryConfig
from deposit_services.model.entities import DepositStatus
from deposit_services.nihms_mail.refs import MANUSCRIPT_REF_PREFIX, PACKAGE_REF_PREFIX
from deposit_services.status.base import ResolvedStatus, StatusDocumentError, StatusResolver


class NihmsRefResolver(StatusResolver):
    def resolve(self, status_ref: str) -> ResolvedStatus:
        if status_ref.startswith(PACKAGE_REF_PREFIX):
            package = status_ref[len(PACKAGE_REF_PREFIX):]
            words = (f"waiting for NIHMS's Bulk submission email about package {package}, "
                     "read by the nihms-mail job (PASS_DEPOSIT_NIHMS_EMAIL_*)")
        elif status_ref.startswith(MANUSCRIPT_REF_PREFIX):
            words = (f"NIHMS manuscript {status_ref[len(MANUSCRIPT_REF_PREFIX):]}; NIHMS "
                     "reports its progress by email only")
        else:
            raise StatusDocumentError(f"{status_ref!r} is not a NIHMS status ref; a file drop "
                                      "has no other status to follow")
        return ResolvedStatus(status_ref=status_ref, state=status_ref.partition(":")[0],
                              mapped_term="submitted", deposit_status=DepositStatus.SUBMITTED,
                              description=words)


def drop_resolver(config: RepositoryConfig, user_agent: str) -> StatusResolver:
    """``targets.RESOLVERS`` builder for the file drops (SFTP, FTP)."""
    return NihmsRefResolver()
