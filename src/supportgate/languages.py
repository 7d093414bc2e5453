"""Language tags: the one normaliser, and the shapes each part of the API accepts.

Readers, sites and mails all name languages by BCP 47 tags. :func:`normalise_language_tag` is
the one way a tag is read (``de-at`` → ``de-AT``). The four shapes below are part of the published
API contract, so they stay as they were published; each says why it is narrower or wider than
a plain tag.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

import msgspec

__all__ = [
    "LANGUAGE_QUERY_PATTERN",
    "EmailLanguageTag",
    "LanguageTag",
    "MessagesLanguageTag",
    "normalise_language_tag",
]

_TAG = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z0-9]{1,8}))*$")

LanguageTag = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$",
        max_length=35,
        description="A BCP 47 language tag such as en or de-AT.",
        examples=["de-AT"],
    ),
]
"""A reader's language as a page reports it (decide's ``lang``): any BCP 47 tag of up to four parts."""

LANGUAGE_QUERY_PATTERN: Final = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$"
"""A reader's language in a query string (``?lang=``): also with ``_``, as browsers' locales come."""

EmailLanguageTag = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z]{2}(-[A-Za-z]{2})?$", description="Language of the email.")
]
"""The language of a sign-in mail: a language and an optional region, as mail templates are kept."""

MessagesLanguageTag = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z]{2}(-[A-Z]{2})?$", description="A locale such as en or pt-BR.")
]
"""A key of a site's own wall messages: exactly the form :func:`normalise_language_tag` gives."""


def normalise_language_tag(tag: str) -> str | None:
    """``de-at`` → ``de-AT``: a language and, if the next part is a region, the region; None if not a tag."""
    if _TAG.fullmatch(tag) is None:
        return None
    parts = re.split(r"[-_]", tag)
    language = parts[0].lower()
    if len(parts) > 1 and len(parts[1]) == 2 and parts[1].isalpha():
        return f"{language}-{parts[1].upper()}"
    return language
