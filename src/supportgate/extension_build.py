"""Build the browser extension: one loadable folder and one zip per browser, from one source tree.

The source is ``extension/src`` plus ``extension/manifest.<browser>.json``; the output for each
browser is ``<out>/<browser>/`` (load it unpacked) and ``<out>/supportgate-<browser>-<version>.zip``
(upload it to a store). A test build for the browser suite can be added with ``test_hosts``: it
is one browser's build with those host permissions asked for up front (granted at install by
Chromium, and by Firefox for a temporary add-on), because automation cannot click a permission
prompt. It is never zipped and never shipped.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supportgate.errors import SupportgateError

__all__ = ["BROWSERS", "BuiltExtension", "build", "build_test_variant"]

BROWSERS = ("chromium", "firefox")
"""The browsers a manifest exists for, in build order."""

# A fixed timestamp makes two builds of the same source byte-identical zips.
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)
_SKIPPED = {".DS_Store", "Thumbs.db"}


@dataclass(frozen=True)
class BuiltExtension:
    """One browser's build."""

    browser: str
    """``chromium`` or ``firefox``."""
    version: str
    """The manifest's version."""
    directory: Path
    """The folder to load unpacked."""
    archive: Path | None
    """The zip to upload, or None for a test build."""


def build(source: Path, out: Path) -> list[BuiltExtension]:
    """Build every browser's folder and zip from ``source`` (the ``extension/`` folder) into ``out``."""
    return [_build_one(source, out, browser) for browser in BROWSERS]


def build_test_variant(source: Path, out: Path, hosts: list[str], browser: str = "chromium") -> BuiltExtension:
    """Build ``<out>/<browser>-test/``: that browser's build with ``hosts`` granted at install, for automation."""
    if browser not in BROWSERS:
        raise SupportgateError(f"no manifest for {browser!r}: the browsers are {', '.join(BROWSERS)}")
    manifest = _manifest(source, browser)
    manifest["name"] = "supportgate (test build)"
    manifest["host_permissions"] = sorted(hosts)
    directory = out / f"{browser}-test"
    _write_tree(source, directory, manifest)
    return BuiltExtension(browser, str(manifest["version"]), directory, None)


def _build_one(source: Path, out: Path, browser: str) -> BuiltExtension:
    manifest = _manifest(source, browser)
    version = str(manifest["version"])
    directory = out / browser
    _write_tree(source, directory, manifest)
    archive = out / f"supportgate-{browser}-{version}.zip"
    _zip(directory, archive)
    return BuiltExtension(browser, version, directory, archive)


def _manifest(source: Path, browser: str) -> dict[str, Any]:
    path = source / f"manifest.{browser}.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SupportgateError(f"no {path.name} in {source}: is this the extension/ folder?") from None
    except json.JSONDecodeError as exc:
        raise SupportgateError(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != 3 or "version" not in manifest:
        raise SupportgateError(f"{path.name} is not a Manifest V3 manifest with a version")
    return manifest


def _write_tree(source: Path, directory: Path, manifest: dict[str, Any]) -> None:
    tree = source / "src"
    if not tree.is_dir():
        raise SupportgateError(f"no src/ folder in {source}")
    if directory.exists():
        shutil.rmtree(directory)
    shutil.copytree(tree, directory, ignore=shutil.ignore_patterns(*_SKIPPED))
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _zip(directory: Path, archive: Path) -> None:
    archive.unlink(missing_ok=True)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, path.read_bytes())
