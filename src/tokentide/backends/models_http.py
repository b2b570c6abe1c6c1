"""Model listings over HTTP: OpenAI-compatible ``/models``, Ollama ``/api/tags``, TGI
``/info``, Anthropic ``/v1/models``, Triton ``/v2/repository/index``.

Each request goes through the profile's own :class:`~tokentide.backends.http.HTTPBackend`
(its client carries the key only to the profile's origin, follows no redirect, bounds
the body before inflating it, and turns statuses and transport failures into messages
for a person).  See :mod:`tokentide.backends.models` for the public API.
"""

from __future__ import annotations

import datetime
import json
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from tokentide.backends.http import HTTPBackend
from tokentide.backends.http_body import read_bounded
from tokentide.backends.http_errors import describe_body, error_from_body, parse_json
from tokentide.backends.models import MAX_LIST_BYTES, ModelInfo
from tokentide.config.model import Profile
from tokentide.errors import (
    BackendError,
    HTTPStatusError,
    LimitExceeded,
    ProtocolError,
    ServerError,
    excerpt,
)

__all__ = ["human_bytes", "human_count", "list_http"]

_MAX_MODELS = 100_000
_ANTHROPIC_PAGES = 20
_PLACEHOLDER_MODEL = "(listing models)"
"""Triton's backend needs a model to be built; listing never sends it."""


async def list_http(profile: Profile, env: Mapping[str, str]) -> list[ModelInfo]:
    from tokentide.backends.registry import create_backend

    built = profile
    if profile.api == "triton-http" and not profile.model:
        built = replace(profile, model=_PLACEHOLDER_MODEL)
    backend = create_backend(built, env)
    assert isinstance(backend, HTTPBackend)
    try:
        reader = _READERS[profile.api]
        return (await reader(backend))[:_MAX_MODELS]
    finally:
        await backend.aclose()


# -- one request -------------------------------------------------------------------------


async def fetch_json(
    backend: HTTPBackend,
    path: str,
    *,
    method: str = "GET",
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    what: str = "model list",
) -> Any:
    """The JSON answer to one listing request, at most :data:`MAX_LIST_BYTES`."""
    url = backend.url_for(path)
    client = backend.client_for(url)
    request = client.build_request(
        method, url, json=body, headers={"Accept": "application/json", **(headers or {})}
    )

    def too_long() -> LimitExceeded:
        return LimitExceeded(
            f"The {what} from {url} passed {MAX_LIST_BYTES:,} bytes; stopped reading.",
            server=backend.base_url,
        )

    try:
        # The backend's own send: status check with the bounded error body, no
        # redirects, the response closed on every path.
        async with backend.send(client, request) as response:
            with backend.errors(url, started=True):
                raw = await read_bounded(response, MAX_LIST_BYTES, backend.base_url, too_long)
    except HTTPStatusError as error:
        if error.status in (404, 405, 501):
            raise HTTPStatusError(
                f"{url} has no {what} (HTTP {error.status}).",
                status=error.status,
                body=error.body,
                server=backend.base_url,
                hint=f"Check that api = {backend.api!r} is what the server at "
                f"{backend.base_url} speaks, and its url"
                + (
                    " (OpenAI-compatible bases usually end in /v1)."
                    if "openai" in backend.api
                    else "."
                ),
            ) from None
        raise
    text = raw.decode("utf-8", "replace")
    try:
        return parse_json(text)
    except ValueError as error:
        nested = "JSON nested too deeply to read" if "deep" in str(error) else "not JSON"
        raise ProtocolError(
            f"{url} answered with {describe_body(text)}, {nested}, instead of a {what}.",
            server=backend.base_url,
            hint=f"Check that api = {backend.api!r} is what this server speaks.",
        ) from None


def _not_a_list(backend: HTTPBackend, path: str, body: Any) -> BackendError:
    parsed = error_from_body(body) if isinstance(body, dict) else None
    url = backend.url_for(path)
    if parsed:
        return ServerError(
            f"{url} reported an error: {excerpt(parsed[0])}",
            kind=parsed[1],
            server=backend.base_url,
        )
    return ProtocolError(
        f"{url} did not answer with a model list: {excerpt(json.dumps(body), 200)}",
        server=backend.base_url,
        hint=f"Check that api = {backend.api!r} is what this server speaks.",
    )


def _entries(body: Any, key: str) -> list[dict[str, Any]] | None:
    items = body.get(key) if isinstance(body, dict) else body if key == "" else None
    if not isinstance(items, list):
        return None
    return [item for item in items if isinstance(item, dict)]


# -- small readers ----------------------------------------------------------------------


def _str(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, float) and value.is_integer() and value > 0:
        return int(value)
    return None


def human_bytes(size: int) -> str:
    """``2019393189`` -> ``"2.0 GB"`` (decimal units, as Ollama and llama.cpp print)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_count(count: int) -> str:
    """``134515008`` -> ``"135M"``, ``8030261248`` -> ``"8.0B"``."""
    for limit, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= limit:
            value = count / limit
            return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return str(count)


def _date(value: Any) -> str | None:
    """A unix time or an ISO 8601 string as ``YYYY-MM-DD``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1e11:
        return datetime.datetime.fromtimestamp(value, datetime.UTC).date().isoformat()
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-":
        return value[:10]
    return None


def _details(pairs: list[tuple[str, str | None]]) -> dict[str, str]:
    return {key: value for key, value in pairs if value}


# -- OpenAI-compatible ------------------------------------------------------------------

_CONTEXT_KEYS = ("max_model_len", "context_length", "context_window", "max_context_length")


async def _openai(backend: HTTPBackend) -> list[ModelInfo]:
    body = await fetch_json(backend, "/models")
    entries = _entries(body, "data")
    if entries is None and isinstance(body, dict) and isinstance(body.get("id"), str):
        entries = [body]  # a single model object
    if entries is None:
        raise _not_a_list(backend, "/models", body)
    models = []
    llamacpp = False
    for entry in entries:
        model_id = _str(entry.get("id"))
        if model_id is None:
            continue
        context = next((c for k in _CONTEXT_KEYS if (c := _int(entry.get(k)))), None)
        meta = _dict(entry.get("meta"))
        owned_by = _str(entry.get("owned_by"))
        llamacpp = llamacpp or owned_by == "llamacpp" or bool(meta)
        trained = _int(meta.get("n_ctx_train"))
        params, size = _int(meta.get("n_params")), _int(meta.get("size"))
        root = _str(entry.get("root"))
        models.append(
            ModelInfo(
                id=model_id,
                context_window=context or trained,
                owned_by=owned_by,
                details=_details(
                    [
                        ("name", _str(entry.get("name"))),
                        ("parameters", human_count(params) if params else None),
                        ("size", human_bytes(size) if size else None),
                        ("trained_context", str(trained) if trained else None),
                        ("root", root if root and root != model_id else None),
                        ("created", _date(entry.get("created"))),
                    ]
                ),
            )
        )
    if llamacpp and models:
        n_ctx = await _llamacpp_n_ctx(backend)
        if n_ctx:
            models = [replace(m, context_window=n_ctx) for m in models]
    return models


async def _llamacpp_n_ctx(backend: HTTPBackend) -> int | None:
    """llama-server's ``/props``: the context it really runs with.  Best effort: any
    failure leaves the trained context from ``/models`` in place."""
    base = backend._base.prefix
    root = base[: -len("/v1")] if base.endswith("/v1") else base
    try:
        body = await fetch_json(backend, f"{root}/props", what="properties")
    except BackendError:
        return None
    settings = body.get("default_generation_settings") if isinstance(body, dict) else None
    n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
    return _int(n_ctx) or (_int(body.get("n_ctx")) if isinstance(body, dict) else None)


# -- Ollama -----------------------------------------------------------------------------


async def _ollama(backend: HTTPBackend) -> list[ModelInfo]:
    body = await fetch_json(backend, "/api/tags")
    entries = _entries(body, "models")
    if entries is None:
        raise _not_a_list(backend, "/api/tags", body)
    models = []
    for entry in entries:
        model_id = _str(entry.get("name")) or _str(entry.get("model"))
        if model_id is None:
            continue
        info = _dict(entry.get("details"))
        size = _int(entry.get("size"))
        models.append(
            ModelInfo(
                id=model_id,
                details=_details(
                    [
                        ("parameters", _str(info.get("parameter_size"))),
                        ("quantization", _str(info.get("quantization_level"))),
                        ("family", _str(info.get("family"))),
                        ("format", _str(info.get("format"))),
                        ("size", human_bytes(size) if size else None),
                        ("modified", _date(entry.get("modified_at"))),
                    ]
                ),
            )
        )
    return models


# -- TGI --------------------------------------------------------------------------------


async def _tgi(backend: HTTPBackend) -> list[ModelInfo]:
    body = await fetch_json(backend, "/info", what="model information")
    model_id = _str(body.get("model_id")) if isinstance(body, dict) else None
    if model_id is None:
        raise _not_a_list(backend, "/info", body)
    max_input = _int(body.get("max_input_tokens")) or _int(body.get("max_input_length"))
    return [
        ModelInfo(
            id=model_id,
            context_window=_int(body.get("max_total_tokens")),
            details=_details(
                [
                    ("max_input_tokens", str(max_input) if max_input else None),
                    ("dtype", _str(body.get("model_dtype"))),
                    ("device", _str(body.get("model_device_type"))),
                    ("version", _str(body.get("version"))),
                ]
            ),
        )
    ]


# -- Anthropic --------------------------------------------------------------------------


async def _anthropic(backend: HTTPBackend) -> list[ModelInfo]:
    headers = {"anthropic-version": str(getattr(backend, "version", "2023-06-01"))}
    models: list[ModelInfo] = []
    after: str | None = None
    for _ in range(_ANTHROPIC_PAGES):
        path = "/v1/models?limit=1000"
        if after:
            path += f"&after_id={urllib.parse.quote(after, safe='')}"
        body = await fetch_json(backend, path, headers=headers)
        entries = _entries(body, "data")
        if entries is None:
            raise _not_a_list(backend, "/v1/models", body)
        for entry in entries:
            model_id = _str(entry.get("id"))
            if model_id is None:
                continue
            models.append(
                ModelInfo(
                    id=model_id,
                    context_window=_int(entry.get("max_input_tokens")),
                    details=_details(
                        [
                            ("name", _str(entry.get("display_name"))),
                            ("created", _date(entry.get("created_at"))),
                        ]
                    ),
                )
            )
        after = _str(body.get("last_id"))
        if body.get("has_more") is not True or not after or len(models) >= _MAX_MODELS:
            break
    return models


# -- Triton HTTP ------------------------------------------------------------------------


def triton_entry(name: str, version: str, state: str, reason: str) -> ModelInfo:
    """One repository index entry (HTTP and gRPC alike)."""
    return ModelInfo(
        id=name,
        details=_details([("version", version), ("state", state), ("reason", reason)]),
        ready=state.upper() == "READY" if state else True,
    )


async def _triton(backend: HTTPBackend) -> list[ModelInfo]:
    body = await fetch_json(backend, "/v2/repository/index", method="POST", body={})
    entries = _entries(body, "")
    if entries is None:
        raise _not_a_list(backend, "/v2/repository/index", body)
    return [
        triton_entry(
            name,
            _str(e.get("version")) or "",
            _str(e.get("state")) or "",
            _str(e.get("reason")) or "",
        )
        for e in entries
        if (name := _str(e.get("name")))
    ]


_READERS: dict[str, Callable[[HTTPBackend], Awaitable[list[ModelInfo]]]] = {
    "openai": _openai,
    "openai-completions": _openai,
    "ollama": _ollama,
    "tgi": _tgi,
    "anthropic": _anthropic,
    "triton-http": _triton,
}
