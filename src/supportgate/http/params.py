"""Path and query parameters more than one feature's routes take."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter

__all__ = ["SitePath"]

SitePath = Annotated[
    str,
    PathParameter(pattern=r"^[a-z0-9-]{1,64}$", description="A site id: 1 to 64 lowercase letters, digits or '-'."),
]
"""A site's id in a route's path."""
