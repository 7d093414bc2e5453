"""The ``/schema`` page's Swagger UI, served from the ``swagger-ui-py`` package: no CDN.

``swagger-ui-py`` ships Swagger UI 5, which renders OpenAPI 3.1 (the document Litestar writes);
``swagger-ui-bundle`` ships 4.15, which does not. Only its static files are used, found without
importing the package (its ``__init__`` loads its own framework adapters).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Annotated, Final

from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.params import PathParameter

__all__ = ["SWAGGER_UI_PATH", "swagger_ui_asset", "swagger_ui_plugin"]

SWAGGER_UI_PATH: Final = "/static/swagger-ui"
"""Where the Swagger UI's files are served."""

_ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
"""The files the page loads, and nothing else of the package (its own HTML pages stay unserved)."""


@functools.cache
def _read(name: str) -> bytes:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package, a dependency of supportgate, is not installed")
    return (Path(spec.submodule_search_locations[0]) / "static" / name).read_bytes()


@get(f"{SWAGGER_UI_PATH}/{{name:str}}", include_in_schema=False, cache_control=None)
async def swagger_ui_asset(name: Annotated[str, PathParameter(max_length=64)]) -> Response[bytes]:
    """One of the Swagger UI's files, cached for a day: they change only with the package."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise NotFoundException
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return Response(_read(name), media_type=media_type, headers=headers)


def swagger_ui_plugin() -> SwaggerRenderPlugin:
    """The ``/schema`` page, loading its script, styles and icon from this service."""
    return SwaggerRenderPlugin(
        js_url=f"{SWAGGER_UI_PATH}/swagger-ui-bundle.js",
        css_url=f"{SWAGGER_UI_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{SWAGGER_UI_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_UI_PATH}/favicon-32x32.png'>",
    )
