"""The configuration: where repositories.json is found when not named (every command),
and the ``config check`` and ``config show`` commands."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

import deposit_services
from deposit_services.bootstrap import load_repositories_config
from deposit_services.entrypoints.command import EXIT_OK
from deposit_services.errors import ConfigurationError
from deposit_services.safetext import safe
from deposit_services.settings import DEFAULT_REPOSITORY_CONFIGURATION, Settings

REPOSITORY_CONFIGURATION_VAR = "PASS_DEPOSIT_REPOSITORY_CONFIGURATION"
# The installed package's repository root (a checkout, or an editable install)
PACKAGE_ROOT = Path(deposit_services.__file__).resolve().parent.parent


def repository_configuration_candidates(settings: Settings) -> list[Path]:
    """Where repositories.json is looked for when PASS_DEPOSIT_REPOSITORY_CONFIGURATION
    is not set: ``config/repositories.json`` in the current directory, then
    ``repositories.json`` in the data directory, then ``config/repositories.json`` in
    the installed package's repository root."""
    return [Path.cwd() / DEFAULT_REPOSITORY_CONFIGURATION,
            settings.data_dir / "repositories.json",
            PACKAGE_ROOT / DEFAULT_REPOSITORY_CONFIGURATION]


def locate_repositories(settings: Settings, required: bool) -> Settings:
    """Settings whose repositories.json default (a relative path) is resolved to the
    first candidate that exists, so that commands work from any directory. Not found
    and ``required``: a ConfigurationError naming every place looked at."""
    if (os.environ.get(REPOSITORY_CONFIGURATION_VAR)
            or settings.repository_configuration != DEFAULT_REPOSITORY_CONFIGURATION):
        return settings
    candidates = repository_configuration_candidates(settings)
    for candidate in candidates:
        if candidate.is_file():
            return replace(settings, repository_configuration=str(candidate))
    if required:
        raise ConfigurationError(
            f"no repositories.json found; looked at {', '.join(map(str, candidates))}: set "
            f"{REPOSITORY_CONFIGURATION_VAR} to its path or URL")
    return settings


def cmd_config_check(settings: Settings, args: argparse.Namespace) -> int:
    """Load repositories.json (every problem listed at once) and say, per repository,
    which package format it gets and why (PASS's beanName or the specification)."""
    config = load_repositories_config(settings)  # raises ConfigurationError listing problems
    print(f"{safe(settings.repository_configuration)}: {len(config.entries)} repositories, OK")
    for key, entry in config.entries.items():
        protocol = entry.protocol_binding.get("protocol", "")
        print(f"  {safe(key)}: {safe(entry.assembler.choice.describe())} over {safe(protocol)}")
    if settings.pass_core_url:
        from deposit_services.store.passcore.client import PassCoreClient

        client = PassCoreClient(settings.pass_core_url, settings.pass_core_user,
                                settings.pass_core_password, user_agent=settings.http_agent)
        try:
            client.check()  # refused credentials: ConfigurationError (exit 2)
        finally:
            client.close()
        print(f"pass-core {safe(settings.pass_core_url)}: credentials accepted")
    return EXIT_OK


def cmd_config_show(settings: Settings, args: argparse.Namespace) -> int:
    """The effective settings, secrets masked (reads neither repositories.json nor the
    store)."""
    from deposit_services.entrypoints.reports import Column, print_json, render_table

    shown = settings.masked()
    if getattr(args, "json", False):
        print_json(shown)
    else:
        print(render_table([Column("SETTING"), Column("VALUE", cut=True)],
                           list(shown.items())))
    return EXIT_OK
