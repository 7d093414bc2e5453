"""Strict request bodies: JSON only, decoded by msgspec with no type coercion, naming the bad field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar.dto import MsgspecDTO
from litestar.openapi.spec import Reference, Schema
from litestar.typing import FieldDefinition

from supportgate.errors import BadRequest, UnsupportedMediaType, validation_detail

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

__all__ = ["JSON_MEDIA_TYPE", "Body", "decode_strict", "require_json"]

JSON_MEDIA_TYPE = "application/json"
"""The one media type a request body may have; ``; charset=utf-8`` is the one parameter allowed."""

T = TypeVar("T", bound=msgspec.Struct)


class Body(MsgspecDTO[T]):
    """Decode a JSON body into ``T`` strictly: ``"3"`` is not an int, unknown fields are refused.

    Litestar converts bodies leniently; the API contract is strict, so the body is decoded here
    with ``strict=True`` while Litestar still documents ``T`` in the OpenAPI schema.
    """

    @classmethod
    def create_openapi_schema(  # Litestar's signature; the arguments are not needed here
        cls,
        field_definition: FieldDefinition,  # noqa: ARG003
        handler_id: str,  # noqa: ARG003
        schema_creator: SchemaCreator,
    ) -> Reference | Schema:
        """Document the Struct itself, not the transfer model Litestar derives from it."""
        schema: Reference | Schema = schema_creator.for_field_definition(
            FieldDefinition.from_annotation(cls.model_type)
        )
        return schema

    def decode_bytes(self, value: bytes) -> Any:  # noqa: ANN401 - Litestar's signature
        """Decode ``value`` into the DTO's model type.

        Raises:
            UnsupportedMediaType: if the request does not say its body is JSON.
            BadRequest: naming the field, if the body is not valid JSON of the model's shape.
        """
        require_json(self.asgi_connection.headers.get("content-type"))
        return decode_strict(value, self.model_type)


def require_json(content_type: str | None) -> None:
    """Refuse (415) a body whose ``Content-Type`` is not ``application/json``.

    A browser sends ``text/plain`` or a form from any page without asking first; only a JSON
    body needs a CORS preflight, so taking nothing else keeps other origins' pages from posting.
    """
    if content_type is not None:
        media_type, _, parameters = content_type.partition(";")
        if media_type.strip().lower() == JSON_MEDIA_TYPE and _utf8_or_nothing(parameters):
            return
    shown = "none" if content_type is None else repr(content_type[:100])
    raise UnsupportedMediaType(
        f"Send the body as JSON with 'Content-Type: {JSON_MEDIA_TYPE}'; this request's Content-Type is {shown}.",
        title="Unsupported media type",
    )


def _utf8_or_nothing(parameters: str) -> bool:
    if not parameters.strip():
        return True
    name, _, value = parameters.partition("=")
    return name.strip().lower() == "charset" and value.strip().strip('"').lower() == "utf-8"


def decode_strict(value: bytes, model: type[T]) -> T:
    """``value`` as JSON decoded strictly into ``model``; BadRequest naming the bad field."""
    try:
        return msgspec.json.decode(value, type=model, strict=True)
    except msgspec.ValidationError as exc:
        raise BadRequest(validation_detail(str(exc)), title="Invalid request") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", title="Invalid request") from None
    except UnicodeDecodeError as exc:
        # msgspec checks the encoding of a string only as it decodes it.
        raise BadRequest(
            f"The body is not valid JSON: it is not UTF-8 ({exc.reason}).", title="Invalid request"
        ) from None
