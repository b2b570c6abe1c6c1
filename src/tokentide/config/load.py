"""Find, read and check ``config.toml``; turn profiles and flags into :class:`Profile`.

A missing file is not an error: the built-in ``local`` profile (the embedded model)
applies.  A malformed file is, and the error names the file, the line and the fix.
Unknown keys are reported, never ignored.  Nothing here creates files except
:func:`write_example` (``tide config init``).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from tokentide.config.model import Deadlines, Limits, Profile, Settings
from tokentide.config.paths import config_path
from tokentide.errors import ConfigError

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
        "max_answer_bytes",
    }
)  # fmt: skip
_TOP_KEYS = frozenset({"default", "theme", "ui", "keys", "profiles"})

EXAMPLE_CONFIG = """\
# tokentide configuration.  Docs: docs/configuration.md
# The profile used when none is named with -P/--profile:
default = "local"

[ui]
# theme = "textual-dark"

# [keys]
# stop = "escape"

# The embedded model (SmolLM2-135M-Instruct, in-process; no server needed).
[profiles.local]
api = "llamacpp"
# model_path = "/path/to/any.gguf"
# n_threads = 1
# n_ctx = 2048
# extra_buffers = false   # llama.cpp's AMX/repacked weights; default: off on AMX CPUs

# An OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, Ollama /v1, ...).
# [profiles.vllm]
# api = "openai"
# url = "http://127.0.0.1:8000/v1"
# model = "meta-llama/Llama-3.1-8B-Instruct"

# OpenAI itself.  The key is read from the environment, never stored here.
# [profiles.openai]
# api = "openai"
# url = "https://api.openai.com/v1"
# model = "gpt-4o-mini"
# api_key_env = "OPENAI_API_KEY"

# Hugging Face TGI, native /generate_stream with per-token details.
# [profiles.tgi]
# api = "tgi"
# url = "http://127.0.0.1:8080"

# Triton over gRPC (vLLM / TensorRT-LLM / Python backends, NuPIC).
# [profiles.triton]
# api = "triton-grpc"
# url = "127.0.0.1:8001"
# model = "vllm_model"
# params = { max_tokens = 256 }
"""


def _line_of(text: str, table: str, key: str | None = None) -> int | None:
    """Best-effort line number of ``[table]`` (or of ``key`` inside it) in the file."""
    lines = text.splitlines()
    header = re.compile(
        r"^\s*\[\s*" + r"\s*\.\s*".join(map(re.escape, table.split("."))) + r"\s*\]"
    )
    for index, line in enumerate(lines):
        if header.match(line):
            if key is None:
                return index + 1
            key_re = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
            for offset, inner in enumerate(lines[index + 1 :], start=index + 2):
                if inner.lstrip().startswith("["):
                    break
                if key_re.match(inner):
                    return offset
    return None


def _where(path: Path | None, text: str, table: str, key: str | None = None) -> str:
    if path is None:
        return ""
    line = _line_of(text, table, key)
    return f"{path}:{line}: " if line else f"{path}: "


def _number(value: Any, what: str, where: str, *, allow_off: bool = False) -> float | None:
    if allow_off and value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = " (or false to turn it off)" if allow_off else ""
        raise ConfigError(f"{where}{what} must be a number{hint}, not {value!r}.")
    return float(value)


def _int(value: Any, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}{what} must be a whole number, not {value!r}.")
    return value


def _str(value: Any, what: str, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(
            f'{where}{what} must be a string in quotes, like {what} = "...", not {value!r}.'
        )
    return value


def _table(value: Any, what: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f'{where}{what} must be a table, like {what} = {{ key = "value" }}.')
    return value


def parse_profile(
    name: str, table: Mapping[str, Any], *, path: Path | None = None, text: str = ""
) -> Profile:
    """Check one ``[profiles.NAME]`` table and build the :class:`Profile`."""
    from tokentide.backends.registry import API_NAMES, api_spec

    section = f"profiles.{name}"

    def where(key: str | None = None) -> str:
        return _where(path, text, section, key)

    if "api" not in table:
        raise ConfigError(
            f"{where()}profile {name!r} has no api.",
            hint=f'Add api = "..." with one of: {", ".join(API_NAMES)}.',
        )
    api = _str(table["api"], "api", where("api"))
    spec = api_spec(api) if api in API_NAMES else None
    if spec is None:
        raise ConfigError(
            f"{where('api')}profile {name!r}: unknown api {api!r}.",
            hint=f"Known apis: {', '.join(API_NAMES)}.",
        )
    unknown = sorted(set(table) - COMMON_KEYS - spec.options)
    if unknown:
        allowed = sorted(spec.options)
        raise ConfigError(
            f"{where(unknown[0])}profile {name!r}: unknown key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}.",
            hint=(
                "Common keys: " + ", ".join(sorted(COMMON_KEYS))
                + (f"; api {api!r} also takes: {', '.join(allowed)}." if allowed else ".")
            ),
        )  # fmt: skip
    deadlines = Deadlines()
    if "connect_timeout" in table:
        deadlines = replace(
            deadlines,
            connect=_number(
                table["connect_timeout"],
                "connect_timeout",
                where("connect_timeout"),
                allow_off=True,
            ),
        )
    if "first_token_timeout" in table:
        deadlines = replace(
            deadlines,
            first_token=_number(
                table["first_token_timeout"],
                "first_token_timeout",
                where("first_token_timeout"),
                allow_off=True,
            ),
        )
    if "idle_timeout" in table:
        deadlines = replace(
            deadlines,
            idle=_number(
                table["idle_timeout"], "idle_timeout", where("idle_timeout"), allow_off=True
            ),
        )
    limits = Limits()
    if "max_event_bytes" in table:
        limits = replace(
            limits,
            max_event_bytes=_int(
                table["max_event_bytes"], "max_event_bytes", where("max_event_bytes")
            ),
        )
    if "max_answer_bytes" in table:
        limits = replace(
            limits,
            max_answer_bytes=_int(
                table["max_answer_bytes"], "max_answer_bytes", where("max_answer_bytes")
            ),
        )

    def opt_str(key: str) -> str | None:
        return _str(table[key], key, where(key)) if key in table else None

    headers = _table(table.get("headers", {}), "headers", where("headers"))
    for key, value in headers.items():
        _str(value, f"headers.{key}", where("headers"))
    temperature = table.get("temperature")
    top_p = table.get("top_p")
    return Profile(
        name=name,
        api=api,
        url=opt_str("url"),
        model=opt_str("model"),
        api_key_env=opt_str("api_key_env"),
        api_key=opt_str("api_key"),
        system=opt_str("system"),
        temperature=None if temperature is None else _number(temperature, "temperature", where("temperature")),
        max_tokens=_int(table["max_tokens"], "max_tokens", where("max_tokens")) if "max_tokens" in table else None,
        seed=_int(table["seed"], "seed", where("seed")) if "seed" in table else None,
        top_p=None if top_p is None else _number(top_p, "top_p", where("top_p")),
        headers=dict(headers),
        params=dict(_table(table.get("params", {}), "params", where("params"))),
        deadlines=deadlines,
        limits=limits,
        max_retries=_int(table["max_retries"], "max_retries", where("max_retries")) if "max_retries" in table else 2,
        options={key: table[key] for key in spec.options if key in table},
    )  # fmt: skip


def _permission_warning(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (
            f"Warning: {path} holds an API key but is readable by others "
            f"(mode {stat.S_IMODE(mode):o}). Run: chmod 600 {path}"
        )
    return None


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
    import tomllib  # only when there is a file: 2.7 ms of every one-shot start otherwise

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            f"{file}: not valid TOML: {error}.",
            hint='Check the quoting on that line: strings need "quotes", tables [brackets].',
        ) from error
    unknown = sorted(set(document) - _TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"{file}: unknown top-level key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}.",
            hint="Top-level keys: default, theme, [ui], [keys], [profiles.NAME].",
        )
    profiles: dict[str, Profile] = {}
    raw_profiles = _table(document.get("profiles", {}), "profiles", f"{file}: ")
    holds_key = False
    for name, table in raw_profiles.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: profiles.{name} must be a table: [profiles.{name}].")
        profiles[name] = parse_profile(name, table, path=file, text=text)
        holds_key = holds_key or bool(profiles[name].api_key)
    default = document.get("default")
    if default is not None:
        default = _str(default, "default", f"{file}: ")
        if default not in profiles and default != BUILTIN_LOCAL.name:
            raise ConfigError(
                f"{file}: default = {default!r}, but there is no [profiles.{default}].",
                hint=f"Profiles: {', '.join(profiles) or '(none)'}.",
            )
    ui = _table(document.get("ui", {}), "ui", f"{file}: ")
    theme = document.get("theme", ui.get("theme"))
    keys = _table(document.get("keys", {}), "keys", f"{file}: ")
    warnings: list[str] = []
    if holds_key and (warning := _permission_warning(file)):
        warnings.append(warning)
    return Settings(
        profiles=profiles,
        default=default,
        theme=None if theme is None else _str(theme, "theme", f"{file}: "),
        keys={k: _str(v, f"keys.{k}", f"{file}: ") for k, v in keys.items()},
        path=str(file),
        warnings=tuple(warnings),
    )


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
) -> Profile:
    """Apply command-line flags on top of a profile (or build an ad-hoc one from them)."""
    from tokentide.backends.registry import api_spec

    if base is None or (api is not None and api != base.api):
        if api is None:
            raise ConfigError("Give --api KIND (or --profile NAME).")
        api_spec(api)
        base = Profile(name="command line", api=api)
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


def write_example(path: Path) -> None:
    """Write a commented example config with mode 0600, refusing to overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; not overwriting it.") from None
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(EXAMPLE_CONFIG)
