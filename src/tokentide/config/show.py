"""What ``tide config show`` prints: the settings as tokentide understands them.

A config file is text the user may have pasted from anywhere, so it is treated like a
server's text: every name and value passes :func:`tokentide.sanitize.sanitize` after
being made visible (``repr``-style ``\\x1b`` escapes), so a profile named with an OSC 52
sequence shows as ``'\\x1b]52;...'`` instead of writing the user's clipboard.  Secrets
are masked (:mod:`tokentide.config.secrets`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from tokentide.config.model import Profile, Settings
from tokentide.config.secrets import MASK, is_secret_name, looks_secret, mask_data, mask_url
from tokentide.sanitize import sanitize

__all__ = ["show_lines", "visible", "visible_key"]

_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_FIELDS: Final = (
    "api", "url", "model", "api_key_env", "system", "temperature", "top_p", "max_tokens",
    "seed", "price_in", "price_out", "context_window",
)  # fmt: skip
_TEMPLATE_FIELDS: Final = (
    "profile", "model", "system", "temperature", "top_p", "max_tokens", "seed",
)  # fmt: skip


def visible(text: str) -> str:
    """``text`` with every non-printable character but newline and tab as a visible
    ``\\x..`` escape, then sanitised: safe for a terminal and still recognisable."""
    if not text.isprintable():
        text = "".join(
            char if char.isprintable() or char in "\n\t" else _escape(char) for char in text
        )
    return sanitize(text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible_key(name: str) -> str:
    """A table or key name as TOML writes it: bare when it can be, else quoted (repr)."""
    return name if _BARE_KEY.fullmatch(name) else sanitize(repr(name))


def _value(value: Any) -> str:
    return sanitize(repr(value))


def show_lines(
    settings: Settings, builtin: Profile, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """The lines of ``tide config show`` (no secret, no escape sequence).  ``env`` (default
    ``os.environ``) decides the url a profile without one uses and which key it sends:
    each profile says where its key comes from (``# key: from $OPENAI_API_KEY (provider
    default)``), never the key."""
    env = os.environ if env is None else env
    yield f"# {visible(settings.path) if settings.path else 'no config file: built-in defaults'}"
    yield f"default = {_value(settings.default or builtin.name)}"
    yield from _tool_lines(settings)
    profiles = dict(settings.profiles)
    profiles.setdefault(builtin.name, builtin)
    for name, profile in profiles.items():
        yield ""
        yield f"[profiles.{visible_key(name)}]"
        yield from _profile_lines(profile, env)
    for name, template in settings.templates.items():
        yield ""
        yield f"[templates.{visible_key(name)}]"
        for key in _TEMPLATE_FIELDS:
            if (value := getattr(template, key)) is not None:
                yield f"{key} = {_value(value)}"


def _tool_lines(settings: Settings) -> Iterator[str]:
    """The tool keys that differ from the defaults; an MCP server's env and header
    values are never shown (they are often tokens), only their names."""
    tools = settings.tools
    if tools == type(tools)():
        return
    defaults = type(tools)()
    unset: dict[str, object] = {
        "approve": defaults.approve, "max_tool_rounds": defaults.max_rounds,
        "tool_timeout": defaults.timeout,
    }  # fmt: skip
    for key, shown in (
        ("approve", tools.approve), ("allow_tools", list(tools.allow_tools)),
        ("mcp", list(tools.mcp_files)), ("functions", list(tools.functions)),
        ("max_tool_rounds", tools.max_rounds), ("tool_timeout", tools.timeout),
    ):  # fmt: skip
        if shown != unset.get(key, []):
            yield f"{key} = {_value(False if shown is None else shown)}"
    for name, server in tools.mcp_servers.items():
        yield ""
        yield f"[mcp_servers.{visible_key(name)}]"
        for key, value in server.items():
            if key in ("env", "headers") and isinstance(value, Mapping):
                value = {item: MASK for item in value}
            elif key == "url" and isinstance(value, str):
                value = mask_url(value)
            yield f"{visible_key(key)} = {_value(value)}"


def _profile_lines(profile: Profile, env: Mapping[str, str]) -> Iterator[str]:
    from tokentide.config.credentials import effective_url, key_source

    for key in _FIELDS:
        value = getattr(profile, key)
        if key == "url" and value is None:
            url, source = effective_url(profile, env)
            if url is not None:
                where = "the provider's default" if source == "provider default" else source
                yield f"# url: {_value(mask_url(url))}, {where} (the profile names none)"
            continue
        if value is None:
            continue
        if key == "url":
            value = mask_url(value)
        yield f"{key} = {_value(value)}"
    if profile.url or effective_url(profile, env)[0] or profile.api_key or profile.api_key_env:
        yield f"# key: {visible(key_source(profile, env).describe())}"
    if profile.api_key:
        yield f"api_key = {MASK!r}"
    for key, value in profile.options.items():
        shown = MASK if is_secret_name(key) and not isinstance(value, bool) else mask_data(value)
        yield f"{visible_key(key)} = {_value(shown)}"
    if profile.headers:
        headers = {
            key: MASK if is_secret_name(key) or looks_secret(value) else mask_url(value)
            for key, value in profile.headers.items()
        }
        yield f"headers = {_value(headers)}"
    if profile.params:
        yield f"params = {_value(mask_data(dict(profile.params)))}"
