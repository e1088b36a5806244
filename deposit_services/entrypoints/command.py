"""What every command shares: its exit codes and how it bootstraps.

Exit codes: EXIT_OK (0) success; EXIT_FAILURE (1) the command ran but something it did
failed; EXIT_CONFIG (2) bad usage, settings or repositories.json; EXIT_ABORTED (3)
``listen`` stopped by a second SIGTERM/SIGINT while transfers were in flight (they are
resumed, reconciled, on the next start).
"""

from __future__ import annotations

from deposit_services import bootstrap as _bootstrap
from deposit_services.bootstrap import App
from deposit_services.observability.logs import protect, secret_values
from deposit_services.settings import Settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_ABORTED = 3


def bootstrap(settings: Settings, with_broker: bool = True,
              with_repositories: bool | None = None) -> App:
    """``bootstrap.bootstrap`` for a command: one without a broker is read-only and
    reads no repositories.json (``status``), unless told otherwise."""
    app = _bootstrap.bootstrap(settings, with_broker=with_broker,
                               with_repositories=(with_broker if with_repositories is None
                                                  else with_repositories))
    protect(secret_values(settings, app.repositories))  # masked in every log line
    return app
