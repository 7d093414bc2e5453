"""The wall's built-in words in five languages, and the choice of language for a reader."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from importlib import resources

from supportgate.catalog.policy import Policy
from supportgate.languages import normalise_language_tag

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "Texts", "negotiate_language", "reader_preferences", "texts_for"]

_MAX_PREFERENCES = 20


@dataclass(frozen=True, slots=True)
class Texts:
    """Every string the wall shows, in one language."""

    title: str
    """Heading of the wall."""
    body: str
    """The paragraph under it."""
    recheck: str
    """Button: detect again and decide again."""
    report: str
    """Button: report a false positive."""
    support: str
    """Link to the site's supporter page."""
    signin: str
    """Button: ask the extension to open its sign-in."""
    close: str
    """Accessible name of the nag's close button."""
    checking: str
    """Status while detection runs again."""
    blocked: str
    """Status when an ad blocker is still found."""
    unlocked: str
    """Announced when the wall lifts."""
    thanks: str
    """Status after a false-positive report."""
    signin_opened: str
    """Status when the extension opened its sign-in."""
    no_extension: str
    """Status when no extension answered the sign-in request."""
    install: str
    """Link to the gate's install page, shown when no extension answered."""
    error: str
    """Status when the gate could not be reached."""


DEFAULT_LANGUAGE = "en"


def _load() -> dict[str, Texts]:
    raw = resources.files("supportgate").joinpath("templates/gate/messages.toml").read_text(encoding="utf-8")
    return {language: Texts(**table) for language, table in tomllib.loads(raw).items()}


LANGUAGES: dict[str, Texts] = _load()
"""The built-in texts by language, from ``templates/gate/messages.toml``."""


def reader_preferences(lang: str | None, accept_language: str | None) -> list[str]:
    """The reader's language tags, most wanted first: ``lang``, then ``Accept-Language`` by q-value."""
    wanted: list[tuple[float, int, str]] = []
    for index, item in enumerate((accept_language or "").split(",")[:_MAX_PREFERENCES]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        normal = normalise_language_tag(tag.strip())
        if normal is not None and quality > 0:
            wanted.append((-quality, index, normal))
    tags = [tag for _, _, tag in sorted(wanted)]
    first = normalise_language_tag(lang) if lang else None
    return [first, *tags] if first else tags


def negotiate_language(lang: str | None, accept_language: str | None) -> tuple[str, str]:
    """``(language, tag)``: the first built-in language the reader wants, and the tag that asked for it.

    ``language`` is one of :data:`LANGUAGES`; ``tag`` may be more specific (``de-AT``), so that a
    site's messages for ``de-AT`` reach the readers who asked for it. Nothing wanted gives English.
    """
    for tag in reader_preferences(lang, accept_language):
        language = tag.split("-")[0]
        if language in LANGUAGES:
            return language, tag
    return DEFAULT_LANGUAGE, DEFAULT_LANGUAGE


def texts_for(policy: Policy, language: str, tag: str | None = None) -> Texts:
    """The built-in texts for ``language``, with the title and body the site set for ``tag`` or ``language``."""
    texts = LANGUAGES.get(language, LANGUAGES[DEFAULT_LANGUAGE])
    own = policy.messages.get(tag or language) or policy.messages.get(language)
    if own is None:
        return texts
    return replace(texts, title=own.title, body=own.body)
