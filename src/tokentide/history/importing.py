"""Reading a JSON export back: parse and check the whole file, giving typed frozen values.

Nothing here touches the database: :func:`parse_export` either returns an
:class:`ImportedConversation` that the store can write as it is
(:meth:`~tokentide.history.branches.BranchWrites.import_conversation`), or raises
:class:`ExportFileError` saying what is wrong and where: a JSON syntax error with its
line and column, a wrong field with its JSON path (``messages[3].parent_id``), a parent
that is not an earlier message of the file, an unknown format or version.

Every version tokentide wrote is read (see :data:`tokentide.history.export.EXPORT_VERSION`):

* 1: messages (a straight line, root first) without ``reasoning``, ``details`` or
  ``parent_id``; each follows the one before it;
* 2: the same, with ``reasoning`` and ``details``;
* 3: ``parent_id`` per message (the active branch only), ``active_leaf``, ``settings``;
* 4: every message of every branch, each with its ``parts``.

A field a version did not have may be missing; a field no version had is refused (it
would be dropped without a word).  Missing optional fields read as null (``stats``: {},
``status``: complete, times: the time of the import).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final

from tokentide.errors import HistoryError
from tokentide.history.columns import _details_value
from tokentide.history.settings import ConversationSettings

__all__ = [
    "EXPORT_FORMAT",
    "PART_TYPES",
    "READ_VERSIONS",
    "ExportFileError",
    "ImportedConversation",
    "ImportedMessage",
    "parse_export",
]

EXPORT_FORMAT: Final = "tokentide-conversation"
READ_VERSIONS: Final = (1, 2, 3, 4)
"""The export versions this tokentide reads (the newest is the one it writes)."""

PART_TYPES: Final = ("reasoning", "text", "tokens", "nodes", "tools")
"""What a message can hold, in the order an export lists them (tool calls, tool results
and attachments will be added here)."""

_ROLES: Final = ("system", "user", "assistant")
_STATUSES: Final = ("complete", "streaming", "stopped", "error", "incomplete")
_ID: Final = re.compile(r"[0-9a-hjkmnp-tv-z]{16}")
"""The shape of an id the store makes (:func:`~tokentide.history.columns.new_id`)."""

_TOP_FIELDS: Final = {
    "format", "version", "id", "title", "profile", "created_at", "updated_at",
    "active_leaf", "settings", "messages",
}  # fmt: skip
_MESSAGE_FIELDS: Final = {
    "id", "role", "content", "status", "finish_reason", "error", "stats", "profile",
    "model", "created_at", "updated_at", "reasoning", "details", "parent_id", "parts",
}  # fmt: skip
_SINCE: Final = {"reasoning": 2, "details": 2, "parent_id": 3, "parts": 4,
                 "active_leaf": 3, "settings": 3}  # fmt: skip
"""The version that added a field (an older file holding it is refused)."""


class ExportFileError(HistoryError):
    """A file that is not a tokentide export this version can read (exit 2).
    ``where`` is the JSON path of the wrong field ("" for the file as a whole)."""

    exit_code = 2

    def __init__(self, message: str, *, where: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.where = where


@dataclass(frozen=True, slots=True)
class ImportedMessage:
    """One message of the file.  ``key`` is its id in the file and ``parent`` its
    parent's (an earlier message of the file, or None); the store gives new ids."""

    key: int
    parent: int | None
    role: str
    content: str
    status: str
    finish_reason: str | None
    error: str | None
    stats: Mapping[str, float | int | str | None]
    reasoning: str | None
    details: Mapping[str, Any] | None
    profile: str | None
    model: str | None
    created_at: datetime
    updated_at: datetime
    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImportedConversation:
    """A checked export.  ``id`` is the file's conversation id when it has the shape of a
    store id (else None: the store makes one); ``active_leaf`` is a message key."""

    version: int
    id: str | None
    title: str
    profile: str | None
    created_at: datetime
    updated_at: datetime
    active_leaf: int | None
    settings: ConversationSettings | None
    messages: tuple[ImportedMessage, ...]


def parse_export(text: str, *, source: str = "the file") -> ImportedConversation:
    """Check a whole JSON export and return it as values; :class:`ExportFileError`
    naming ``source`` and the place for anything wrong."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise ExportFileError(
            f"{source} is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}.",
            hint="Is it a file written by `tide history export ID -f json`?",
        ) from None
    except ValueError as error:  # NaN or Infinity
        raise ExportFileError(f"{source} is not valid JSON: {error}.") from None
    except RecursionError:
        raise ExportFileError(
            f"{source} nests lists or objects too deeply to be a tokentide export."
        ) from None
    return _Reader(source).conversation(data)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _kind(value: object) -> str:
    """What a JSON value is, in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 30 else value[:29] + "…"
        return f"the text {shown!r}"
    return "a list" if isinstance(value, list) else "an object"


class _Reader:
    """The checks, with the file's name for every message."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.now = datetime.now(UTC)

    def fail(self, where: str, what: str) -> ExportFileError:
        return ExportFileError(
            f"{self.source}: {where}: {what}.",
            where=where,
            hint="Fix that field (or export the conversation again); nothing was imported.",
        )

    def wrong(self, where: str, wanted: str, value: object) -> ExportFileError:
        return self.fail(where, f"expected {wanted}, found {_kind(value)}")

    # -- field readers -------------------------------------------------------------------

    def text(self, obj: Mapping[str, Any], key: str, where: str, default: str = "") -> str:
        value = obj.get(key, default)
        if not isinstance(value, str):
            raise self.wrong(where, "text", value)
        return value

    def optional_text(self, obj: Mapping[str, Any], key: str, where: str) -> str | None:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise self.wrong(where, "text or null", value)
        return value

    def optional_id(self, obj: Mapping[str, Any], key: str, where: str) -> int | None:
        value = obj.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.wrong(where, "a message id (a whole number) or null", value)
        return value

    def time(self, obj: Mapping[str, Any], key: str, where: str) -> datetime:
        if key not in obj:
            return self.now
        value = obj[key]
        if not isinstance(value, str):
            raise self.wrong(where, "a time (ISO 8601 text)", value)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.wrong(where, "a time (ISO 8601 text)", value) from None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    def fields_of(
        self, obj: Mapping[str, Any], allowed: set[str], where: str, version: int
    ) -> None:
        for key in obj:
            if key not in allowed or _SINCE.get(key, 1) > version:
                prefix = f"{where}." if where else ""
                raise self.fail(f"{prefix}{key}", f"not a field of a version {version} export")

    # -- the conversation ----------------------------------------------------------------

    def conversation(self, data: object) -> ImportedConversation:
        if not isinstance(data, dict):
            raise ExportFileError(
                f"{self.source} is not a tokentide conversation export: it holds "
                f"{_kind(data)}, not an object.",
                hint="`tide history export ID -f json` writes the files `import` reads.",
            )
        if data.get("format") != EXPORT_FORMAT:
            found = "no format" if "format" not in data else _kind(data["format"])
            raise ExportFileError(
                f"{self.source} is not a tokentide conversation export (format: {found}; "
                f"expected {EXPORT_FORMAT!r}).",
                where="format",
                hint="`tide history export ID -f json` writes the files `import` reads.",
            )
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise self.wrong("version", "a whole number", version)
        if version not in READ_VERSIONS:
            newest = READ_VERSIONS[-1]
            raise ExportFileError(
                f"{self.source} is a version {version} export; this tokentide reads "
                f"versions {READ_VERSIONS[0]} to {newest}.",
                where="version",
                hint="Upgrade tokentide to import it." if version > newest else None,
            )
        self.fields_of(data, _TOP_FIELDS, "", version)
        raw_id = data.get("id")
        if raw_id is not None and not isinstance(raw_id, str):
            raise self.wrong("id", "text", raw_id)
        raw_messages = data.get("messages")
        if not isinstance(raw_messages, list):
            raise self.wrong("messages", "a list of messages", raw_messages)
        messages: list[ImportedMessage] = []
        keys: set[int] = set()
        for index, raw in enumerate(raw_messages):
            previous = messages[-1].key if messages else None
            message = self.message(raw, f"messages[{index}]", version, previous, keys)
            keys.add(message.key)
            messages.append(message)
        leaf = self.optional_id(data, "active_leaf", "active_leaf")
        if leaf is not None and leaf not in keys:
            raise self.fail("active_leaf", f"names message {leaf}, which the file does not hold")
        if leaf is None and messages:
            leaf = messages[-1].key
        return ImportedConversation(
            version=version,
            id=raw_id if raw_id is not None and _ID.fullmatch(raw_id) else None,
            title=self.text(data, "title", "title"),
            profile=self.optional_text(data, "profile", "profile"),
            created_at=self.time(data, "created_at", "created_at"),
            updated_at=self.time(data, "updated_at", "updated_at"),
            active_leaf=leaf,
            settings=self.settings(data.get("settings")),
            messages=tuple(messages),
        )

    def settings(self, value: object) -> ConversationSettings | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.wrong("settings", "an object or null", value)
        known = {f.name for f in fields(ConversationSettings)}
        for key, item in value.items():
            where = f"settings.{key}"
            if key not in known:
                raise self.fail(
                    where, "not a conversation setting (" + ", ".join(sorted(known)) + ")"
                )
            try:
                ConversationSettings(**{key: item})
            except ValueError as error:
                reason = str(error).removeprefix("conversation settings: ")
                raise self.fail(where, f"{reason}") from None
        settings = ConversationSettings(**value)
        return None if settings.is_empty else settings

    # -- one message ---------------------------------------------------------------------

    def message(
        self, raw: object, where: str, version: int, previous: int | None, keys: set[int]
    ) -> ImportedMessage:
        if not isinstance(raw, dict):
            raise self.wrong(where, "a message (an object)", raw)
        self.fields_of(raw, _MESSAGE_FIELDS, where, version)
        for required in ("id", "role", "content") + (("parent_id",) if version >= 3 else ()):
            if required not in raw:
                raise self.fail(where, f"the field {required!r} is missing")
        key = raw["id"]
        if isinstance(key, bool) or not isinstance(key, int):
            raise self.wrong(f"{where}.id", "a message id (a whole number)", key)
        if key in keys:
            raise self.fail(f"{where}.id", f"message {key} appears twice in the file")
        if version >= 3:
            parent = self.optional_id(raw, "parent_id", f"{where}.parent_id")
            if parent is not None and parent not in keys:
                raise self.fail(
                    f"{where}.parent_id",
                    f"{parent} is not the id of an earlier message of the file",
                )
        else:
            parent = previous  # versions 1 and 2: one straight line
        role = raw["role"]
        if role not in _ROLES:
            raise self.wrong(f"{where}.role", "system, user or assistant", role)
        status = raw.get("status", "complete")
        if status not in _STATUSES:
            raise self.wrong(f"{where}.status", "one of " + ", ".join(_STATUSES), status)
        return ImportedMessage(
            key=key,
            parent=parent,
            role=role,
            content=self.text(raw, "content", f"{where}.content"),
            status=status,
            finish_reason=self.optional_text(raw, "finish_reason", f"{where}.finish_reason"),
            error=self.optional_text(raw, "error", f"{where}.error"),
            stats=self.stats(raw.get("stats"), f"{where}.stats"),
            reasoning=self.optional_text(raw, "reasoning", f"{where}.reasoning") or None,
            details=self.details(raw.get("details"), f"{where}.details"),
            profile=self.optional_text(raw, "profile", f"{where}.profile"),
            model=self.optional_text(raw, "model", f"{where}.model"),
            created_at=self.time(raw, "created_at", f"{where}.created_at"),
            updated_at=self.time(raw, "updated_at", f"{where}.updated_at"),
            parts=self.parts(raw.get("parts", []), f"{where}.parts"),
        )

    def stats(self, value: object, where: str) -> dict[str, float | int | str | None]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.wrong(where, "an object or null", value)
        for key, item in value.items():
            ok = item is None or isinstance(item, str) or (
                isinstance(item, int | float) and not isinstance(item, bool)
                and math.isfinite(item)
            )  # fmt: skip
            if not ok:
                raise self.wrong(f"{where}.{key}", "a number, text or null", item)
        return dict(value)

    def details(self, value: object, where: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.wrong(where, "an object or null", value)
        for key in ("tokens", "nodes"):
            items = value.get(key, [])
            if not isinstance(items, list):
                raise self.wrong(f"{where}.{key}", "a list", items)
            for index, item in enumerate(items):
                if not isinstance(item, list):
                    raise self.wrong(f"{where}.{key}[{index}]", "a list of two items", item)
        try:
            _details_value(value)
        except ValueError as error:
            raise self.fail(where, str(error).removeprefix("answer details: ")) from None
        return dict(value) or None

    def parts(self, value: object, where: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.wrong(where, "a list of part types", value)
        for index, part in enumerate(value):
            if part not in PART_TYPES:
                raise self.fail(
                    f"{where}[{index}]",
                    f"{_kind(part)} is not a part this tokentide stores ("
                    + ", ".join(PART_TYPES) + ")",
                )  # fmt: skip
        return tuple(value)
