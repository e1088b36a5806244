"""deposit-services: a deposit worker for PASS-style submission systems."""

from __future__ import annotations

__version__ = "0.1.0"
