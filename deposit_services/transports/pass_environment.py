"""Binding keys PASS reads from its environment.

PASS's DSpace and InvenioRDM transports read their settings from the environment
(Spring properties), and PASS's repositories.json names only the protocol: a key the
binding leaves out is taken from the environment variable of PASS's name, as PASS does.
A binding model lists those names in ``pass_environment``; the rule lives here once.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import model_validator

from deposit_services.transports.base import Binding


class PassEnvironmentBinding(Binding):
    """A binding whose keys named in ``pass_environment`` default to the environment."""

    pass_environment: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        filled = dict(data)
        for name in cls.pass_environment:
            if name not in filled and os.environ.get(name):
                filled[name] = os.environ[name]
        return filled
