"""supportgate-verify as a distribution: it builds, installs alone, verifies the service's passes, and its docs run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from packaging.requirements import Requirement

import supportgate_verify
from supportgate.clock import utc_now
from supportgate.tokens import jose
from supportgate.tokens.claims import pass_claims
from supportgate_verify import PassVerifier
from tests.tokens_helpers import SECRET, LocalServer

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "packages" / "supportgate-verify"
DOCS_GATE = "https://gate.example.com"
DOCS_SITE = "news"


def uv() -> str:
    found = shutil.which("uv")
    if found is None:
        pytest.fail("uv is not on PATH (.ci/run installs it)")
    return found


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``command`` without the network and without this test run's virtual environment."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    env |= {"UV_OFFLINE": "1", "UV_NO_PROGRESS": "1"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


class Gate:
    """An Ed25519 key that signs passes with the service's own signing code."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.key = Ed25519PrivateKey.generate()
        self.jwks = {"keys": [jose.public_jwk(self.key.public_key())]}

    def pass_for(self, site: str, entitlements: list[str], now: datetime) -> str:
        """A pass for ``site`` issued at ``now``, as the gate signs it."""
        claims = pass_claims(
            supporter_id="sup-1",
            site_id=site,
            tier="supporter",
            entitlements=entitlements,
            session_id="ses-1",
            issuer=self.issuer,
            pseudonym_secret=SECRET,
            now=now,
        )
        return jose.sign(claims, typ=jose.PASS_TYPE, key=self.key, kid=jose.thumbprint(self.key.public_key()))


def test_the_wheel_needs_pyjwt_alone_and_holds_only_supportgate_verify(tmp_path: Path) -> None:
    """`uv build --package supportgate-verify` makes a typed wheel that requires PyJWT[crypto] and nothing else."""
    run(uv(), "build", "--package", "supportgate-verify", "--out-dir", str(tmp_path))
    version = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]["version"]
    (wheel,) = tmp_path.glob("supportgate_verify-*.whl")
    assert wheel.name == f"supportgate_verify-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = HeaderParser().parsestr(archive.read(f"supportgate_verify-{version}.dist-info/METADATA").decode())
    requires = [Requirement(line) for line in metadata.get_all("Requires-Dist", [])]
    assert [(r.name.lower(), r.extras) for r in requires] == [("pyjwt", {"crypto"})]
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Version"] == version == supportgate_verify.__version__
    assert {name.split("/")[0] for name in names} == {"supportgate_verify", f"supportgate_verify-{version}.dist-info"}
    assert "supportgate_verify/py.typed" in names
    assert not [name for name in names if name.startswith("supportgate/")]


INSTALLED_SCRIPT = """
import importlib.util, json, sys

from supportgate_verify import InvalidToken, PassVerifier

jwks_file, site, issuer, *tokens = sys.argv[1:]
absent = [name for name in ("supportgate", "litestar", "redis", "msgspec") if importlib.util.find_spec(name)]
with open(jwks_file, encoding="utf-8") as jwks:
    verifier = PassVerifier(keys=json.load(jwks), site=site, issuer=issuer)
answers = []
for token in tokens:
    try:
        verified = verifier.verify(token)
    except InvalidToken as exc:
        answers.append(exc.reason)
    else:
        answers.append([verified.tier, list(verified.entitlements), verified.expires_at.isoformat()])
print(json.dumps({"importable": absent, "answers": answers}))
"""


def test_installed_from_the_repo_path_alone_it_verifies_a_service_pass(tmp_path: Path) -> None:
    """In a fresh venv with only the package (and its locked dependencies) a site verifies the service's pass."""
    venv = tmp_path / "venv"
    run(uv(), "venv", "--quiet", str(venv))
    python = str(venv / "bin" / "python")
    # The versions uv.lock holds for the package's dependencies, which `uv sync` left in uv's cache.
    locked = run(
        uv(), "export", "--package", "supportgate-verify", "--frozen", "--no-dev", "--no-emit-workspace",
        "--no-hashes", "--no-header", "--no-annotate",
    ).stdout  # fmt: skip
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(locked)
    run(uv(), "pip", "install", "--python", python, "--no-deps", "-r", str(requirements), str(PACKAGE), cwd=tmp_path)
    # The package's own metadata must be met by what was installed.
    run(uv(), "pip", "check", "--python", python, cwd=tmp_path)

    issuer = "https://gate.example"
    gate, now = Gate(issuer), utc_now()
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(gate.jwks))
    script = tmp_path / "site.py"
    script.write_text(INSTALLED_SCRIPT)
    good = gate.pass_for("news", ["adblock_ok"], now)
    other_site = gate.pass_for("blog", ["adblock_ok"], now)
    stranger = Gate(issuer).pass_for("news", ["adblock_ok"], now)
    result = run(python, str(script), str(jwks_file), "news", issuer, good, other_site, stranger, cwd=tmp_path)

    seen = json.loads(result.stdout)
    assert seen["importable"] == []
    expires = datetime.fromtimestamp(int(now.timestamp()), now.tzinfo) + timedelta(hours=1)
    assert seen["answers"] == [
        ["supporter", ["adblock_ok"], expires.isoformat()],
        "wrong_audience",
        "unknown_key",
    ]


def python_blocks(markdown: Path, section: str | None = None) -> list[str]:
    """The fenced ``python`` blocks of ``markdown``, or of its ``## section`` alone."""
    text = markdown.read_text()
    if section is not None:
        text = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


@pytest.fixture
def docs_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Gate, LocalServer]]:
    """The docs' gate: its JWKS served on 127.0.0.1 and written to jwks.json in the working folder."""
    gate = Gate(DOCS_GATE)
    (tmp_path / "jwks.json").write_text(json.dumps(gate.jwks))
    monkeypatch.chdir(tmp_path)
    with LocalServer(gate.jwks) as server:
        yield gate, server


DOCS_JWKS_URL = f"{DOCS_GATE}/.well-known/jwks.json"


def run_example(code: str, server: LocalServer) -> dict[str, Any]:
    """Run a docs example as written, but for the gate's JWKS URL, which points at ``server``."""
    namespace: dict[str, Any] = {"__name__": "example"}
    exec(code.replace(DOCS_JWKS_URL, f"{server.url}/.well-known/jwks.json"), namespace)
    return namespace


@pytest.mark.parametrize(
    ("markdown", "section"),
    [(ROOT / "docs" / "site-integration.md", "Verifying offline in Python"), (PACKAGE / "README.md", None)],
    ids=["site-integration", "package-readme"],
)
def test_the_documented_examples_run(markdown: Path, section: str | None, docs_gate: tuple[Gate, LocalServer]) -> None:
    """Every Python example of the docs runs as written and tells a supporter's pass from others."""
    gate, server = docs_gate
    blocks = python_blocks(markdown, section)
    assert blocks, f"no python example in {markdown.name}"
    now = utc_now()
    for code in blocks:
        fetched_before = len(server.hits)
        namespace = run_example(code, server)
        verifier = namespace["verifier"]
        assert isinstance(verifier, PassVerifier)
        assert verifier.verify(gate.pass_for(DOCS_SITE, ["adblock_ok"], now)).tier == "supporter"
        is_supporter = namespace.get("is_supporter")
        if is_supporter is not None:
            assert is_supporter({"Supportgate-Pass": gate.pass_for(DOCS_SITE, ["adblock_ok"], now)})
            assert not is_supporter({"Supportgate-Pass": gate.pass_for(DOCS_SITE, ["newsletter"], now)})
            assert not is_supporter({"Supportgate-Pass": gate.pass_for("blog", ["adblock_ok"], now)})
            assert not is_supporter({})
        # An example that names the JWKS URL fetched the keys from it, once; the others were given them.
        assert len(server.hits) - fetched_before == (DOCS_JWKS_URL in code)
