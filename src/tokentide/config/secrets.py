"""Which parts of a profile are secrets, and the same values with those parts masked.

Used by ``tide config show`` (print the profile without its secrets) and by the loader
(warn when a file readable by others holds any).  A value is secret when its *name*
says so (``api_key``, ``Authorization``, ``x-api-key``, ``access_token``, ``password``,
...; counters like ``max_tokens`` or ``stop_token_ids`` are not) or when the value looks
like a credential (``Bearer ...``, ``sk-...``); a URL's password and its query values
with secret names are secrets too.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from tokentide.config.model import Profile

__all__ = [
    "MASK",
    "is_secret_name",
    "looks_secret",
    "mask_data",
    "mask_url",
    "permission_warning",
    "secret_fields",
]

MASK: Final = "***"

_WORDS: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SECRET_WORDS: Final = frozenset(
    {
        "key", "apikey", "token", "secret", "password", "passwd", "pwd", "passphrase",
        "auth", "authorization", "credential", "credentials", "cookie", "bearer",
        "signature", "sig", "session",
    }
)  # fmt: skip
_SECRET_ENDINGS: Final = ("key", "token", "secret", "password")
_COUNTER_WORDS: Final = frozenset(
    {"max", "min", "num", "count", "limit", "ids", "len", "length", "budget", "top"}
)
_CREDENTIAL: Final = re.compile(
    r"(?i)^\s*(?:bearer|basic|token|digest)\s+\S|^(?:sk|pk|rk|hf|gsk|ghp|gho|xai|xox[abp])[-_]\w{6,}"
)
_USERINFO: Final = re.compile(r"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<info>[^\s/?#@]*)@")
_QUERY: Final = re.compile(r"(?P<pre>[?&;](?P<name>[^=&#;\s]+)=)(?P<value>[^&#;\s]*)")


def is_secret_name(name: str) -> bool:
    """``api_key``, ``x-api-key``, ``Authorization``, ``accessToken``: yes; ``max_tokens``,
    ``keep_alive``, ``X-Team``: no."""
    words = [word.lower() for word in _WORDS.findall(name)]
    if _COUNTER_WORDS.intersection(words):
        return False
    return any(word in _SECRET_WORDS or word.endswith(_SECRET_ENDINGS) for word in words)


def looks_secret(value: str) -> bool:
    """A value that is a credential whatever its name: ``Bearer ...``, ``sk-...``."""
    return bool(_CREDENTIAL.search(value))


def mask_url(text: str) -> str:
    """``https://user:pw@host/v1?api-key=k`` -> ``https://user:***@host/v1?api-key=***``.

    Works on a bare URL and on URLs inside a longer text (a backend's name).  A user
    name alone (``https://TOKEN@host``) is masked as a whole: it is often the token.
    """

    def userinfo(match: re.Match[str]) -> str:
        user, colon, _ = match.group("info").partition(":")
        return f"{match.group('pre')}{user + ':' + MASK if colon else MASK}@"

    def query(match: re.Match[str]) -> str:
        if is_secret_name(match.group("name")) or looks_secret(match.group("value")):
            return match.group("pre") + MASK
        return match.group(0)

    if "@" in text:
        text = _USERINFO.sub(userinfo, text)
    if "=" in text:
        text = _QUERY.sub(query, text)
    return text


def mask_data(value: Any, name: str = "") -> Any:
    """``value`` (a params table, headers, a backend option) with every secret replaced
    by ``***``: values under secret names, credential-looking strings, URL passwords."""
    if isinstance(value, Mapping):
        return {
            key: MASK
            if is_secret_name(str(key)) and not isinstance(item, bool)
            else mask_data(item, str(key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_data(item, name) for item in value]
    if isinstance(value, str):
        return MASK if looks_secret(value) else mask_url(value)
    return value


def secret_fields(profile: Profile) -> list[str]:
    """Where ``profile`` holds secrets, as ``"headers.Authorization"`` etc. (never values)."""
    found: list[str] = []
    if profile.api_key:
        found.append("api_key")
    if profile.url and mask_url(profile.url) != profile.url:
        found.append("url")
    for label, data in (("headers", profile.headers), ("params", profile.params)):
        found.extend(f"{label}.{path}" for path in _secret_paths(data))
    found.extend(_secret_paths(profile.options))
    return found


def _secret_paths(data: Mapping[str, Any]) -> list[str]:
    """Paths of the non-empty strings that are secrets (by their name, a secret name
    above them, or their look)."""
    paths: list[str] = []
    stack: list[tuple[str, str, Any, bool]] = [
        (str(key), str(key), value, False) for key, value in data.items()
    ]
    while stack:
        path, key, value, inherited = stack.pop()
        secret = inherited or is_secret_name(key)
        if isinstance(value, Mapping):
            stack.extend(
                (f"{path}.{name}", str(name), item, secret) for name, item in value.items()
            )
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", key, item, secret) for i, item in enumerate(value))
        elif (
            isinstance(value, str)
            and value
            and (secret or looks_secret(value) or mask_url(value) != value)
        ):
            paths.append(path)
    return sorted(paths)


def permission_warning(path: Path, profiles: Mapping[str, Profile]) -> str | None:
    """A warning when the file is readable or writable by others and holds secrets (an
    ``api_key``, a secret header or param, a password in a URL)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        from tokentide.config.show import visible

        secrets = [
            f"{field} of profile {name!r}"
            for name, profile in profiles.items()
            for field in secret_fields(profile)
        ]
        if not secrets:
            return None
        more = f" and {len(secrets) - 1} more" if len(secrets) > 1 else ""
        return visible(
            f"Warning: {path} holds secrets ({secrets[0]}{more}) but is readable by others "
            f"(mode {stat.S_IMODE(mode):o}). Run: chmod 600 {path}"
        )
    return None
