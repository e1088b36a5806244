"""A virtualenv of its own for a test peer whose pins cannot share the project's venv
(dservercore's Flask 2, dspace-rest-client's older requests). ``scripts/test.sh`` makes
each one; the fixtures make it too when it is missing or its pins changed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path, pins: Sequence[str]) -> Path:
    """The python of ``venv``, created with ``pins`` unless it already has exactly them."""
    python = venv_python(venv)
    marker = venv / "pins.txt"
    wanted = "\n".join(pins)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *pins], check=True)
    marker.write_text(wanted)
    (venv / ".gitignore").write_text("*\n")  # not the project's to commit
    return python
