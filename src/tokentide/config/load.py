"""Find, read and check ``config.toml``; turn profiles and flags into :class:`Profile`.

A missing file is not an error: the built-in ``local`` profile (the embedded model)
applies.  A malformed file is, and the error names the file, the line and the fix.
Unknown keys are reported, never ignored.  Nothing here creates files: ``tide config
init`` is :func:`~tokentide.config.example.write_example` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from tokentide.config.example import EXAMPLE_CONFIG, write_example
from tokentide.config.model import Deadlines, Limits, Profile, Settings, Template, ToolSettings
from tokentide.config.paths import config_path
from tokentide.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from tokentide.config.lines import LineIndex, Table

# The checks (config/validate.py), line numbers (lines.py) and secrets (secrets.py) are
# imported when a file is read: a start without a config file does not pay for them.

__all__ = [
    "BUILTIN_LOCAL",
    "COMMON_KEYS",
    "EXAMPLE_CONFIG",
    "load_settings",
    "profile_from_flags",
    "resolve_profile",
    "write_example",
]

BUILTIN_LOCAL = Profile(name="local", api="llamacpp")
"""Used when no config file or profile exists: SmolLM2-135M run in-process."""

COMMON_KEYS = frozenset(
    {
        "api", "url", "model", "api_key_env", "api_key", "system", "temperature",
        "max_tokens", "seed", "top_p", "headers", "params", "connect_timeout",
        "first_token_timeout", "idle_timeout", "max_retries", "max_event_bytes",
        "max_answer_bytes", "price_in", "price_out", "context_window", "functions",
    }
)  # fmt: skip
_TOP_KEYS = frozenset({"default", "theme", "log", "ui", "keys", "profiles", "templates"})
_TOOL_KEYS = frozenset(
    {"approve", "allow_tools", "mcp", "mcp_servers", "functions", "max_tool_rounds", "tool_timeout"}
)
"""Read by :mod:`tokentide.config.tool_settings` (imported only when a file has one)."""
GRPC_APIS: Final = frozenset({"triton-grpc"})
"""Apis whose url is a gRPC target (``host:port``), not an http(s) URL."""
MAX_RETRIES: Final = 100


def _key_hint(key: str) -> str:
    # "(discouraged)" also keeps redact() from taking "api_key, ..." for a key's value.
    return "api_key (discouraged)" if key == "api_key" else key


def _where(path: Path | None, lines: LineIndex | None, table: Table, key: str | None = None) -> str:
    """``"path:line: "`` for the message of an error about ``[table]`` or ``key`` in it."""
    if path is None:
        return ""
    line = lines.line(table, key) if lines is not None else None
    return f"{path}:{line}: " if line else f"{path}: "


def parse_profile(
    name: str,
    table: Mapping[str, Any],
    *,
    path: Path | None = None,
    text: str = "",
    lines: LineIndex | None = None,
) -> Profile:
    """Check one ``[profiles.NAME]`` table and build the :class:`Profile`.

    ``lines`` (one per file) finds the line of a key that is wrong; without it, one is
    made from ``text``.  Nothing is looked up while every value is right.
    """
    from tokentide.config import validate as v
    from tokentide.config.apis import API_NAMES, api_spec, check_option
    from tokentide.config.lines import LineIndex

    if lines is None and text:
        lines = LineIndex(text)
    section = ("profiles", name)

    def here(key: str | None = None) -> str:
        return _where(path, lines, section, key)

    def where(key: str | None = None) -> Callable[[], str]:
        return lambda: here(key)

    if "api" not in table:
        raise ConfigError(
            f"{here()}profile {name!r} has no api.",
            hint=f'Add api = "..." with one of: {", ".join(API_NAMES)}.',
        )
    api = v.string(table["api"], "api", where("api"))
    spec = api_spec(api) if api in API_NAMES else None
    if spec is None:
        raise ConfigError(
            f"{here('api')}profile {name!r}: unknown api {api!r}.",
            hint=f"Known apis: {', '.join(API_NAMES)}.",
        )
    unknown = sorted(set(table) - COMMON_KEYS - spec.options)
    if unknown:
        allowed = sorted(spec.options)
        raise ConfigError(
            f"{here(unknown[0])}profile {name!r}: unknown key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}."
            + v.did_you_mean(unknown[0], COMMON_KEYS | spec.options),
            hint=(
                "Common keys: " + ", ".join(map(_key_hint, sorted(COMMON_KEYS)))
                + (f"; api {api!r} also takes: {', '.join(allowed)}." if allowed else ".")
            ),
        )  # fmt: skip

    def timeout(key: str, default: float | None) -> float | None:
        return v.timeout(table[key], key, where(key)) if key in table else default

    def count(key: str, default: int, minimum: int, maximum: int | None = None) -> int:
        if key not in table:
            return default
        return v.count(table[key], key, where(key), minimum=minimum, maximum=maximum)

    def opt_str(key: str) -> str | None:
        return v.string(table[key], key, where(key)) if key in table else None

    def opt_number(key: str, maximum: float | None = None) -> float | None:
        if key not in table:
            return None
        return v.number(table[key], key, where(key), minimum=0, maximum=maximum)

    defaults = Deadlines()
    deadlines = Deadlines(
        connect=timeout("connect_timeout", defaults.connect),
        first_token=timeout("first_token_timeout", defaults.first_token),
        idle=timeout("idle_timeout", defaults.idle),
    )
    limits = Limits(
        max_event_bytes=count("max_event_bytes", Limits().max_event_bytes, 1),
        max_answer_bytes=count("max_answer_bytes", Limits().max_answer_bytes, 1),
    )
    headers = v.table(table.get("headers", {}), "headers", where("headers"))
    for key, value in headers.items():
        v.check_header(key, value, where("headers"))
    params = v.table(table.get("params", {}), "params", where("params"))
    v.check_data(params, "params", where("params"))
    options = {key: table[key] for key in spec.options if key in table}
    for key, value in options.items():
        check_option(spec, key, value, where(key))
        v.check_data(value, key, where(key))
    url = opt_str("url")
    if url is not None:
        v.check_url(url, where("url"), grpc=api in GRPC_APIS)
    api_key = opt_str("api_key")
    if api_key is not None and not api_key.isprintable():
        raise ConfigError(f"{here('api_key')}api_key contains a line break or control character.")
    seed = count("seed", 0, minimum=-(1 << 63)) if "seed" in table else None
    return Profile(
        name=name,
        api=api,
        url=url,
        model=opt_str("model"),
        api_key_env=opt_str("api_key_env"),
        api_key=api_key,
        system=opt_str("system"),
        temperature=opt_number("temperature"),
        max_tokens=count("max_tokens", 0, minimum=1) if "max_tokens" in table else None,
        seed=seed,
        top_p=opt_number("top_p", maximum=1),
        headers=dict(headers),
        params=dict(params),
        deadlines=deadlines,
        limits=limits,
        max_retries=count("max_retries", 2, minimum=0, maximum=MAX_RETRIES),
        price_in=opt_number("price_in"),
        price_out=opt_number("price_out"),
        context_window=count("context_window", 0, minimum=1) if "context_window" in table else None,
        functions=_functions(table, where("functions")),
        options=options,
    )


def _functions(table: Mapping[str, Any], where: Callable[[], str]) -> tuple[str, ...]:
    if "functions" not in table:
        return ()
    from tokentide.config.tool_settings import strings

    return strings(table["functions"], "functions", where)


def _parse_toml(file: Path, text: str) -> dict[str, Any]:
    import tomllib  # only when there is a file: 2.7 ms of every one-shot start otherwise

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            f"{file}: not valid TOML: {error}.",
            hint='Check the quoting on that line: strings need "quotes", tables [brackets].',
        ) from error
    except RecursionError:
        raise ConfigError(
            f"{file}: arrays or tables are nested too deeply to read.",
            hint="A config file nests a few levels at most; look for a run of [ or {.",
        ) from None


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the config file (see :func:`~tokentide.config.paths.config_path`)."""
    file = config_path(path, env)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        if path is not None:
            raise ConfigError(
                f"Config file {file} does not exist.", hint="Create one with: tide config init"
            ) from None
        return Settings()
    except OSError as error:
        raise ConfigError(f"Cannot read config file {file}: {error.strerror}.") from error
    text = raw.decode("utf-8", "replace")
    document = _parse_toml(file, text)
    from tokentide.config import validate as v
    from tokentide.config.lines import LineIndex

    lines = LineIndex(text)  # scans the text once, at the first line number an error needs

    def where(key: str) -> Callable[[], str]:
        return lambda: _where(file, lines, (), key)

    unknown = sorted(set(document) - _TOP_KEYS - _TOOL_KEYS)
    if unknown:
        raise ConfigError(
            f"{v.at(where(unknown[0]))}unknown top-level key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}.",
            hint="Top-level keys: default, theme, log, approve, allow_tools, mcp, functions, "
            "max_tool_rounds, tool_timeout, [ui], [keys], [profiles.NAME], [templates.NAME], "
            "[mcp_servers.NAME].",
        )
    profiles: dict[str, Profile] = {}
    raw_profiles = v.table(document.get("profiles", {}), "profiles", where("profiles"))
    for name, table in raw_profiles.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: profiles.{name!r} must be a table: [profiles.NAME].")
        profiles[name] = parse_profile(name, table, path=file, lines=lines)
    default = document.get("default")
    if default is not None:
        default = v.string(default, "default", where("default"))
        if default not in profiles and default != BUILTIN_LOCAL.name:
            from tokentide.config.show import visible_key

            raise ConfigError(
                f"{v.at(where('default'))}default = {default!r}, but there is no "
                f"[profiles.{visible_key(default)}].",
                hint=f"Profiles: {', '.join(map(repr, profiles)) or '(none)'}.",
            )
    templates = _templates(document, profiles, file, lines)
    ui = v.table(document.get("ui", {}), "ui", where("ui"))
    theme = document.get("theme", ui.get("theme"))
    keys = v.table(document.get("keys", {}), "keys", where("keys"))
    log = document.get("log", True)
    if not isinstance(log, bool):
        raise ConfigError(
            f"{v.at(where('log'))}log must be true or false, not {log!r}.",
            hint="log = false keeps tide ask from saving its exchanges in the history.",
        )
    tools = ToolSettings()
    if _TOOL_KEYS & document.keys():
        from tokentide.config.tool_settings import parse_tool_settings

        tools = parse_tool_settings(
            document,
            where,
            lambda name, key: partial(_where, file, lines, ("mcp_servers", name), key),
        )
    warnings: list[str] = []
    from tokentide.config.secrets import permission_warning

    if warning := permission_warning(file, profiles):
        warnings.append(warning)
    return Settings(
        profiles=profiles,
        templates=templates,
        default=default,
        theme=None if theme is None else v.string(theme, "theme", where("theme")),
        log=log,
        keys={
            k: v.string(value, f"keys.{k}", partial(_where, file, lines, ("keys",), k))
            for k, value in keys.items()
        },
        tools=tools,
        path=str(file),
        warnings=tuple(warnings),
    )


def _templates(
    document: Mapping[str, Any], profiles: Mapping[str, Profile], file: Path, lines: LineIndex
) -> dict[str, Template]:
    """The ``[templates.NAME]`` tables, checked (their profiles must exist)."""
    if "templates" not in document:
        return {}
    from tokentide.config import validate as v
    from tokentide.config.templates import parse_template

    where = partial(_where, file, lines, (), "templates")
    known = [*profiles, *([] if BUILTIN_LOCAL.name in profiles else [BUILTIN_LOCAL.name])]
    templates: dict[str, Template] = {}
    for name, table in v.table(document["templates"], "templates", where).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where()}templates.{name!r} must be a table: [templates.NAME].")
        here = partial(_where, file, lines, ("templates", name))
        templates[name] = parse_template(name, table, profiles=known, here=here)
    return templates


def resolve_profile(settings: Settings, name: str | None = None) -> Profile:
    """The profile named, else the file's default, else the built-in ``local``."""
    if name is None:
        name = settings.default
    if name is None:
        return BUILTIN_LOCAL
    if name in settings.profiles:
        return settings.profiles[name]
    if name == BUILTIN_LOCAL.name:
        return BUILTIN_LOCAL
    known = ", ".join([*settings.profiles, BUILTIN_LOCAL.name])
    where = f" in {settings.path}" if settings.path else " (no config file yet: tide config init)"
    raise ConfigError(f"No profile named {name!r}{where}.", hint=f"Profiles: {known}.")


def profile_from_flags(
    base: Profile | None,
    *,
    api: str | None = None,
    url: str | None = None,
    model: str | None = None,
    api_key_env: str | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    target: str | None = None,
    template: Template | None = None,
) -> Profile:
    """Apply command-line flags on top of a profile (or build an ad-hoc one from them).

    A ``template`` is applied first: the flags beat it, and it beats the profile.
    """
    from tokentide.config.apis import api_spec

    if base is None or (api is not None and api != base.api):
        if api is None:
            raise ConfigError("Give --api KIND (or --profile NAME).")
        api_spec(api)
        base = Profile(name="command line", api=api)
    if template is not None:
        from tokentide.config.templates import apply_template

        base = apply_template(base, template)
    from tokentide.config import validate as v

    if url is not None:
        v.check_url(url, "--url: ", grpc=base.api in GRPC_APIS)
    if temperature is not None:
        v.number(temperature, "--temperature", "", minimum=0)
    if max_tokens is not None:
        v.count(max_tokens, "--max-tokens", "", minimum=1)
    changes: dict[str, Any] = {}
    for key, value in (
        ("url", url), ("model", model), ("api_key_env", api_key_env), ("system", system),
        ("max_tokens", max_tokens), ("temperature", temperature), ("seed", seed),
    ):  # fmt: skip
        if value is not None:
            changes[key] = value
    if target is not None:
        changes["options"] = {**base.options, "target": target}
    return replace(base, **changes) if changes else base
