"""The models a profile's server offers, as the server describes them.

This is the domain API behind ``tide models`` and the chat app's "Switch model"::

    from tokentide.backends.models import list_models, configured_model, with_model

    models = await list_models(profile)            # list[ModelInfo], in the server's order
    current = configured_model(models, profile)    # the entry the profile uses, or None
    if can_switch(profile):
        profile = with_model(profile, models[0])   # the same profile, another model

:func:`list_models` picks the listing by ``profile.api``:

=====================  ==============================================================
``openai``,            ``GET {url}/models``: vLLM's ``max_model_len``, OpenRouter's and
``openai-completions`` Together's ``context_length``; llama.cpp's ``llama-server`` adds
                       ``meta`` (``n_ctx_train``, size, parameters) and its ``/props``
                       (read only then) gives the context it runs with (``n_ctx``)
``ollama``             ``GET /api/tags``: size, parameters, quantisation, family
``tgi``                ``GET /info``: the one model, ``max_total_tokens``,
                       ``max_input_tokens``
``anthropic``          ``GET /v1/models`` (``x-api-key``, ``anthropic-version``; pages
                       followed)
``triton-http``        ``POST /v2/repository/index``: name, version, state
``triton-grpc``        ``RepositoryIndex``: the same
``llamacpp``           the GGUF file itself, without loading it: context ``n_ctx``
``local``              the target function (``module:function``), not imported
``substrate``, ``muna`` no model list: :class:`NoModelList`
=====================  ==============================================================

Every HTTP listing goes through the backend the profile builds
(:func:`~tokentide.backends.registry.create_backend`): the same URL (``$OPENAI_BASE_URL``
and friends when the profile names none), the same key rules (a provider's key only to
its own host), headers, TLS, connect deadline and error messages.  A listing is read
whole, at most :data:`MAX_LIST_BYTES`, within ``timeout`` seconds.

Failures are :class:`~tokentide.errors.TideError` subclasses with one-line messages
naming the URL: :class:`~tokentide.errors.CannotConnect` (exit 3), an
:class:`~tokentide.errors.HTTPStatusError` for 401/403 (the key) and for a server that
has no such listing (404), :class:`~tokentide.errors.ProtocolError` for an answer that is
not a model list, :class:`~tokentide.errors.LimitExceeded`,
:class:`~tokentide.errors.BackendTimeout` (exit 5) and :class:`NoModelList` (exit 2).

:class:`ModelInfo` keeps every string exactly as the server sent it (``id`` is what must
be sent back as ``model``), so whoever *shows* one passes it through
:func:`tokentide.sanitize.sanitize` first; :meth:`ModelInfo.label` and
:meth:`ModelInfo.detail_text` do that for a one-line display.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from tokentide.config.apis import in_process
from tokentide.config.model import Profile
from tokentide.errors import BackendTimeout, ConfigError

__all__ = [
    "LIST_TIMEOUT",
    "MAX_LIST_BYTES",
    "ModelInfo",
    "NoModelList",
    "can_switch",
    "configured_model",
    "is_configured",
    "list_models",
    "with_model",
]

MAX_LIST_BYTES = 8 << 20
"""Most bytes of one listing answer (OpenRouter's whole catalogue is about 1 MB)."""
LIST_TIMEOUT = 30.0
"""Seconds a whole listing may take (connecting included)."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model as its server describes it.  Strings are raw server text."""

    id: str
    """The name to send as ``model`` (Ollama ``llama3.2:latest``, a Triton model name)."""
    context_window: int | None = None
    """Tokens of context the server runs the model with (prompt and answer together),
    where it says: vLLM ``max_model_len``, TGI ``max_total_tokens``, llama.cpp ``n_ctx``
    (else the trained ``n_ctx_train``), the in-process model's ``n_ctx``."""
    owned_by: str | None = None
    """OpenAI's ``owned_by`` (``vllm``, ``llamacpp``, ``system``, ...)."""
    details: Mapping[str, str] = field(default_factory=dict, hash=False)
    """What else the server says, ready to show, in display order: ``size``,
    ``parameters``, ``quantization``, ``family``, ``format``, ``modified`` (Ollama);
    ``max_input_tokens``, ``dtype``, ``version`` (TGI); ``trained_context``
    (llama.cpp); ``name``, ``created`` (Anthropic, OpenAI); ``version``, ``state``,
    ``reason`` (Triton); ``path`` (in-process)."""
    ready: bool = True
    """False for a Triton model that is not loaded (state other than READY): the
    server would refuse it, so a model switcher should not offer it."""

    def __post_init__(self) -> None:
        # A read-only view of a copy: no caller can change an entry another one holds.
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def label(self) -> str:
        """The id, safe to show on one line (sanitised, whitespace collapsed)."""
        from tokentide.sanitize import sanitize_title

        return sanitize_title(self.id, 200) or "(no name)"

    def detail_text(self, limit: int = 160) -> str:
        """``details`` as one sanitised line: ``"size 2.0 GB, quantization Q4_K_M"``."""
        from tokentide.sanitize import sanitize_title

        text = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in self.details.items())
        return sanitize_title(text, limit)


class NoModelList(ConfigError):
    """The profile's api has no way to list models (Substrate, Muna).  Exit 2."""


async def list_models(
    profile: Profile,
    *,
    env: Mapping[str, str] = os.environ,
    timeout: float | None = LIST_TIMEOUT,
) -> list[ModelInfo]:
    """The models ``profile``'s server offers, in the order it lists them.

    Raises :class:`~tokentide.errors.TideError` (see the module docstring); nothing is
    downloaded or loaded, and the backend it opens is closed before it returns.
    """
    from tokentide.backends.registry import api_spec

    api_spec(profile.api)  # an unknown api: ConfigError listing the known ones
    if profile.api in ("substrate", "muna"):
        raise NoModelList(
            f"Profile {profile.name!r} (api {profile.api!r}) talks to a server that has no "
            "model list: the model is chosen by the request itself "
            f"({'graph/node' if profile.api == 'substrate' else 'the prediction tag'}).",
            hint="Set it in the profile; see docs/backends-http.md.",
        )
    if in_process(profile.api):
        from tokentide.backends.models_local import list_in_process

        return list_in_process(profile)
    try:
        async with asyncio.timeout(timeout):
            if profile.api == "triton-grpc":
                from tokentide.backends.models_local import list_triton_grpc

                return await list_triton_grpc(profile, env)
            from tokentide.backends.models_http import list_http

            return await list_http(profile, env)
    except TimeoutError:
        where = profile.url or f"profile {profile.name!r}"
        raise BackendTimeout(
            f"{where} did not send its model list within {timeout:g} s.",
            server=profile.url,
            hint="The server may be busy loading a model; try again.",
        ) from None


def _same_model(listed: str, wanted: str) -> bool:
    if listed == wanted:
        return True
    # Ollama: "llama3.2" means "llama3.2:latest".
    return listed == f"{wanted}:latest" or wanted == f"{listed}:latest"


def is_configured(info: ModelInfo, profile: Profile) -> bool:
    """True when ``info`` is the model ``profile`` asks for (its ``model``; the
    in-process backends list only the model they run)."""
    if in_process(profile.api):
        return True
    return bool(profile.model) and _same_model(info.id, profile.model or "")


def configured_model(models: Sequence[ModelInfo], profile: Profile) -> ModelInfo | None:
    """The entry of ``models`` that ``profile`` uses, or None (no ``model`` set, or the
    server does not list it)."""
    return next((info for info in models if is_configured(info, profile)), None)


def can_switch(profile: Profile) -> bool:
    """Whether :func:`with_model` can point ``profile`` at another listed model (False
    for the in-process backends: their one model is a file or a function)."""
    return not in_process(profile.api) and profile.api not in ("substrate", "muna")


def with_model(profile: Profile, info: ModelInfo) -> Profile:
    """``profile`` asking for ``info`` (its ``model`` replaced; for Triton also its
    ``model_version`` when the listing named one).  Raises :class:`ConfigError` where
    :func:`can_switch` is False."""
    if not can_switch(profile):
        raise ConfigError(
            f"Profile {profile.name!r} (api {profile.api!r}) runs one model; "
            "it cannot switch to another.",
            hint="Add a profile for the other model instead.",
        )
    changed = replace(profile, model=info.id)
    version = info.details.get("version")
    if profile.api.startswith("triton") and version:
        changed = replace(changed, options={**profile.options, "model_version": version})
    return changed
