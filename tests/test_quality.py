"""Lint, format and types are part of the test suite, so CI fails on them like on a test."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON_TREES = ["src", "packages/supportgate-verify", "tests", "bench"]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed in the project environment: run `uv sync`")
    return found


def test_ruff_check() -> None:
    """`ruff check` finds nothing in the Python trees."""
    result = run(tool("ruff"), "check", *PYTHON_TREES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    """The Python trees are formatted as `ruff format` would."""
    result = run(tool("ruff"), "format", "--check", *PYTHON_TREES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    """`mypy --strict` passes on src/ and on the supportgate-verify package's source."""
    result = run(tool("mypy"), "--strict", "src/", "packages/supportgate-verify/src/")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts() -> None:
    """The import-linter contracts in pyproject.toml hold: dependencies point one way, Litestar stays at the edge."""
    result = run(tool("lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
