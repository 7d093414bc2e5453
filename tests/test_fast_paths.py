"""Page views answered before Litestar's router and middleware, with errors rendered as through Litestar."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar, asgi, get
from litestar.exceptions import MethodNotAllowedException
from litestar.middleware import ASGIMiddleware
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from supportgate.errors import BadRequest
from supportgate.http.asgi import send_answer
from supportgate.http.fast_paths import fast_paths
from supportgate.http.problems import exception_handlers


class Counting(ASGIMiddleware):
    """Notes every path that went through the app's middleware stack."""

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Note the path, then run the route."""
        self.seen.append(scope["path"])
        await next_app(scope, receive, send)


async def answering(scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG001 - reads no body
    """A page-view endpoint: answers with the app it was given and the route template set for the log."""
    app = scope["app"]
    assert isinstance(app, Litestar)
    template = scope.get("path_template")
    await send_answer(send, 200, f'{{"route": "{template}"}}'.encode(), {"Content-Type": "application/json"})


async def refusing(scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG001
    if scope["method"] != "POST":
        raise MethodNotAllowedException(headers={"Allow": "POST"})
    raise BadRequest("$.site: expected `str`", title="Invalid request")


async def failing(scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG001
    raise RuntimeError("a bug")


@asgi("/fast", is_mount=False, copy_scope=False)
async def fast_route(scope: Scope, receive: Receive, send: Send) -> None:
    await refusing(scope, receive, send)


@get("/slow")
async def slow() -> dict[str, str]:
    return {"route": "litestar"}


@pytest.fixture
def seen() -> list[str]:
    return []


@pytest.fixture
def client(seen: list[str]) -> Iterator[TestClient[Litestar]]:
    app = Litestar([fast_route, slow], middleware=[Counting(seen)], exception_handlers=exception_handlers)
    routes: dict[str, ASGIApp] = {"/answer": answering, "/fast": refusing, "/fail": failing}
    app.state.litestar_only = app.asgi_handler
    app.asgi_handler = fast_paths(app.asgi_handler, routes, exception_handlers)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_page_view_skips_the_router_and_the_middleware(client: TestClient[Litestar], seen: list[str]) -> None:
    answer = client.get("/answer")
    assert answer.status_code == 200
    assert answer.json() == {"route": "/answer"}
    assert seen == []


def test_every_other_path_goes_through_litestar(client: TestClient[Litestar], seen: list[str]) -> None:
    assert client.get("/slow").json() == {"route": "litestar"}
    assert client.get("/answer/").status_code == 404  # only the exact path is a page view: Litestar has no route
    assert seen == ["/slow"]


@pytest.mark.parametrize(
    ("method", "status", "headers"),
    [("POST", 400, {}), ("GET", 405, {"allow": "POST"})],
)
def test_an_error_is_rendered_as_litestar_renders_it(
    client: TestClient[Litestar], seen: list[str], method: str, status: int, headers: dict[str, Any]
) -> None:
    """The same exception gives the same answer from the fast path as from the registered route."""
    fast = client.request(method, "/fast")
    assert seen == []
    # The registered route, reached through Litestar's own stack, raises the same exception.
    client.app.asgi_handler = client.app.state.litestar_only
    routed = client.request(method, "/fast")
    assert seen == ["/fast"]
    assert fast.status_code == routed.status_code == status
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/problem+json"
    assert fast.json() == routed.json()
    for name, value in headers.items():
        assert fast.headers[name] == routed.headers[name] == value


def test_an_unexpected_error_is_a_logged_500_problem(
    client: TestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    answer = client.get("/fail")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("internal-error")
    assert "a bug" not in answer.text
    assert any("unexpected error during GET /fail" in record.getMessage() for record in caplog.records)
