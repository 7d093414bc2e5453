"""``gate.js`` as the gate serves it: minified once, with each site's id and the gate's URL built in.

The source, ``static/gate/gate.js``, is written to be read; :func:`minify` strips it when the
app is imported (a script it refuses stops the start), and each site's copy is kept in both
encodings with its ETag.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from importlib import resources

__all__ = [
    "BAIT_SCRIPT",
    "CONTROL_SCRIPT",
    "Script",
    "accepts_gzip",
    "etag_matches",
    "minify",
    "render_script",
    "script_for",
]

_SITE_PLACEHOLDER = '"__SG_SITE__"'
_GATE_PLACEHOLDER = '"__SG_GATE__"'
CONTROL_SCRIPT = b"window.supportgateControl=true;\n"
"""Detection's control: an innocuous script no filter list blocks."""
BAIT_SCRIPT = b"window.supportgateBait=true;\n"
"""Detection's bait: served at a URL filter lists block."""
_JOINS_AFTER = tuple("{([,;=&|?:")
_JOINS_BEFORE = ("}", ")", "]", ".", "&&", "||", "?", ":")
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
_REGEX_AFTER = frozenset("(,=:[!&|?{};")
"""A ``/`` after one of these (or first on a line) starts a regular expression literal, not a division."""


def minify(source: str) -> str:
    """Drop comment lines, indentation, blank lines and the spaces no token needs; join lines where safe.

    This is a line stripper, not a parser, so it refuses what it cannot handle safely: template
    literals, comments after code, and code after the end of a block comment. Strings and regular
    expression literals are copied as they are; a regular expression right after a keyword
    (``return /x/``) would be taken for a division, so gate.js writes none there.
    """
    if "`" in source:
        raise ValueError("gate.js must not use template literals: the minifier keeps lines intact")
    lines: list[str] = []
    in_comment = False
    for raw in source.splitlines():
        line = raw.strip()
        if in_comment or line.startswith("/*"):
            in_comment = not line.endswith("*/")
            if "*/" in line and not line.endswith("*/"):
                raise ValueError(f"code after a block comment on one line: {line!r}")
            continue
        if not line or line.startswith("//"):
            continue
        if " //" in line:
            raise ValueError(f"a comment after code would swallow a joined line: {line!r}")
        # A line break only matters to ASI; these neighbours cannot end a statement.
        line = _squeeze(line)
        if lines and (lines[-1].endswith(_JOINS_AFTER) or line.startswith(_JOINS_BEFORE)):
            lines[-1] += line
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _squeeze(line: str) -> str:
    """``line`` without the spaces no tokens need, its strings and regular expressions as they are.

    A space stays between two word characters (``var x``), between ``+``/``-`` pairs (``a - -b``)
    and between a digit and a dot (``1 .toFixed``).
    """
    out: list[str] = []
    last = ""
    i = 0
    while i < len(line):
        char = line[i]
        if char in "\"'" or (char == "/" and (not last or last in _REGEX_AFTER)):
            close = _literal_end(line, i)
            out.append(line[i:close])
            last, i = line[close - 1], close
            continue
        if char == " ":
            after = line[i + 1 : i + 2]
            if last and after and _needs_space(last, after):
                out.append(" ")
        else:
            out.append(char)
            last = char
        i += 1
    return "".join(out)


def _needs_space(before: str, after: str) -> bool:
    return (
        (before in _WORD and after in _WORD)
        or (before in "+-" and after in "+-")
        or (before.isdigit() and after == ".")
    )


def _literal_end(line: str, start: int) -> int:
    """The index just past the string or regular expression literal that starts at ``start``."""
    quote, in_class, i = line[start], False, start + 1
    while i < len(line):
        char = line[i]
        if char == "\\":
            i += 2
            continue
        if quote == "/" and char in "[]":
            in_class = char == "["
        elif char == quote and not in_class:
            return i + 1 if quote != "/" else _flags_end(line, i + 1)
        i += 1
    raise ValueError(f"a string or regular expression does not end on its line: {line!r}")


def _flags_end(line: str, i: int) -> int:
    while i < len(line) and line[i].isalpha():
        i += 1
    return i


def _load_script() -> str:
    source = minify(resources.files("supportgate").joinpath("static/gate/gate.js").read_text(encoding="utf-8"))
    if _SITE_PLACEHOLDER not in source or _GATE_PLACEHOLDER not in source:
        raise RuntimeError("gate.js lost its SITE or GATE placeholder")
    return source


# Minified once, when the app is imported: a script the minifier refuses stops the start.
_SCRIPT_SOURCE = _load_script()


class Script:
    """One site's ``gate.js`` in both encodings, each with its ETag."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.gzipped = gzip.compress(body, 9, mtime=0)
        self.etag = _etag(body)
        self.gzipped_etag = _etag(self.gzipped)


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def render_script(site_id: str, gate_url: str) -> bytes:
    """The ``gate.js`` a site's pages load: the minified script with the site id and gate URL built in."""
    return script_for(site_id, gate_url).body


@functools.lru_cache(maxsize=1024)
def script_for(site_id: str, gate_url: str) -> Script:
    """A site's ``gate.js`` in both encodings, made once per site and gate URL."""
    text = _SCRIPT_SOURCE.replace(_SITE_PLACEHOLDER, json.dumps(site_id)).replace(
        _GATE_PLACEHOLDER, json.dumps(gate_url)
    )
    return Script(text.encode())


def accepts_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value takes gzip (not with ``q=0``)."""
    for item in (header or "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip":
            name, _, value = params.strip().partition("=")
            return name.strip().lower() != "q" or value.strip() not in {"0", "0.0", "0.00", "0.000"}
    return False


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (weakly) or ``*``."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags
