"""Line numbers of a TOML file's tables and keys, found in one pass over the text.

``tomllib`` gives values, not positions, so error messages that name a line look the
line up here.  The text is scanned once, on the first lookup (only an error needs one), and every
later lookup is a dictionary read: loading stays linear in the file's size (it used to search the whole
text for every key, 93 s for a 1 MB file with 4,300 profiles).

Best effort, like every line number in an error message: dotted keys are indexed under
their first part, inline tables under their key, and lines inside multi-line strings
(``\"\"\"...\"\"\"``, ``'''...'''``) are skipped.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final

__all__ = ["LineIndex"]

_BARE: Final = r"[A-Za-z0-9_-]+"
_QUOTED: Final = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_PART: Final = rf"(?:{_BARE}|{_QUOTED})"
_PATH: Final = rf"{_PART}(?:\s*\.\s*{_PART})*"
_DELIMITERS: Final = ('"""', "'''")

Table = tuple[str, ...]


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """(table header, key, one part of a dotted name): compiled at the first scan, which
    only an error needs."""
    return (
        re.compile(rf"\s*\[\[?\s*({_PATH})\s*\]\]?"),
        re.compile(rf"\s*({_PART})\s*[.=]"),
        re.compile(_PART),
    )


def _unquote(part: str) -> str:
    if part.startswith("'"):
        return part[1:-1]
    if part.startswith('"'):
        import tomllib

        try:
            value = tomllib.loads(f"k = {part}")["k"]
        except tomllib.TOMLDecodeError:
            return part[1:-1]
        return str(value)
    return part


def _parts(path: str) -> Table:
    return tuple(_unquote(match.group(0)) for match in _patterns()[2].finditer(path))


class LineIndex:
    """Where each ``[table]`` header and each ``key =`` line of a TOML text is (1-based)."""

    __slots__ = ("_keys", "_tables", "_text", "scans")

    def __init__(self, text: str) -> None:
        self._text = text
        self._tables: dict[Table, int] | None = None
        self._keys: dict[tuple[Table, str], int] = {}
        self.scans = 0
        """How many times the text has been read (0 or 1)."""

    def line(self, table: str | Table, key: str | None = None) -> int | None:
        """The line of ``[table]`` (``"profiles.a"`` or ``("profiles", "a")``), or of
        ``key`` inside it; the top level is ``()``.  None when not found."""
        if self._tables is None:
            self._tables = self._scan()
        path = tuple(table.split(".")) if isinstance(table, str) else table
        if key is None:
            return self._tables.get(path)
        return self._keys.get((path, key))

    def _scan(self) -> dict[Table, int]:
        self.scans += 1
        header_re, key_re, _ = _patterns()
        tables: dict[Table, int] = {}
        keys = self._keys
        current: Table = ()
        open_string: str | None = None
        for number, line in enumerate(self._text.splitlines(), start=1):
            if open_string is not None:
                if line.count(open_string) % 2:
                    open_string = None
                continue
            if header := header_re.match(line):
                current = _parts(header.group(1))
                tables.setdefault(current, number)
                continue
            if key := key_re.match(line):
                keys.setdefault((current, _unquote(key.group(1))), number)
            for delimiter in _DELIMITERS:
                if delimiter in line:
                    if line.count(delimiter) % 2:
                        open_string = delimiter
                    break
        return tables
