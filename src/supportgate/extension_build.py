"""Build the browser extension: one loadable folder and one zip per browser, from one source tree.

The source is ``extension/src`` plus ``extension/manifest.<browser>.json``; the output for each
browser is ``<out>/<browser>/`` (load it unpacked) and ``<out>/supportgate-<browser>-<version>.zip``
(upload it to a store). A :class:`Preset` makes a build for one gate: each folder gets a
``preset.json`` naming the gate (and, in a branded build, the name the extension shows, which
also becomes the manifest's name and gives the Firefox build a gecko id of its own). A test build
for the browser suite can be added with ``test_hosts``: it is one browser's build with those host
permissions asked for up front (granted at install by Chromium, and by Firefox for a temporary
add-on), because automation cannot click a permission prompt. It is never zipped and never shipped.

The service builds the packages for its own public URL at start with :func:`gate_packages`, once
per extension source, gate and name: the build is kept in the data dir under a hash of the three.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from supportgate.errors import SupportgateError

__all__ = [
    "BROWSERS",
    "PRESET_FILE",
    "SOURCE_ENV",
    "BuiltExtension",
    "GatePackages",
    "Preset",
    "build",
    "build_test_variant",
    "default_source",
    "extension_name",
    "find_gate_packages",
    "gate_base_url",
    "gate_packages",
]

BROWSERS = ("chromium", "firefox")
"""The browsers a manifest exists for, in build order."""
PRESET_FILE: Final = "preset.json"
"""The file at the root of a build for one gate: ``{"gate": <base URL>, "name": <name> | null}``."""
SOURCE_ENV: Final = "SUPPORTGATE_EXTENSION_SOURCE"
"""The environment variable naming the extension folder the service builds its packages from."""

# A fixed timestamp makes two builds of the same source byte-identical zips.
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)
_SKIPPED = {".DS_Store", "Thumbs.db"}
_MAX_NAME = 45
"""Chrome cuts longer names in its menus; the store allows 75."""
_PACKAGES_DIR: Final = "extension"
"""The data dir's folder for the service's own builds."""


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


@dataclass(frozen=True)
class Preset:
    """What a build for one gate has built in: the gate, and for a branded build the name it shows."""

    gate: str
    """The gate's base URL, without a trailing slash."""
    name: str | None = None
    """The extension's name in a branded build; None keeps "supportgate"."""

    @classmethod
    def checked(cls, gate: str, name: str | None = None) -> Preset:
        """The preset for ``gate`` and ``name``, or :class:`SupportgateError` saying what is wrong with them."""
        return cls(gate_base_url(gate), None if name is None else extension_name(name))

    def as_json(self) -> str:
        """The ``preset.json`` the extension reads."""
        return json.dumps({"gate": self.gate, "name": self.name}, ensure_ascii=False, indent=2) + "\n"

    @property
    def gecko_id(self) -> str:
        """A branded Firefox build's own id, from its gate: two branded builds can be installed side by side."""
        return f"supportgate-{hashlib.sha256(self.gate.encode()).hexdigest()[:16]}@supportgate.invalid"


def gate_base_url(gate: str) -> str:
    """``gate`` as a base URL without a trailing slash, or :class:`SupportgateError` if it is not an http(s) URL."""
    gate = gate.strip()
    parts = urlsplit(gate)
    try:
        _ = parts.port
    except ValueError:
        raise SupportgateError(f"{gate!r} has an invalid port") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SupportgateError(f"{gate!r} is not an http(s) URL such as https://gate.example.com")
    if "?" in gate or "#" in gate:
        raise SupportgateError(f"{gate!r} has a query or a fragment: give the gate's base URL only")
    if parts.username or parts.password:
        raise SupportgateError(f"{gate!r} carries a user name or password: give the gate's base URL only")
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path}".rstrip("/")


def extension_name(name: str) -> str:
    """``name`` as a branded build's name, or :class:`SupportgateError` if a browser would not show it whole."""
    name = name.strip()
    if not name or len(name) > _MAX_NAME or re.search(r"[\x00-\x1f\x7f]", name):
        raise SupportgateError(f"{name!r} is not a name of 1 to {_MAX_NAME} printable characters")
    return name


def build(source: Path, out: Path, preset: Preset | None = None) -> list[BuiltExtension]:
    """Build every browser's folder and zip from ``source`` (the ``extension/`` folder) into ``out``."""
    return [_build_one(source, out, browser, preset) for browser in BROWSERS]


def build_test_variant(
    source: Path, out: Path, hosts: list[str], preset: Preset | None = None, browser: str = "chromium"
) -> BuiltExtension:
    """Build ``<out>/<browser>-test/``: that browser's build with ``hosts`` granted at install, for automation."""
    if browser not in BROWSERS:
        raise SupportgateError(f"no manifest for {browser!r}: the browsers are {', '.join(BROWSERS)}")
    manifest = _manifest(source, browser)
    manifest["name"] = f"{preset.name} (test build)" if preset and preset.name else "supportgate (test build)"
    manifest["host_permissions"] = sorted(hosts)
    directory = out / f"{browser}-test"
    _write_tree(source, directory, manifest, preset)
    return BuiltExtension(browser, str(manifest["version"]), directory, None)


@dataclass(frozen=True)
class GatePackages:
    """The zips the service offers for download, built for its own public URL."""

    preset: Preset
    """The gate (and name) they are built for."""
    archives: dict[str, Path]
    """Each browser's zip, by browser."""
    version: str
    """The extension's version."""


def default_source() -> Path:
    """The extension folder the service builds from: ``SUPPORTGATE_EXTENSION_SOURCE``, else the repository's."""
    configured = os.environ.get(SOURCE_ENV, "").strip()
    if configured:
        return Path(configured)
    # src/supportgate/extension_build.py → the repository root; an installed wheel has no such folder.
    return Path(__file__).resolve().parents[2] / "extension"


def gate_packages(source: Path, data_dir: Path, preset: Preset) -> tuple[GatePackages, bool]:
    """The packages for ``preset`` from ``source``, built into ``data_dir`` unless an identical build is there.

    Returns the packages and whether they were built now (False: found from an earlier start).
    Raises :class:`SupportgateError` when ``source`` is not an extension folder.
    """
    found = find_gate_packages(source, data_dir, preset)
    if found is not None:
        return found, False
    target = _packages_dir(source, data_dir, preset)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        build(source, staging, preset)
        _close_to_others(staging)
        # Another process may have finished the same build meanwhile: theirs is as good as ours.
        if not target.exists():
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    built = find_gate_packages(source, data_dir, preset)
    if built is None:
        raise SupportgateError(f"the extension build in {target} is incomplete")
    return built, True


def _close_to_others(directory: Path) -> None:
    """Like the rest of the data dir: folders ``0700``, files ``0600``."""
    for path in directory.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)


def find_gate_packages(source: Path, data_dir: Path, preset: Preset) -> GatePackages | None:
    """The packages an earlier :func:`gate_packages` built for this source and preset; None if there are none.

    Raises :class:`SupportgateError` when ``source`` is not an extension folder.
    """
    directory = _packages_dir(source, data_dir, preset)
    version = str(_manifest(source, BROWSERS[0])["version"])
    archives = {browser: directory / f"supportgate-{browser}-{version}.zip" for browser in BROWSERS}
    if not all(archive.is_file() for archive in archives.values()):
        return None
    return GatePackages(preset, archives, version)


def _packages_dir(source: Path, data_dir: Path, preset: Preset) -> Path:
    return data_dir / _PACKAGES_DIR / _build_key(source, preset)


def _build_key(source: Path, preset: Preset) -> str:
    """A hash of everything a build is made of: the manifests, every source file, the preset."""
    digest = hashlib.sha256(preset.as_json().encode())
    tree = source / "src"
    if not tree.is_dir():
        raise SupportgateError(f"no src/ folder in {source}")
    files = [source / f"manifest.{browser}.json" for browser in BROWSERS]
    files += sorted(p for p in tree.rglob("*") if p.is_file() and p.name not in _SKIPPED)
    for path in files:
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise SupportgateError(f"no {path.name} in {source}: is this the extension/ folder?") from None
        name = path.relative_to(source).as_posix().encode()
        digest.update(len(name).to_bytes(4, "big") + name + len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()[:24]


def _build_one(source: Path, out: Path, browser: str, preset: Preset | None) -> BuiltExtension:
    manifest = _manifest(source, browser)
    if preset is not None and preset.name is not None:
        manifest["name"] = preset.name
        if browser == "firefox":
            manifest["browser_specific_settings"]["gecko"]["id"] = preset.gecko_id
    version = str(manifest["version"])
    directory = out / browser
    _write_tree(source, directory, manifest, preset)
    archive = out / f"supportgate-{browser}-{version}.zip"
    _zip(directory, archive)
    return BuiltExtension(browser, version, directory, archive)


def _manifest(source: Path, browser: str) -> dict[str, Any]:
    path = source / f"manifest.{browser}.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        raise SupportgateError(f"no {path.name} in {source}: is this the extension/ folder?") from None
    except json.JSONDecodeError as exc:
        raise SupportgateError(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != 3 or "version" not in manifest:
        raise SupportgateError(f"{path.name} is not a Manifest V3 manifest with a version")
    return manifest


def _write_tree(source: Path, directory: Path, manifest: dict[str, Any], preset: Preset | None) -> None:
    tree = source / "src"
    if not tree.is_dir():
        raise SupportgateError(f"no src/ folder in {source}")
    if directory.exists():
        shutil.rmtree(directory)
    shutil.copytree(tree, directory, ignore=shutil.ignore_patterns(*_SKIPPED))
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    preset_file = directory / PRESET_FILE
    preset_file.unlink(missing_ok=True)
    if preset is not None:
        preset_file.write_text(preset.as_json(), encoding="utf-8")


def _zip(directory: Path, archive: Path) -> None:
    archive.unlink(missing_ok=True)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, path.read_bytes())
