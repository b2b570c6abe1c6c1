"""Secrets never leave tide: :func:`redact` masks every key tide knows and anything shaped
like a credential, wherever text leaves the program (screen, stdout/stderr, history,
exports, copies, the debug log).

What it masks, in order:

1. every value registered with :func:`register_secret`: the backend registry registers
   each profile's resolved API key and the values of its secret-named headers, params
   and gRPC metadata;
2. values of credential headers and keywords (``Authorization: …``, ``api_key='…'``,
   ``"x-api-key": "…"``) in the shapes httpx, httpcore, JSON and Python reprs print them;
3. credential query values (``?key=…``, ``&access_token=…``);
4. ``Bearer …`` / ``Basic …`` / ``Token …`` credentials;
5. common key shapes (``sk-…``, ``hf_…``, ``AIza…``, JWTs …).

Lives in the domain (no UI, no logging) so :mod:`tokentide.errors` can apply it to every
message at construction.
"""

from __future__ import annotations

import re
import threading
from typing import Final

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "redact",
    "redact_content",
    "register_secret",
]

MIN_SECRET_LENGTH: Final = 8
"""Shorter registered values are ignored: redacting ``abc`` everywhere would ruin the log."""

MASK: Final = "***"

_HEADER_NAMES: Final = (
    r"proxy-authorization|authorization|x-api-key|api[-_]?key|set-cookie|cookie"
    r"|access[-_]token|refresh[-_]token|client[-_]secret|password"
)
# name, then a separator as it appears in a header line (``Authorization: x``), a dict or
# JSON (``'cookie': 'x'``) or a bytes/str tuple (``(b'authorization', b'x')``), then the
# value up to a quote or the end of the line.
_HEADER_VALUE: Final = re.compile(
    rf"(?i)(?P<key>\b(?:{_HEADER_NAMES})\b)"
    r"(?P<sep>['\"]?\s*:\s*(?-i:b)?['\"]?|['\"]\s*,\s*(?-i:b)?['\"])"
    r"(?P<value>[^'\"\r\n]+)"
)
# A keyword (``api_key='x'``, ``password=x``): the value ends at a space, quote or
# separator, so the rest of a message survives.
_KEYWORD_VALUE: Final = re.compile(
    rf"(?i)(?P<key>\b(?:{_HEADER_NAMES})\b)(?P<sep>\s*=\s*['\"]?)"
    r"(?!\*\*\*)(?P<value>[^\s'\"&,;)\]}>]+)"
)
# ``key=value`` in a URL query (after ``?`` or ``&``); the value runs to the next ``&``,
# quote, space or the end.  Only in a query: ``sorted(xs, key=len)`` in an answer stays.
_QUERY_VALUE: Final = re.compile(
    r"(?i)(?<=[?&])(?P<key>key|token|api[-_]?key|access[-_]token|auth[-_]token|refresh[-_]token"
    r"|id[-_]token|client[-_]secret|secret|password|passwd|sig|signature)"
    r"=(?!\*\*\*)[^&\s'\"<>]+"
)
# ``Bearer <credential>``: the credential has a digit, an upper-case letter after its
# first character, or 20+ characters, so prose ("use a Bearer token", "first-token
# deadline") is left alone.
_CREDENTIAL: Final = re.compile(
    r"\b(?P<scheme>(?i:bearer|basic)|Token)\s+"
    r"(?=[A-Za-z0-9._~+/=-]*[0-9]|[A-Za-z0-9._~+/=-]+[A-Z]|[A-Za-z0-9._~+/=-]{20})"
    r"[A-Za-z0-9._~+/=-]{6,}"
)
_KEY_SHAPES: Final = re.compile(
    r"\b(?:"
    r"sk-[A-Za-z0-9_-]{8,}"  # OpenAI (sk-, sk-proj-), Anthropic (sk-ant-), many proxies
    r"|hf_[A-Za-z0-9]{16,}"  # Hugging Face
    r"|gsk_[A-Za-z0-9]{16,}"  # Groq
    r"|xai-[A-Za-z0-9]{16,}"  # xAI
    r"|AIza[0-9A-Za-z_-]{30,}"  # Google
    r"|gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"  # JWT
    r")"
)

_CREDENTIAL_HINTS: Final = ("bearer", "basic", "token")
"""What every match of :data:`_CREDENTIAL` contains, lower-cased: a text with none of
them is not scanned (a lower-cased copy and three C scans: ~11 ms for 5 MB)."""
_KEY_HINTS: Final = ("sk-", "hf_", "gsk_", "xai-", "AIza", "ghp_", "gho_", "ghu_", "ghs_",
                     "ghr_", "eyJ")  # fmt: skip
"""The prefixes of :data:`_KEY_SHAPES`.  A substring test is a C scan (~1 ms for 5 MB);
the regex tries every alternative at every word boundary (~130 ms): a long attachment
without any of these is left as it is at once."""


def _masked_shapes(text: str) -> str:
    """Credentials and key shapes masked (each pattern only where its hint occurs)."""
    lowered = text.lower()
    if any(hint in lowered for hint in _CREDENTIAL_HINTS):
        text = _CREDENTIAL.sub(lambda m: f"{m['scheme']} {MASK}", text)
    if any(hint in text for hint in _KEY_HINTS):
        text = _KEY_SHAPES.sub(MASK, text)
    return text


_secrets_lock = threading.Lock()
_secrets: set[str] = set()
_secrets_re: re.Pattern[str] | None = None


def register_secret(value: str) -> None:
    """Make :func:`redact` replace ``value`` wherever it appears.

    The config layer calls this with every API key it resolves.  Values shorter than
    :data:`MIN_SECRET_LENGTH` (after stripping whitespace) are ignored.
    """
    global _secrets_re
    value = value.strip()
    if len(value) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first
        _secrets_re = re.compile("|".join(re.escape(s) for s in ordered))


def _forget_secrets() -> None:
    """Empty the registry (tests)."""
    global _secrets_re
    with _secrets_lock:
        _secrets.clear()
        _secrets_re = None


def _mask_header(m: re.Match[str]) -> str:
    return f"{m['key']}{m['sep']}{MASK}"


def redact_content(text: str) -> str:
    """What a conversation stores: registered secrets, ``Bearer …`` credentials and key
    shapes masked, but not ``password: …`` or ``api_key=…`` keywords, which are everyday
    code in an answer (``def login(user, password: str)`` must be kept as written)."""
    pattern = _secrets_re
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _masked_shapes(text)


def redact(text: str) -> str:
    """``text`` with registered secrets, credential headers and key-shaped strings masked."""
    pattern = _secrets_re
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _HEADER_VALUE.sub(_mask_header, text)
    text = _KEYWORD_VALUE.sub(_mask_header, text)
    text = _QUERY_VALUE.sub(lambda m: f"{m['key']}={MASK}", text)
    return _masked_shapes(text)
