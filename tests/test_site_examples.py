"""docs/site-integration.md's examples run as written against a served supportgate: curl, Python, Node.js, PHP.

Each fenced block after an ``<!-- example: name -->`` comment is extracted, its documented
placeholders (GATE_URL, SITE_ID, SITE_KEY, PASS) replaced and nothing else, and run by its
language's interpreter against ``python -m supportgate serve`` on a free port: once with a pass
the service issued, once with a pass for another site, which every example must refuse.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from supportgate.mail import mailer_for
from supportgate.mail_queue import MailQueue
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import EmbeddedStore, Store, connect
from supportgate.store.server import find_server_binary
from supportgate.tokens.jose import PASS_TYPE
from supportgate.tokens.sealing import MasterKey
from tests.gate_helpers import World, make_world, pass_for
from tests.processes import free_port, run_captured, start_supportgate, stop, wait_ready

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "site-integration.md"
EXAMPLE = re.compile(r"<!-- example: ([a-z0-9-]+) -->\n```(\w+)\n(.*?)\n```", re.DOTALL)
PLACEHOLDERS = ("GATE_URL", "SITE_ID", "SITE_KEY", "PASS")
SUFFIXES = {"bash": ".sh", "python": ".py", "js": ".mjs", "php": ".php"}


def examples() -> dict[str, tuple[str, str]]:
    """The marked examples of the doc, by name: (language, code)."""
    return {name: (language, code + "\n") for name, language, code in EXAMPLE.findall(DOC.read_text())}


@dataclass
class Gate:
    """The served gate and what was made in it."""

    url: str
    world: World
    good: str
    """A pass for site ``news`` from a supporter on the adblock_ok tier."""
    other_site: str
    """A pass of the same supporter for site ``blog``."""
    expired: str
    """The good pass's claims, an hour past their ``exp``, signed by the gate's key."""
    access: str
    """An access token of the supporter's: signed by the same key, never a pass."""


async def seed(settings: Settings, url: str) -> tuple[World, list[str]]:
    store = Store(connect(url))
    try:
        services = Services.build(
            store, settings, MailQueue(store, mailer_for(settings)), MasterKey(settings.load_master_key())
        )
        await services.signing_keys.ensure()
        world = await make_world(services)
        good = await pass_for(services, world.supporter_id, "news")
        body = good.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        hour_ago = int(time.time()) - 3600
        expired = await services.tokens.sign({**claims, "iat": hour_ago - 600, "exp": hour_ago}, PASS_TYPE)
        pair = await services.sessions.start(supporter_id=world.supporter_id, max_devices=5, device="examples")
        return world, [good, await pass_for(services, world.supporter_id, "blog"), expired, pair.access_token]
    finally:
        await store.close()


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    """``python -m supportgate serve`` on a free port, public as http://127.0.0.1:<port>, with two sites seeded."""
    root = tmp_path_factory.mktemp("served-gate")
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    with EmbeddedStore(root / "store", binary=find_server_binary()) as store:
        settings = Settings(redis_url=store.url, data_dir=root / "data", public_url=public)
        world, tokens = asyncio.run(seed(settings, store.url))
        env = {
            **os.environ,
            "SUPPORTGATE_REDIS_URL": store.url,
            "SUPPORTGATE_DATA_DIR": str(root / "data"),
            "SUPPORTGATE_PUBLIC_URL": public,
            "SUPPORTGATE_EXTENSION_SOURCE": str(root / "no-extension"),
            "PYTHONUNBUFFERED": "1",
        }
        log = root / "serve.log"
        process = start_supportgate("serve", "--port", str(port), env=env, log=log)
        try:
            wait_ready(public, process, log)
            yield Gate(public, world, *tokens)
        finally:
            stop(process, timeout=15)


def runner(language: str, tmp_path: Path) -> list[str]:
    """The command that runs an example of ``language``, or skip when its interpreter is missing."""
    if language == "python":
        return [sys.executable]
    name = {"bash": "bash", "js": "node", "php": "php"}[language]
    found = shutil.which(name)
    if found is None:
        hint = "apt-get install php-cli" if name == "php" else f"apt-get install {name}"
        pytest.skip(f"{name} is not installed (`{hint}`; .ci/run installs it): its examples are not run")
    if language == "js" and not (ROOT / "node_modules" / "@supportgate" / "verify").is_dir():
        pytest.skip("node_modules has no @supportgate/verify: run `npm ci` (.ci/run does) for the Node.js examples")
    if language == "js" and not (tmp_path / "node_modules").exists():
        # Bare imports resolve from the script's folder up: give it the repository's node_modules.
        (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    return [found] if name != "bash" else [found, "-euo", "pipefail"]


def run(gate: Gate, name: str, supporter_pass: str, tmp_path: Path) -> str:
    """Example ``name`` with the placeholders filled in and ``supporter_pass`` as PASS: what it printed."""
    language, code = examples()[name]
    values = {"GATE_URL": gate.url, "SITE_ID": "news", "SITE_KEY": gate.world.news_key, "PASS": supporter_pass}
    for placeholder in PLACEHOLDERS:
        code = re.sub(rf"\b{placeholder}\b", values[placeholder], code)
    script = tmp_path / f"{name}{SUFFIXES[language]}"
    script.write_text(code)
    result = run_captured(
        [*runner(language, tmp_path), str(script)],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 0, f"{name} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_doc_marks_every_example_and_uses_only_documented_placeholders() -> None:
    """The guide marks six examples, each a known language, each naming GATE_URL and PASS, and no other placeholder."""
    found = examples()
    assert sorted(found) == [
        "decide-curl",
        "decide-node",
        "decide-php",
        "decide-python",
        "verify-node",
        "verify-php",
    ]
    text = DOC.read_text()
    assert text.count("<!-- example:") == len(found), "a marked example the extractor cannot read"
    for name, (language, code) in found.items():
        assert language in SUFFIXES, name
        assert "GATE_URL" in code, name
        assert re.search(r"\bPASS\b", code), name
        for placeholder in PLACEHOLDERS:
            assert f"`{placeholder}`" in text, f"{placeholder} is not documented"


@pytest.mark.parametrize("name", ["decide-curl", "decide-python", "decide-node", "decide-php"])
def test_decide_example_lets_a_supporter_in_and_names_a_bad_pass(gate: Gate, name: str, tmp_path: Path) -> None:
    """A decide example sends the site key and the pass: a supporter is allowed, a pass for another site is named."""
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    good = json.loads(run(gate, name, gate.good, tmp_path / "good"))
    assert good["decision"] == "allow", good
    assert good["reason"] == "supporter", good
    assert good["supporter"] == {"tier": "supporter", "entitlements": ["adblock_ok"]}
    bad = json.loads(run(gate, name, gate.other_site, tmp_path / "bad"))
    assert bad["pass_error"] == "wrong_audience", bad
    assert bad["decision"] == "wall", bad
    assert "supporter" not in bad


@pytest.mark.parametrize("name", ["decide-python", "decide-node", "decide-php"])
def test_decide_example_allows_when_the_gate_cannot_answer(gate: Gate, name: str, tmp_path: Path) -> None:
    """A decide example answers allow, gate_unavailable, for a gate that is away or refuses its key."""
    away = replace(gate, url=f"http://127.0.0.1:{free_port()}")
    refused = replace(gate, world=replace(gate.world, news_key="sgs_" + "0" * 48))
    for case, served in (("away", away), ("refused", refused)):
        (tmp_path / case).mkdir()
        answer = json.loads(run(served, name, gate.good, tmp_path / case))
        assert answer == {"decision": "allow", "reason": "gate_unavailable"}, case


def forged(token: str) -> str:
    """``token`` with its payload changed to a grander tier, its signature kept: a forgery."""
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["tier"] = "patron"
    changed = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{changed}.{signature}"


@pytest.mark.parametrize("name", ["verify-node", "verify-php"])
def test_verify_example_accepts_a_pass_and_refuses_bad_ones(gate: Gate, name: str, tmp_path: Path) -> None:
    """An offline verifier accepts the service's pass, and refuses bad ones with the gate's reason for each."""
    for case in ("good", "other", "forged", "junk", "expired", "access"):
        (tmp_path / case).mkdir()
    assert run(gate, name, gate.good, tmp_path / "good").startswith("supporter: supporter [adblock_ok] until ")
    assert run(gate, name, gate.other_site, tmp_path / "other") == "not a supporter: wrong_audience\n"
    assert run(gate, name, forged(gate.good), tmp_path / "forged") == "not a supporter: bad_signature\n"
    assert run(gate, name, "not-a-pass", tmp_path / "junk") == "not a supporter: malformed\n"
    assert run(gate, name, gate.expired, tmp_path / "expired") == "not a supporter: expired\n"
    assert run(gate, name, gate.access, tmp_path / "access") == "not a supporter: wrong_type\n"


def test_php_verifier_keeps_the_jwks_in_a_file_and_fetches_again_at_most_once_a_minute(
    gate: Gate, tmp_path: Path
) -> None:
    """The PHP verifier keeps the JWKS for its max-age in a file; an unknown kid fetches again only after a minute."""
    assert run(gate, "verify-php", gate.good, tmp_path).startswith("supporter: ")
    [cache] = tmp_path.glob("supportgate-jwks-*.json")
    stored = json.loads(cache.read_text())
    assert stored["fresh_until"] - stored["fetched_at"] == 300, "the gate's max-age"
    assert stored["keys"]
    # Keys the gate never published, fetched just now: the pass's kid is unknown and no fetch may follow.
    cache.write_text(json.dumps({**stored, "keys": {"x" * 43: stored["keys"][next(iter(stored["keys"]))]}}))
    assert run(gate, "verify-php", gate.good, tmp_path) == "not a supporter: unknown_key\n"
    # A minute after that fetch the unknown kid fetches again, and finds the key.
    cache.write_text(json.dumps({**json.loads(cache.read_text()), "fetched_at": stored["fetched_at"] - 61}))
    assert run(gate, "verify-php", gate.good, tmp_path).startswith("supporter: ")
    assert json.loads(cache.read_text())["keys"] == stored["keys"]
