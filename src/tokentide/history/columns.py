"""How values become columns and back: ids, times, cleaned text, stats and details JSON."""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from tokentide.redact import redact, redact_content

__all__ = ["TITLE_CHARS", "answer_details", "make_title", "new_id"]

TITLE_CHARS: Final = 60


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


_CROCKFORD: Final = "0123456789abcdefghjkmnpqrstvwxyz"
_id_lock = threading.Lock()
_last_id: list[int] = [0]


def new_id() -> str:
    """A 16-character id that sorts by creation time: 50 bits of milliseconds since
    1970 and 30 random bits, in lowercase Crockford base32.  Ids made by one process are
    strictly increasing."""
    with _id_lock:
        value = (time.time_ns() // 1_000_000) << 30 | secrets.randbits(30)
        if value <= _last_id[0]:
            value = _last_id[0] + 1
        _last_id[0] = value
    chars = []
    for _ in range(16):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _clean_text(text: str) -> str:
    """``text`` as stored: the keys tide knows and credential shapes masked (a key echoed
    back must never reach the file or an export) and lone surrogates replaced.  Code in
    an answer (``password: str``) is kept: see :func:`tokentide.redact.redact_content`."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return redact_content(text)


def _clean_error(text: str) -> str:
    """An error as stored: every credential shape masked (it quotes a server's body)."""
    return redact(_clean_text(text))


def _stats_json(stats: Mapping[str, float | int | str | None] | None) -> str | None:
    if not stats:
        return None
    clean: dict[str, float | int | str | None] = {}
    for key, value in stats.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        clean[str(key)] = value
    return json.dumps(clean, sort_keys=True)


def json_object(text: str | None) -> dict[str, Any] | None:
    """A stored JSON column read back as an object; None when empty, not JSON or not an
    object (a file edited by hand, written by something else)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _stats_dict(text: str | None) -> dict[str, float | int | str | None]:
    return json_object(text) or {}


def answer_details(
    *,
    tokens: Iterable[tuple[str, float | None]] = (),
    nodes: Iterable[tuple[str, str]] = (),
) -> dict[str, Any] | None:
    """The ``details`` of an answer as :meth:`HistoryStore.finish_answer` takes them and
    :meth:`HistoryStore.load` gives them back: ``{"tokens": [[text, logprob], ...]}``
    when any token has a logprob, ``{"nodes": [[node id, text], ...]}`` for a multi-node
    answer (both keys when both apply); None when neither does.  An answer that called
    tools also has ``"tools"``: one ``{text, calls, results}`` per round (see
    :func:`tokentide.chat.parts.stored_fields`)."""
    details: dict[str, Any] = {}
    token_list = [[text, logprob] for text, logprob in tokens]
    if any(logprob is not None for _, logprob in token_list):
        details["tokens"] = token_list
    node_list = [[node, text] for node, text in nodes]
    if node_list:
        details["nodes"] = node_list
    return details or None


def _is_logprob(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _is_token(item: Sequence[Any]) -> bool:
    """``[text, logprob or None]``."""
    return len(item) == 2 and isinstance(item[0], str) and _is_logprob(item[1])


def _is_node(item: Sequence[Any]) -> bool:
    """``[node id, text]``."""
    return len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], str)


def _finite(value: float | None) -> float | None:
    """A logprob as stored: a finite number, else None (JSON has no infinities)."""
    return float(value) if value is not None and math.isfinite(value) else None


def _pairs(value: Any, wrong: str) -> list[tuple[Any, ...]]:
    if isinstance(value, str | bytes):
        raise ValueError(wrong)
    try:
        return [tuple(item) for item in value or ()]
    except TypeError:
        raise ValueError(wrong) from None


def _details_value(details: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Check and normalise ``details`` for storing (texts UTF-8 clean, logprobs finite
    or None); raise ValueError for anything but the documented shape."""
    if not details:
        return None
    unknown = set(details) - {"tokens", "nodes", "tools"}
    if unknown:
        raise ValueError(
            f"answer details hold 'tokens', 'nodes' and 'tools', not {sorted(unknown)!r}"
        )
    clean: dict[str, Any] = {}
    wrong_tokens = "answer details: 'tokens' is a list of [text, logprob or None]"
    tokens = _pairs(details.get("tokens"), wrong_tokens)
    if not all(_is_token(t) for t in tokens):
        raise ValueError(wrong_tokens)
    if tokens:
        clean["tokens"] = [[_clean_text(text), _finite(logprob)] for text, logprob in tokens]
    wrong_nodes = "answer details: 'nodes' is a list of [node id, text]"
    nodes = _pairs(details.get("nodes"), wrong_nodes)
    if not all(_is_node(n) for n in nodes):
        raise ValueError(wrong_nodes)
    if nodes:
        clean["nodes"] = [[_clean_text(node), _clean_text(text)] for node, text in nodes]
    rounds = details.get("tools") or []
    if not isinstance(rounds, list) or not all(_is_round(r) for r in rounds):
        raise ValueError(
            "answer details: 'tools' is a list of {text, calls: [{id, name, arguments}], "
            "results: [{call_id, name, content, is_error}]}"
        )
    if rounds:
        clean["tools"] = [_clean_round(r) for r in rounds]
    return clean or None


_CALL_KEYS: Final = {"id": (str, type(None)), "name": (str,), "arguments": (str,)}
_RESULT_KEYS: Final = {
    "call_id": (str, type(None)), "name": (str,), "content": (str,), "is_error": (bool,)
}  # fmt: skip


def _is_record(item: Any, keys: Mapping[str, tuple[type, ...]]) -> bool:
    return (
        isinstance(item, Mapping)
        and set(item) == set(keys)
        and all(isinstance(item[key], kinds) for key, kinds in keys.items())
    )


def _is_round(item: Any) -> bool:
    """One model → tools round: the text before the calls, the calls, their results."""
    return (
        isinstance(item, Mapping)
        and set(item) == {"text", "calls", "results"}
        and isinstance(item["text"], str)
        and isinstance(item["calls"], list)
        and all(_is_record(c, _CALL_KEYS) for c in item["calls"])
        and isinstance(item["results"], list)
        and all(_is_record(r, _RESULT_KEYS) for r in item["results"])
    )


def _clean_round(item: Mapping[str, Any]) -> dict[str, Any]:
    def clean(record: Mapping[str, Any]) -> dict[str, Any]:
        return {k: _clean_text(v) if isinstance(v, str) else v for k, v in record.items()}

    return {
        "text": _clean_text(item["text"]),
        "calls": [clean(c) for c in item["calls"]],
        "results": [clean(r) for r in item["results"]],
    }


def _details_json(details: Mapping[str, Any] | None) -> str | None:
    clean = _details_value(details)
    if clean is None:
        return None
    return json.dumps(clean, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _details_dict(text: str | None) -> dict[str, Any] | None:
    """Stored details read back.  Whatever does not have the documented shape (a file
    edited by hand, written by something else) is left out rather than failing the
    load; None when nothing usable remains."""
    value = json_object(text)
    if value is None:
        return None
    details: dict[str, Any] = {}
    tokens = value.get("tokens")
    if isinstance(tokens, list) and all(isinstance(t, list) and _is_token(t) for t in tokens):
        details["tokens"] = [[text, _finite(logprob)] for text, logprob in tokens]
    nodes = value.get("nodes")
    if isinstance(nodes, list) and all(isinstance(n, list) and _is_node(n) for n in nodes):
        details["nodes"] = [[node, text] for node, text in nodes]
    rounds = value.get("tools")
    if isinstance(rounds, list) and rounds and all(_is_round(r) for r in rounds):
        details["tools"] = rounds
    return details or None


def _like_pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def make_title(text: str, limit: int = TITLE_CHARS) -> str:
    """A conversation title from a prompt: its first non-blank line, trimmed, at most
    ``limit`` characters (cut with ``…``).  The stored title keeps the original
    characters; displays sanitise it."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
