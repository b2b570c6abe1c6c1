"""Conversations as text: JSON (exact), Markdown (readable) and the ``tide history show``
view (sanitised for a terminal).  Nothing here can contain an API key: the store never
holds one."""

from __future__ import annotations

import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tokentide.history.store import Conversation, StoredMessage

__all__ = [
    "EXPORT_VERSION",
    "atomic_write",
    "default_export_path",
    "message_parts",
    "to_dict",
    "to_json",
    "to_markdown",
    "to_text",
]

EXPORT_VERSION = 4
"""Bumped when the JSON export's shape changes (:mod:`tokentide.history.importing` reads
every version).  2: every message has ``reasoning`` (text or null) and ``details`` (null
or ``{"tokens": [[text, logprob or null], ...], "nodes": [[node id, text], ...]}``,
either key optional).  3: every message has ``parent_id`` (null for a root); the
conversation has ``active_leaf`` (the message at the tip of the branch on screen, or
null) and ``settings`` (null or an object of the fields that are set: ``system_prompt``,
``profile``, ``model``, ``temperature``, ``max_tokens``, ``top_p``, ``seed``); the
messages are the active branch, root first.  4: the messages are the whole tree (every
branch, a parent always before its children), each with ``parts``: what it holds, in
the order of :data:`~tokentide.history.importing.PART_TYPES` (``"reasoning"``,
``"text"``, ``"tokens"``, ``"nodes"``)."""

_EXTENSIONS = {"md": ".md", "markdown": ".md", "json": ".json"}
_SLUG_CHARS = 40


def _iso(conversation_or_message: Conversation | StoredMessage, attr: str) -> str:
    value = getattr(conversation_or_message, attr)
    return str(value.isoformat())


def message_parts(message: StoredMessage) -> list[str]:
    """What a message holds, as the export's ``parts`` names it: ``"reasoning"``,
    ``"text"`` (a non-empty content), ``"tokens"`` (per-token logprobs), ``"nodes"``
    (a multi-node answer's texts), ``"tools"`` (the tools it called and what they
    gave back), in that order."""
    details = message.details.as_dict() if message.details else {}
    parts = ["reasoning"] if message.reasoning else []
    if message.content:
        parts.append("text")
    parts += [key for key in ("tokens", "nodes", "tools") if details.get(key)]
    return parts


def _message_dict(m: StoredMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "parent_id": m.parent_id,
        "role": m.role,
        "content": m.content,
        "parts": message_parts(m),
        "status": m.status,
        "finish_reason": m.finish_reason,
        "error": m.error,
        "stats": m.stats,
        "reasoning": m.reasoning,
        "details": m.details.as_dict() if m.details else None,
        "profile": m.profile,
        "model": m.model,
        "created_at": _iso(m, "created_at"),
        "updated_at": _iso(m, "updated_at"),
    }


def to_dict(
    conversation: Conversation, *, messages: Sequence[StoredMessage] | None = None
) -> dict[str, Any]:
    """The JSON export as a dict.  ``messages``: the whole tree
    (:meth:`~tokentide.history.tree.MessageTree.messages`, what ``tide history export``
    writes); default the active branch the conversation was loaded with."""
    chosen = conversation.messages if messages is None else messages
    return {
        "format": "tokentide-conversation",
        "version": EXPORT_VERSION,
        "id": conversation.id,
        "title": conversation.title,
        "profile": conversation.profile,
        "created_at": _iso(conversation, "created_at"),
        "updated_at": _iso(conversation, "updated_at"),
        "active_leaf": conversation.active_leaf,
        "settings": None if conversation.settings is None else conversation.settings.as_dict(),
        "messages": [_message_dict(m) for m in chosen],
    }


def to_json(
    conversation: Conversation,
    *,
    messages: Sequence[StoredMessage] | None = None,
    ascii_only: bool = False,
) -> str:
    """The conversation as JSON (:func:`to_dict`); ``json.loads`` gives back every text
    exactly.  ``ascii_only`` escapes every non-ASCII character (safe to print on a
    terminal)."""
    document = to_dict(conversation, messages=messages)
    return json.dumps(document, ensure_ascii=ascii_only, indent=2) + "\n"


def default_export_path(conversation_title: str, conversation_id: str, fmt: str) -> Path:
    """Where the app offers to export a conversation: ``<data dir>/exports/<slug of the
    title>-<first 8 characters of the id>.md`` (or ``.json``).  The slug keeps ASCII
    letters and digits (accents dropped), lowercase, joined by ``-``, at most 40
    characters; "conversation" when nothing is left.  Nothing is created here."""
    from tokentide.config.paths import data_dir

    try:
        extension = _EXTENSIONS[fmt.lower()]
    except KeyError:
        raise ValueError(f"an export is md or json, not {fmt!r}") from None
    ascii_title = unicodedata.normalize("NFKD", conversation_title)
    words = re.findall(r"[a-z0-9]+", ascii_title.encode("ascii", "ignore").decode().lower())
    slug = "-".join(words)[:_SLUG_CHARS].strip("-") or "conversation"
    short_id = "".join(re.findall(r"[a-z0-9]", conversation_id.lower()))[:8] or "noid"
    return data_dir() / "exports" / f"{slug}-{short_id}{extension}"


def _heading(message: StoredMessage) -> str:
    who = {"user": "You", "assistant": "Assistant", "system": "System"}.get(
        message.role, message.role
    )
    if message.role == "assistant" and (message.model or message.profile):
        who += f" ({message.model or message.profile})"
    if message.status != "complete":
        who += f" [{message.status}]"
    return who


def _fence(text: str) -> str:
    """A backtick fence longer than any run of backticks in ``text``."""
    longest = run = 0
    for c in text:
        run = run + 1 if c == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _quote(text: str) -> list[str]:
    """``text`` as the lines of a Markdown block quote."""
    return [f"> {line}" if line else ">" for line in text.split("\n")]


def to_markdown(conversation: Conversation) -> str:
    """The conversation as a readable Markdown document (original text, unsanitised:
    for files, not for terminals).  An answer's reasoning comes first, quoted under
    "Reasoning"; per-token details are only in the JSON export."""
    lines = [f"# {conversation.title or 'Untitled conversation'}", ""]
    lines.append(f"- id: `{conversation.id}`")
    if conversation.profile:
        lines.append(f"- profile: {conversation.profile}")
    lines.append(f"- created: {_iso(conversation, 'created_at')}")
    lines.append(f"- updated: {_iso(conversation, 'updated_at')}")
    for message in conversation.messages:
        lines += ["", f"## {_heading(message)}", ""]
        if message.reasoning:
            lines += ["> **Reasoning**", ">", *_quote(message.reasoning.rstrip("\n")), ""]
        if message.role == "system":
            fence = _fence(message.content)
            lines += [fence, message.content, fence]
        elif message.details is not None and message.details.tools:
            lines += _tool_rounds(message.content, message.details.tools)
        else:
            lines.append(message.content)
        if message.error:
            lines += ["", f"> Error: {' '.join(message.error.split())}"]
    return "\n".join(lines) + "\n"


def _tool_rounds(content: str, rounds: Sequence[Mapping[str, Any]]) -> list[str]:
    """An answer that called tools: each round's text, then its calls and results as a
    quote (the whole result, fenced), then the text after the last round."""
    lines: list[str] = []
    said = 0
    for stored in rounds:
        if stored["text"]:
            lines += [stored["text"], ""]
            said += len(stored["text"])
        results = {r["call_id"]: r for r in stored["results"] if r["call_id"] is not None}
        for index, call in enumerate(stored["calls"]):
            result = results.get(call["id"]) if call["id"] is not None else None
            if result is None and call["id"] is None and index < len(stored["results"]):
                result = stored["results"][index]
            arguments = call["arguments"]
            fence = _fence(arguments)
            lines += [f"> **Tool call** {' '.join(call['name'].split())}", ">",
                      *_quote(f"{fence}json\n{arguments}\n{fence}")]  # fmt: skip
            if result is not None:
                body = result["content"]
                fence = _fence(body)
                what = "error" if result["is_error"] else "result"
                lines += [">", f"> {what}:", *_quote(f"{fence}\n{body}\n{fence}")]
            lines.append("")
    rest = content
    for stored in rounds:  # the text after the rounds (content holds every round's text)
        if stored["text"] and rest.startswith(stored["text"]):
            rest = rest[len(stored["text"]) :].lstrip("\n")
    if rest:
        lines.append(rest)
    return lines


def to_text(conversation: Conversation) -> str:
    """The ``tide history show`` view, sanitised for a terminal."""
    from tokentide.sanitize import sanitize, sanitize_title

    title = sanitize_title(conversation.title or "Untitled conversation", limit=100)
    out = [title, f"{conversation.id} · {conversation.created_at:%Y-%m-%d %H:%M} UTC"]
    if conversation.profile:
        out[-1] += f" · profile {sanitize_title(conversation.profile, limit=40)}"
    out += _settings_lines(conversation)
    for message in conversation.messages:
        out += ["", f"── {sanitize_title(_heading(message), limit=100)}"]
        if message.reasoning:
            reasoning = sanitize(message.reasoning).rstrip("\n")
            out += ["Reasoning:", *(f"  │ {line}" for line in reasoning.split("\n")), ""]
        out.append(sanitize(message.content).rstrip("\n"))
        if message.error:
            out.append(f"(error: {sanitize_title(message.error, limit=300)})")
    return "\n".join(out) + "\n"


_SETTING_NAMES = {
    "profile": "profile",
    "model": "model",
    "temperature": "temperature",
    "max_tokens": "max tokens",
    "top_p": "top_p",
    "seed": "seed",
}


def _settings_lines(conversation: Conversation) -> list[str]:
    """The conversation's own settings for ``tide history show`` (none: no lines)."""
    from tokentide.sanitize import sanitize, sanitize_title

    settings = conversation.settings
    if settings is None:
        return []
    values = settings.as_dict()
    shown = [
        f"{label} {sanitize_title(str(values[key]), limit=100)}"
        for key, label in _SETTING_NAMES.items()
        if key in values
    ]
    lines = ["Settings: " + " · ".join(shown)] if shown else ["Settings:"]
    if settings.system_prompt is not None:
        prompt = sanitize(settings.system_prompt).rstrip("\n")
        lines += ["System prompt:", *(f"  │ {line}" for line in prompt.split("\n"))]
    return lines


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old file or the new one:
    a temporary file in the same directory, fsync, rename, fsync of the directory."""
    path = path.expanduser()
    directory = path.parent if str(path.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dir_fd)
