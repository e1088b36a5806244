"""Adapters registered by name ("module:Class") and imported only when first used.

Each port keeps its own registry dict; this is the one lookup they share, so that a
missing optional dependency fails only the adapter that needs it, with a clear message.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from deposit_services.errors import DepositServicesError


def load_adapter(
    registry: Mapping[str, str],
    name: str,
    base: type,
    what: str,
    error: type[DepositServicesError],
) -> type[Any]:
    """The class registered under ``name`` (already normalised by the caller).

    ``what`` names the kind of adapter in messages ("assembler specification"); an
    unknown name or an import failure raises ``error``.
    """
    target = registry.get(name)
    if target is None:
        raise error(f"unknown {what} {name!r} (known: {', '.join(sorted(registry))})")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(f"{what} {name!r} cannot be loaded: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise error(f"{what} {name!r}: {target} is not a {base.__name__}")
    return cls
