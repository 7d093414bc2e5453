"""Strict request bodies: msgspec decodes them with no type coercion, naming the bad field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar.dto import MsgspecDTO
from litestar.openapi.spec import Reference, Schema
from litestar.typing import FieldDefinition

from supportgate.errors import BadRequest, validation_detail

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

__all__ = ["Body", "decode_strict"]

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
        """Decode ``value`` into the DTO's model type, or raise BadRequest naming the field."""
        return decode_strict(value, self.model_type)


def decode_strict(value: bytes, model: type[T]) -> T:
    """``value`` as JSON decoded strictly into ``model``; BadRequest naming the bad field."""
    try:
        return msgspec.json.decode(value, type=model, strict=True)
    except msgspec.ValidationError as exc:
        raise BadRequest(validation_detail(str(exc)), title="Invalid request") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", title="Invalid request") from None
