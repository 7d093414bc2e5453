"""The JavaScript dev dependencies the suite needs, installed once per session with `npm ci`.

On a fresh clone ``node_modules`` is absent; the suite installs it itself rather than skip the
tests that need it (web-ext, axe-core, puppeteer-core, jose for verify-js). It runs ``npm ci`` only
when ``node_modules`` is missing or older than ``package-lock.json``.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "package-lock.json"
INSTALLED = ROOT / "node_modules" / ".package-lock.json"


def up_to_date() -> bool:
    """Whether ``node_modules`` holds what ``package-lock.json`` names (npm writes its own copy last)."""
    return INSTALLED.is_file() and INSTALLED.stat().st_mtime >= LOCK.stat().st_mtime


@functools.cache
def ensure_node_modules() -> str | None:
    """Run ``npm ci`` if needed; the reason it could not, or None when ``node_modules`` is ready."""
    if up_to_date():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed (`apt-get install npm`; .ci/run installs it), so `npm ci` cannot run"
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"`npm ci` failed:\n{result.stderr[-4000:]}")
    return None
