"""Installs the loopback guard (`tests/loopback/sitecustomize.py`) in the test process and
hands it to every Python process the tests start, through PYTHONPATH."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

DIRECTORY = Path(__file__).parent / "loopback"

if str(DIRECTORY) not in sys.path:
    sys.path.insert(0, str(DIRECTORY))
import sitecustomize as guard  # noqa: E402

if not os.environ.get(guard.LOG_ENV):
    handle, path = tempfile.mkstemp(prefix="outpaint-loopback-", suffix=".log")
    os.close(handle)
    os.environ[guard.LOG_ENV] = path
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(DIRECTORY), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
)
guard.install()

LOG = Path(os.environ[guard.LOG_ENV])


def refusals() -> list[str]:
    """Every refusal recorded so far, by this process and every one the tests started."""
    return LOG.read_text(encoding="utf-8").splitlines() if LOG.exists() else []


def forget_last() -> None:
    """For the guard's own test: drop the refusal it provoked on purpose."""
    lines = refusals()
    LOG.write_text("".join(line + "\n" for line in lines[:-1]), encoding="utf-8")
