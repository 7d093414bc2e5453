"""The browser extension without a browser: node unit tests, manifests, source rules, the build and the lint."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from supportgate.cli import cli
from supportgate.errors import SupportgateError
from supportgate.extension_build import BROWSERS, build, build_test_variant

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "extension"
SOURCE = EXTENSION / "src"
WEB_EXT = ROOT / "node_modules" / ".bin" / "web-ext"
PERMISSIONS = {"storage", "alarms", "declarativeNetRequest", "activeTab", "scripting"}
# The only files that may name the browser's extension namespaces (see lib/api.js).
NAMESPACE_FILES = {"lib/api.js", "content/handshake.js"}
FIREFOX_POLICY = "script-src 'self'; object-src 'self'"
"""The Firefox build's extension-page policy: no remote code, no eval, and no upgrade of http:// requests."""


def manifest(browser: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXTENSION / f"manifest.{browser}.json").read_text())
    return loaded


def sources(*suffixes: str) -> list[Path]:
    return sorted(p for p in SOURCE.rglob("*") if p.suffix in suffixes)


def test_node_unit_tests() -> None:
    """The pure modules' tests pass under `node --test`: token store, pass cache, rules, schemas, ledger, dispatch."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the extension's unit tests need Node.js 20+")
    result = subprocess.run(
        [node, "--test", "extension/test"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert re.search(r"^# fail 0$", result.stdout, re.MULTILINE), result.stdout[-2000:]


@pytest.mark.parametrize("browser", BROWSERS)
def test_manifest_is_minimal_manifest_v3(browser: str) -> None:
    """Each manifest is MV3 and asks for exactly the five permissions, host access only as optional per-site grants."""
    found = manifest(browser)
    assert found["manifest_version"] == 3
    assert set(found["permissions"]) == PERMISSIONS
    assert len(found["permissions"]) == len(PERMISSIONS)
    assert found["optional_host_permissions"] == ["*://*/*"]
    for absent in ("host_permissions", "content_scripts", "web_accessible_resources", "externally_connectable"):
        assert absent not in found, f"{absent} in manifest.{browser}.json"
    if browser == "firefox":
        # Chromium's default MV3 policy, said out loud: Firefox's default adds upgrade-insecure-requests,
        # which turns every call to an http:// gate (the demo, a gate on a LAN) into a failing https:// one.
        assert found["content_security_policy"] == {"extension_pages": FIREFOX_POLICY}
    else:
        assert "content_security_policy" not in found, "the default MV3 policy (no remote code, no eval) applies"


def test_manifests_differ_only_where_the_browsers_do() -> None:
    """The manifests share every key but the background, Firefox's settings and policy, Chromium's minimum version."""
    chromium, firefox = manifest("chromium"), manifest("firefox")
    assert chromium["background"] == {"service_worker": "background/main.js", "type": "module"}
    assert firefox["background"] == {"scripts": ["background/main.js"], "type": "module"}
    assert firefox["browser_specific_settings"]["gecko"]["id"]
    own = {"background", "browser_specific_settings", "minimum_chrome_version", "content_security_policy"}
    assert {k: v for k, v in chromium.items() if k not in own} == {k: v for k, v in firefox.items() if k not in own}


@pytest.mark.parametrize("browser", BROWSERS)
def test_manifest_files_and_messages_exist(browser: str) -> None:
    """Every file a manifest names is in the source tree, and every __MSG_ key is in the English messages."""
    found = manifest(browser)
    text = json.dumps(found)
    paths = set(re.findall(r'"((?:icons|popup|options|background)/[^"]+)"', text))
    assert paths, "the manifest names no files"
    for path in paths:
        assert (SOURCE / path).is_file(), path
    messages = json.loads((SOURCE / "_locales" / found["default_locale"] / "messages.json").read_text())
    for key in re.findall(r"__MSG_(\w+)__", text):
        assert key in messages, key


def test_every_message_key_used_is_defined() -> None:
    """Each string the popup looks up is in _locales/en/messages.json."""
    messages = json.loads((SOURCE / "_locales" / "en" / "messages.json").read_text())
    used: set[str] = set()
    for path in sources(".js", ".html"):
        text = path.read_text()
        used |= set(re.findall(r"\bt\(\"(\w+)\"", text))
        used |= set(re.findall(r'data-i18n(?:-placeholder)?="(\w+)"', text))
    assert used
    assert sorted(used - messages.keys()) == []
    for prefix in ("detection_", "notice_"):
        assert any(key.startswith(prefix) for key in messages), prefix


def test_no_remote_code_and_no_eval() -> None:
    """No eval, no Function constructor, no string timers, no remote scripts, no inline scripts, no innerHTML."""
    forbidden = [
        (r"\beval\s*\(", "eval"),
        (r"\bnew\s+Function\s*\(", "new Function"),
        (r"\bset(?:Timeout|Interval)\s*\(\s*[\"'`]", "a string timer"),
        (r"\bimportScripts\s*\(", "importScripts"),
        (r"\bimport\s*\(?\s*[\"'`]https?:", "a remote import"),
        (r"\bfrom\s+[\"'`]https?:", "a remote import"),
        (r"\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML|document\.write", "HTML from strings"),
    ]
    for path in sources(".js"):
        text = path.read_text()
        for pattern, what in forbidden:
            assert not re.search(pattern, text), f"{what} in {path.relative_to(SOURCE)}"
    for path in sources(".html"):
        text = path.read_text()
        scripts = re.findall(r"<script\b([^>]*)>", text)
        assert all("src=" in attributes for attributes in scripts), f"an inline script in {path.name}"
        assert not re.search(r"(?:src|href)=\"(?:https?:)?//", text), f"a remote resource in {path.name}"
        assert not re.search(r"\son\w+=", text), f"an inline event handler in {path.name}"


def test_only_the_api_module_touches_the_browser_namespace() -> None:
    """`chrome.*` and `browser.*` appear only in lib/api.js (and the handshake, a classic content script)."""
    offenders = [
        str(path.relative_to(SOURCE))
        for path in sources(".js")
        if str(path.relative_to(SOURCE)) not in NAMESPACE_FILES
        and re.search(r"\b(?:chrome|browser)\.[a-z]", path.read_text())
    ]
    assert offenders == []


def test_handshake_checks_source_and_origin_and_never_posts_to_any_origin() -> None:
    """The content script checks `event.source` and `event.origin` and never posts with targetOrigin `*`."""
    text = (SOURCE / "content" / "handshake.js").read_text()
    assert "event.source !== window" in text
    assert "event.origin !== origin" in text
    assert "window.top !== window" in text
    assert not re.search(r"postMessage\([^)]*[\"']\*[\"']", text)
    assert "Token" not in text, "the handshake never sees a token"


def test_build_writes_a_folder_and_a_zip_per_browser(tmp_path: Path) -> None:
    """The build copies the source tree with each browser's manifest and zips it as supportgate-<browser>-<version>."""
    built = build(EXTENSION, tmp_path)
    version = manifest("chromium")["version"]
    assert [(b.browser, b.version) for b in built] == [("chromium", version), ("firefox", version)]
    for item in built:
        assert item.archive == tmp_path / f"supportgate-{item.browser}-{version}.zip"
        assert json.loads((item.directory / "manifest.json").read_text()) == manifest(item.browser)
        assert (item.directory / "content" / "handshake.js").is_file()
        with zipfile.ZipFile(item.archive) as bundle:
            names = set(bundle.namelist())
            assert "manifest.json" in names
            assert "background/main.js" in names
            assert json.loads(bundle.read("manifest.json")) == manifest(item.browser)
        shipped = {p.relative_to(item.directory).as_posix() for p in item.directory.rglob("*") if p.is_file()}
        assert shipped == names


def test_build_is_reproducible(tmp_path: Path) -> None:
    """Two builds of the same source give byte-identical zips."""
    first = build(EXTENSION, tmp_path / "one")
    second = build(EXTENSION, tmp_path / "two")
    for a, b in zip(first, second, strict=True):
        assert a.archive is not None
        assert b.archive is not None
        assert a.archive.read_bytes() == b.archive.read_bytes()


def test_test_variant_grants_only_the_test_hosts(tmp_path: Path) -> None:
    """The automation-only build adds the given host permissions and is never zipped."""
    hosts = ["http://news.example/*", "http://sub.news.example/*"]
    variant = build_test_variant(EXTENSION, tmp_path, hosts)
    found = json.loads((variant.directory / "manifest.json").read_text())
    assert variant.directory.name == "chromium-test"
    assert variant.archive is None
    assert found["host_permissions"] == sorted(hosts)
    assert found["permissions"] == manifest("chromium")["permissions"]
    assert not list(tmp_path.glob("*.zip"))


def test_firefox_test_variant_keeps_the_gecko_settings(tmp_path: Path) -> None:
    """The Firefox test build is the Firefox manifest (id, background scripts, policy) plus the test hosts."""
    variant = build_test_variant(EXTENSION, tmp_path, ["http://news.example/*"], browser="firefox")
    found = json.loads((variant.directory / "manifest.json").read_text())
    assert (variant.directory.name, variant.browser, variant.archive) == ("firefox-test", "firefox", None)
    assert found["host_permissions"] == ["http://news.example/*"]
    assert found["browser_specific_settings"] == manifest("firefox")["browser_specific_settings"]
    assert found["background"] == {"scripts": ["background/main.js"], "type": "module"}
    assert found["content_security_policy"] == {"extension_pages": FIREFOX_POLICY}


def test_test_variant_for_an_unknown_browser_says_so(tmp_path: Path) -> None:
    """Asking for a test build of a browser with no manifest names the ones there are."""
    with pytest.raises(SupportgateError, match="chromium, firefox"):
        build_test_variant(EXTENSION, tmp_path, ["http://news.example/*"], browser="safari")
    assert not list(tmp_path.iterdir())


def test_cli_extension_build(tmp_path: Path) -> None:
    """`supportgate extension build --source extension --out DIR` writes both builds and names them."""
    result = CliRunner().invoke(cli, ["extension", "build", "--source", str(EXTENSION), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for browser in BROWSERS:
        assert (tmp_path / browser / "manifest.json").is_file()
        assert browser in result.output
    assert not (tmp_path / "chromium-test").exists()


def test_cli_extension_build_without_a_source_says_so(tmp_path: Path) -> None:
    """Run outside the repository, the build says which folder it needs instead of a traceback."""
    result = CliRunner().invoke(cli, ["extension", "build", "--source", str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "manifest.chromium.json" in str(result.exception)


def test_web_ext_lint_passes_on_the_firefox_build(tmp_path: Path) -> None:
    """`web-ext lint` finds no error and no warning in the Firefox build."""
    if not WEB_EXT.exists():
        pytest.skip("node_modules/.bin/web-ext is missing: run `npm ci` for the Firefox lint")
    firefox = next(b for b in build(EXTENSION, tmp_path) if b.browser == "firefox")
    result = subprocess.run(
        [str(WEB_EXT), "lint", "--source-dir", str(firefox.directory), "--output", "json", "--no-config-discovery"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    report = json.loads(result.stdout[result.stdout.index("{") :])
    found = [(m["code"], m["message"], m.get("file")) for m in report["errors"] + report["warnings"]]
    assert found == [], found
    assert result.returncode == 0, result.stderr
