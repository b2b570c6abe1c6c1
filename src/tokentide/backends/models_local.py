"""Model listings that are not one HTTP GET: Triton over gRPC (``RepositoryIndex``) and
the in-process backends, which describe themselves without loading anything.

The ``llamacpp`` entry reads the head of the GGUF file (at most :data:`GGUF_HEAD`
bytes: the metadata keys come before the tokenizer's arrays and the tensors) for the
model's name, size label and trained context; llama-cpp-python is not imported.  The
``local`` entry is the profile's ``target`` as written: the function is not imported
(its module may load a model at import time).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from tokentide.backends.models import ModelInfo
from tokentide.config.model import Profile
from tokentide.errors import ConfigError

__all__ = ["GGUF_HEAD", "gguf_metadata", "list_in_process", "list_triton_grpc"]

GGUF_HEAD = 1 << 20
"""Bytes of a GGUF file read for its metadata."""


# -- in-process -------------------------------------------------------------------------


def list_in_process(profile: Profile) -> list[ModelInfo]:
    if profile.api == "local":
        target = profile.options.get("target")
        if not isinstance(target, str) or not target.strip():
            raise ConfigError(f"Profile {profile.name!r} (api 'local') needs a target.")
        return [ModelInfo(id=target.strip(), owned_by="local", details={"api": "local"})]
    return [_llamacpp_entry(profile)]


def _llamacpp_entry(profile: Profile) -> ModelInfo:
    from tokentide.backends import llamacpp
    from tokentide.backends.models_http import human_bytes

    path = llamacpp.model_file(profile)
    n_ctx = profile.options.get("n_ctx")
    if not isinstance(n_ctx, int) or isinstance(n_ctx, bool) or n_ctx <= 0:
        n_ctx = llamacpp.DEFAULT_N_CTX
    step = llamacpp.CONTEXT_STEP
    meta = gguf_metadata(path)
    arch = meta.get("general.architecture")
    trained = meta.get(f"{arch}.context_length") if isinstance(arch, str) else None
    details = {
        key: value
        for key, value in (
            ("name", _text(meta.get("general.name"))),
            ("parameters", _text(meta.get("general.size_label"))),
            ("family", _text(arch)),
            ("trained_context", _text(trained)),
            ("size", human_bytes(path.stat().st_size)),
            ("path", str(path)),
        )
        if value
    }
    return ModelInfo(
        id=path.name,
        context_window=-(-n_ctx // step) * step,  # as the backend rounds it
        owned_by="llamacpp",
        details=details,
    )


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    return None


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9


class _Short(Exception):
    """The head ended inside a value."""


def gguf_metadata(path: Path, limit: int = GGUF_HEAD) -> dict[str, Any]:
    """The scalar and string metadata keys found in the first ``limit`` bytes of a GGUF
    file (arrays are skipped); ``{}`` for a file that is not GGUF or cannot be read."""
    try:
        with path.open("rb") as file:
            head = file.read(limit)
    except OSError:
        return {}
    if head[:4] != b"GGUF" or len(head) < 24:
        return {}
    version, _tensors, count = struct.unpack_from("<IQQ", head, 4)
    if version < 2:
        return {}
    found: dict[str, Any] = {}
    offset = 24

    def take(fmt: str) -> Any:
        nonlocal offset
        size = struct.calcsize(fmt)
        if offset + size > len(head):
            raise _Short
        (value,) = struct.unpack_from(fmt, head, offset)
        offset += size
        return value

    def string() -> str:
        nonlocal offset
        length = take("<Q")
        if offset + length > len(head):
            raise _Short
        offset += length
        return head[offset - length : offset].decode("utf-8", "replace")

    def value(kind: int) -> Any:
        nonlocal offset
        if kind in _SCALARS:
            return take(_SCALARS[kind])
        if kind == _STRING:
            return string()
        if kind == _ARRAY:
            item, n = take("<I"), take("<Q")
            if item in _SCALARS:
                offset += struct.calcsize(_SCALARS[item]) * n
                if offset > len(head):
                    raise _Short
            else:
                for _ in range(n):
                    value(item)
            return None
        raise _Short  # an unknown type: the rest cannot be read

    try:
        for _ in range(min(count, 10_000)):
            key = string()
            parsed = value(take("<I"))
            if parsed is not None:
                found[key] = parsed
    except (_Short, struct.error, RecursionError):
        pass
    return found


# -- Triton gRPC ------------------------------------------------------------------------


async def list_triton_grpc(profile: Profile, env: Mapping[str, str]) -> list[ModelInfo]:
    from tokentide.backends.models_http import triton_entry
    from tokentide.backends.registry import create_backend
    from tokentide.backends.triton_grpc import TritonGRPCBackend
    from tokentide.backends.triton_status import CallSite

    built = profile if profile.model else replace(profile, model="(listing models)")
    backend = create_backend(built, env)
    assert isinstance(backend, TritonGRPCBackend)
    # The backend's connect deadline and messages; its failures through the one gRPC
    # translator (triton_status), which words them for a listing.
    site = CallSite(backend.target, profile.model or "", profile.name, listing=True)
    try:
        index = await backend.channel.repository_index(site)
    finally:
        await backend.aclose()
    return [triton_entry(m.name, m.version, m.state, m.reason) for m in index.models if m.name]
