"""Bad input on every route that takes a JSON body: a clear problem+json, the right 4xx, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

from supportgate.http.limits import MAX_HEADER_BYTES, MAX_TARGET_BYTES
from supportgate.services import Services
from supportgate.settings import Settings
from supportgate.store import names
from tests.conftest import suite_settings
from tests.gate_helpers import NEWS_ORIGIN, Client, World, make_world

NOT_UTF8 = b'{"\xff@example.com": 1}'
_PATH_PARAMETERS = {"{tier_id}": "supporter", "{site_id}": "news", "{site}": "news"}


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    """The suite's settings with a Stripe signing secret, so that the Stripe webhook is swept too."""
    return suite_settings(store_url, tmp_path, stripe_webhook_secret="whsec_bad_input_sweep")


@pytest.fixture
async def world(client: Client, services: Services) -> World:  # noqa: ARG001 - the app starts first
    return await make_world(services)


@pytest.fixture
async def access_token(world: World, services: Services) -> str:
    """An access token of the supporter, for the routes a signed-in reader calls."""
    pair = await services.sessions.start(supporter_id=world.supporter_id, max_devices=5, device="tests")
    return pair.access_token


async def json_routes(client: Client, world: World, *, optional: bool = True) -> list[tuple[str, str]]:
    """``(method, path)`` of every operation in the OpenAPI schema that takes a JSON body, ready to call.

    With ``optional`` false, only those whose body is required. (The CSV import takes ``text/csv``:
    tests/test_supporter_csv.py checks its media type and encoding.)
    """
    schema = (await client.get("/schema/openapi.json")).json()
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody")
            if body and "application/json" in body["content"] and (optional or body.get("required", False)):
                concrete = path.replace("{supporter_id}", world.supporter_id)
                for name, value in _PATH_PARAMETERS.items():
                    concrete = concrete.replace(name, value)
                found.append((method.upper(), concrete))
    assert ("POST", "/v1/decide") in found
    assert ("POST", "/v1/auth/code/request") in found
    assert len(found) >= 15
    return found


def everything(store_url: str) -> dict[bytes, Any]:
    """Every key in the store with its serialised value: two equal snapshots mean nothing was written.

    Except when a key was last used: a refused request still used the key it was sent with. The mail
    queue counts by its mails: its serialised form holds when the app's consumer last polled it.
    """
    skipped = {names.key_last_used().encode(), names.mail_queue().encode()}
    with redis.Redis.from_url(store_url) as store:
        state: dict[bytes, Any] = {key: store.dump(key) for key in sorted(store.keys("*")) if key not in skipped}
        state[names.mail_queue().encode()] = store.xrange(names.mail_queue())
        return state


async def send(
    client: Client, token: str, method: str, path: str, content: bytes, content_type: str | None
) -> tuple[int, str, dict[str, Any]]:
    """Send ``content`` with ``token`` from the news site's origin; the status, media type and problem."""
    headers = {"Origin": NEWS_ORIGIN, "Authorization": f"Bearer {token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    answer = await client.request(method, path, content=content, headers=headers)
    return answer.status_code, answer.headers["content-type"], answer.json()


async def test_a_body_that_is_not_utf8_is_a_400_everywhere(
    client: Client, world: World, store_url: str, access_token: str
) -> None:
    """Invalid UTF-8 in a JSON body answers 400 problem+json saying so, on every JSON route, and writes nothing."""
    before = everything(store_url)
    for method, path in await json_routes(client, world):
        token = world.admin_key if path.startswith("/v1/admin/") else access_token
        status, media_type, problem = await send(client, token, method, path, NOT_UTF8, "application/json")
        assert (status, media_type) == (400, "application/problem+json"), (path, problem)
        assert "not UTF-8" in problem["detail"], path
    assert everything(store_url) == before


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/json-patch+json",
        "application/jsonx",
    ],
)
async def test_other_content_types_are_a_415_everywhere(
    client: Client, world: World, store_url: str, access_token: str, content_type: str | None
) -> None:
    """A body sent as anything but application/json answers 415 problem+json on every JSON route; nothing is written."""
    before = everything(store_url)
    for method, path in await json_routes(client, world):
        token = world.admin_key if path.startswith("/v1/admin/") else access_token
        status, media_type, problem = await send(client, token, method, path, b'{"a": 1}', content_type)
        assert (status, media_type) == (415, "application/problem+json"), (path, problem)
        assert problem["type"] == "urn:supportgate:problem:unsupported-media-type"
        assert "application/json" in problem["detail"]
    assert everything(store_url) == before


async def test_an_empty_body_is_named(client: Client, world: World, store_url: str, access_token: str) -> None:
    """No body at all answers 415 without a JSON Content-Type and 400 saying the body is missing with one.

    Where the body is optional (a site key's name), no body at all is taken, as the OpenAPI says.
    """
    before = everything(store_url)
    for method, path in await json_routes(client, world, optional=False):
        token = world.admin_key if path.startswith("/v1/admin/") else access_token
        assert (await send(client, token, method, path, b"", "text/plain"))[0] == 415, path
        status, _, problem = await send(client, token, method, path, b"", "application/json")
        assert status == 400, path
        assert "no body" in problem["detail"] or "not valid JSON" in problem["detail"], (path, problem)
    assert everything(store_url) == before


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", 'Application/JSON;charset="UTF-8"']
)
async def test_json_with_or_without_utf8_charset_is_taken(client: Client, content_type: str) -> None:
    """``application/json``, with or without ``; charset=utf-8`` in any case, is accepted."""
    body = b'{"email": "reader@example.com"}'
    answer = await client.post("/v1/auth/code/request", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == 202, answer.text
    decided = await client.post(
        "/v1/decide",
        content=b'{"site": "news", "path": "/", "adblock": "clear"}',
        headers={"Content-Type": content_type, "Origin": NEWS_ORIGIN},
    )
    assert decided.status_code == 200, decided.text


def test_gate_js_sends_json() -> None:
    """gate.js posts its bodies as application/json, so its calls pass the media type check (and are preflighted)."""
    source = (Path(__file__).parents[1] / "src/supportgate/static/gate/gate.js").read_text()
    assert 'headers: {"Content-Type": "application/json"}' in source


async def test_the_schema_documents_the_415(client: Client, world: World) -> None:
    """Every operation that takes a body lists the 415 it may answer."""
    schema = (await client.get("/schema/openapi.json")).json()
    for path, item in schema["paths"].items():
        for operation in item.values():
            if "requestBody" in operation:
                assert "415" in operation["responses"], path
    assert await json_routes(client, world)


@pytest.mark.parametrize(
    "target",
    [
        "/" + "a" * MAX_TARGET_BYTES,
        "/v1/sites/news/gate.js?v=" + "1" * MAX_TARGET_BYTES,
        "/v1/decide?" + "x" * MAX_TARGET_BYTES,
    ],
)
async def test_an_overlong_target_is_a_414(client: Client, target: str) -> None:
    """A path and query over 8 KiB answer 414 problem+json, whether a route would take the path or not."""
    answer = await client.post(target, json={}) if target.startswith("/v1/decide") else await client.get(target)
    assert answer.status_code == 414
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "urn:supportgate:problem:uri-too-long"
    assert str(MAX_TARGET_BYTES) in problem["detail"]


async def test_huge_headers_are_a_431(client: Client) -> None:
    """Headers over 64 KiB in all answer 431 problem+json, on any path; just under, the request goes through."""
    for path in ("/healthz", "/nowhere", "/v1/decide"):
        answer = await client.get(path, headers={"X-Big": "a" * MAX_HEADER_BYTES})
        assert answer.status_code == 431, path
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == "urn:supportgate:problem:headers-too-large"
    spread = {f"X-Part-{n}": "a" * 8000 for n in range(9)}
    assert (await client.get("/healthz", headers=spread)).status_code == 431
    assert (await client.get("/healthz", headers={"X-Big": "a" * (MAX_HEADER_BYTES // 2)})).status_code == 200


async def test_a_long_target_under_the_limit_is_routed(client: Client) -> None:
    """A path just under 8 KiB is routed as usual: a 404 problem for no route."""
    answer = await client.get("/" + "a" * (MAX_TARGET_BYTES - 100))
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
