"""Helpers for the token tests: forged tokens, claims, and a local HTTP server that keeps count."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from supportgate.store import Store
from supportgate.tokens.sealing import MasterKey
from supportgate.tokens.vault import Vault

ISSUER = "https://gate.example"
SITE = "news-example"
OTHER_SITE = "other-example"
SECRET = b"s" * 32
MASTER_MATERIAL = b"m" * 32
MASTER_KEY = MasterKey(MASTER_MATERIAL)


def vault(store: Store) -> Vault:
    """The secrets in ``store``, sealed under the tests' master key."""
    return Vault(store, MASTER_KEY)


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    header: dict[str, Any],
    claims: dict[str, Any],
    sign: Callable[[bytes], bytes] | None = None,
) -> str:
    """A compact JWS put together by hand, signed by ``sign`` or with an empty signature."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign is not None else b""
    return f"{signing_input}.{b64url(signature)}"


def good_claims(now: datetime, *, audience: str = SITE, lifetime: timedelta = timedelta(hours=1)) -> dict[str, Any]:
    """Claims that pass every rule for ``audience`` at ``now``."""
    issued = int(now.timestamp())
    return {
        "iss": ISSUER,
        "aud": audience,
        "sub": "pseudonym",
        "sid": "session",
        "jti": "jti-1",
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "tier": "supporter",
        "ent": ["adblock_ok"],
    }


class LocalServer:
    """An HTTP server on 127.0.0.1 that records every request and answers with a JSON document."""

    def __init__(self, document: object = None, *, cache_control: str = "max-age=300") -> None:
        self.document = document
        self.cache_control = cache_control
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                if server.document is None:
                    self.send_error(404)
                    return
                body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", server.cache_control)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Shut the server down and free its port."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
