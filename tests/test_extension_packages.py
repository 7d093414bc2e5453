"""Builds for one gate: preset.json, branded builds from the CLI, and the service's build-once cache."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from supportgate.cli import cli
from supportgate.errors import SupportgateError
from supportgate.extension_build import (
    BROWSERS,
    PRESET_FILE,
    Preset,
    build,
    build_test_variant,
    find_gate_packages,
    gate_packages,
)

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "extension"
WEB_EXT = ROOT / "node_modules" / ".bin" / "web-ext"
DEFAULT_GECKO_ID = json.loads((EXTENSION / "manifest.firefox.json").read_text())["browser_specific_settings"]["gecko"][
    "id"
]


def build_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["extension", "build", "--source", str(EXTENSION), *args])
    return result.exit_code, result.output


def zipped_json(archive: Path, name: str) -> dict[str, object]:
    with zipfile.ZipFile(archive) as bundle:
        loaded: dict[str, object] = json.loads(bundle.read(name))
    return loaded


def test_cli_branded_build_presets_gate_and_name(tmp_path: Path) -> None:
    """`--gate --name`: preset.json in each folder and zip, the extension renamed, a Firefox id of its own."""
    code, output = build_cli("--out", str(tmp_path), "--gate", "https://Gate.Example.com/", "--name", "Daily Demo")
    assert code == 0, output
    version = json.loads((EXTENSION / "manifest.chromium.json").read_text())["version"]
    for browser in BROWSERS:
        preset = {"gate": "https://gate.example.com", "name": "Daily Demo"}
        assert json.loads((tmp_path / browser / PRESET_FILE).read_text()) == preset
        archive = tmp_path / f"supportgate-{browser}-{version}.zip"
        assert zipped_json(archive, PRESET_FILE) == preset
        assert zipped_json(archive, "manifest.json")["name"] == "Daily Demo"
        manifest = json.loads((tmp_path / browser / "manifest.json").read_text())
        assert manifest["description"].startswith("__MSG_")
        assert (tmp_path / browser / "_locales" / manifest["default_locale"] / "messages.json").is_file()
    gecko = json.loads((tmp_path / "firefox" / "manifest.json").read_text())["browser_specific_settings"]["gecko"]
    assert gecko["id"] != DEFAULT_GECKO_ID
    assert gecko["id"] == Preset.checked("https://gate.example.com").gecko_id
    assert gecko["id"] != Preset.checked("https://other.example.com").gecko_id
    assert "preset    gate https://gate.example.com" in output


def test_cli_gate_without_name_keeps_the_extension_name_and_id(tmp_path: Path) -> None:
    """`--gate` alone presets the gate with a null name; the manifests keep their name and gecko id."""
    code, output = build_cli("--out", str(tmp_path), "--gate", "http://127.0.0.1:8000")
    assert code == 0, output
    for browser in BROWSERS:
        assert json.loads((tmp_path / browser / PRESET_FILE).read_text()) == {
            "gate": "http://127.0.0.1:8000",
            "name": None,
        }
        assert json.loads((tmp_path / browser / "manifest.json").read_text())["name"] == "__MSG_extName__"
    gecko = json.loads((tmp_path / "firefox" / "manifest.json").read_text())["browser_specific_settings"]["gecko"]
    assert gecko["id"] == DEFAULT_GECKO_ID


def test_cli_without_gate_writes_no_preset(tmp_path: Path) -> None:
    """An unbranded build (no --gate) has no preset.json, in the folders or the zips."""
    code, output = build_cli("--out", str(tmp_path))
    assert code == 0, output
    for browser in BROWSERS:
        assert not (tmp_path / browser / PRESET_FILE).exists()
    for archive in tmp_path.glob("*.zip"):
        with zipfile.ZipFile(archive) as bundle:
            assert PRESET_FILE not in bundle.namelist()


def test_rebuilding_without_gate_drops_an_earlier_preset(tmp_path: Path) -> None:
    """A folder built for a gate and then built again without one loses its preset.json."""
    build(EXTENSION, tmp_path, Preset.checked("https://gate.example.com"))
    build(EXTENSION, tmp_path)
    assert not (tmp_path / "chromium" / PRESET_FILE).exists()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--gate", "ftp://gate.example.com"], "--gate"),
        (["--gate", "gate.example.com"], "--gate"),
        (["--gate", "https://gate.example.com/?a=1"], "--gate"),
        (["--gate", "https://gate.example.com/#top"], "--gate"),
        (["--gate", "https://user:pw@gate.example.com"], "--gate"),
        (["--gate", "https://gate.example.com:99999"], "--gate"),
        (["--name", "Daily Demo"], "--name"),
        (["--gate", "https://gate.example.com", "--name", " "], "--name"),
        (["--gate", "https://gate.example.com", "--name", "x" * 46], "--name"),
    ],
)
def test_cli_refuses_a_bad_gate_or_name_and_writes_nothing(tmp_path: Path, args: list[str], named: str) -> None:
    """A bad --gate or --name is a usage error naming the option, and no folder is written."""
    out = tmp_path / "out"
    code, output = build_cli("--out", str(out), *args)
    assert code == 2, output
    assert named in output
    assert not out.exists()


def test_branded_zips_are_reproducible(tmp_path: Path) -> None:
    """Two branded builds of the same source and preset give byte-identical zips."""
    preset = Preset.checked("https://gate.example.com", "Daily Demo")
    first = build(EXTENSION, tmp_path / "one", preset)
    second = build(EXTENSION, tmp_path / "two", preset)
    for a, b in zip(first, second, strict=True):
        assert a.archive is not None
        assert b.archive is not None
        assert a.archive.read_bytes() == b.archive.read_bytes()


def test_test_variant_takes_a_preset(tmp_path: Path) -> None:
    """The automation build carries preset.json too, and says it is a test build of the branded name."""
    preset = Preset.checked("http://news.example", "Daily Demo")
    variant = build_test_variant(EXTENSION, tmp_path, ["http://news.example/*"], preset)
    assert json.loads((variant.directory / PRESET_FILE).read_text()) == {
        "gate": "http://news.example",
        "name": "Daily Demo",
    }
    assert json.loads((variant.directory / "manifest.json").read_text())["name"] == "Daily Demo (test build)"


def test_web_ext_lint_passes_on_a_branded_firefox_build(tmp_path: Path) -> None:
    """`web-ext lint` finds no error and no warning in a branded Firefox build."""
    if not WEB_EXT.exists():
        pytest.skip("node_modules/.bin/web-ext is missing: run `npm ci` for the Firefox lint")
    built = build(EXTENSION, tmp_path, Preset.checked("https://gate.example.com", "Daily Demo"))
    firefox = next(b for b in built if b.browser == "firefox")
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


def test_gate_packages_are_built_once_per_source_and_preset(tmp_path: Path) -> None:
    """The service's packages are built on first start, found on the next, and built again when the source changes."""
    source = tmp_path / "extension"
    shutil.copytree(EXTENSION, source, ignore=shutil.ignore_patterns("node_modules", "test"))
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    preset = Preset.checked("https://gate.example.com")
    first, built = gate_packages(source, data, preset)
    assert built
    assert stat.S_IMODE((data / "extension").stat().st_mode) == 0o700
    for path in (data / "extension").rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    stamps = {browser: archive.stat().st_mtime_ns for browser, archive in first.archives.items()}
    second, built_again = gate_packages(source, data, preset)
    assert not built_again
    assert second == first
    assert {browser: archive.stat().st_mtime_ns for browser, archive in second.archives.items()} == stamps
    assert zipped_json(first.archives["firefox"], PRESET_FILE) == {"gate": "https://gate.example.com", "name": None}

    other_gate, built_for_other = gate_packages(source, data, Preset.checked("https://other.example.com"))
    assert built_for_other
    assert other_gate.archives["chromium"].parent != first.archives["chromium"].parent

    (source / "src" / "popup" / "popup.css").write_text("/* changed */\n", encoding="utf-8")
    assert find_gate_packages(source, data, preset) is None
    _, rebuilt = gate_packages(source, data, preset)
    assert rebuilt
    assert not list((data / "extension").glob(".building-*")), "no half-built folder is left behind"


def test_gate_packages_without_a_source_say_so(tmp_path: Path) -> None:
    """With no extension folder the build says which folder it needs, and nothing is written."""
    with pytest.raises(SupportgateError, match="src/"):
        gate_packages(tmp_path / "nowhere", tmp_path / "data", Preset.checked("https://gate.example.com"))
    assert not (tmp_path / "data").exists()
