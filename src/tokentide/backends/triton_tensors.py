"""Triton's tensors: the BYTES codec, the model's metadata checked against a profile's
tensor names, and an inference request built from a :class:`GenerationRequest`.

Nothing here talks to a server: :func:`check_tensors` reads metadata the caller fetched,
:func:`infer_request` builds a ``ModelInferRequest`` and :func:`tensor_bytes` reads one
output of a ``ModelInferResponse``.
"""

from __future__ import annotations

import itertools
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tritonclient.grpc import service_pb2 as pb

from tokentide.backends.base import GenerationRequest, prompt_text, sampling
from tokentide.config.model import Profile
from tokentide.errors import ConfigError, ProtocolError

__all__ = [
    "ASK_REASON",
    "EMPTY_FINAL",
    "FINAL",
    "REASON",
    "Plan",
    "TensorInfo",
    "TensorNames",
    "check_tensors",
    "decode_bytes_tensor",
    "encode_bytes_tensor",
    "finish_reason",
    "infer_request",
    "metadata_dict",
    "set_param",
    "tensor_bytes",
    "tensors_from_dicts",
    "tensors_from_proto",
]

FINAL = "triton_final_response"
EMPTY_FINAL = "triton_enable_empty_final_response"
ASK_REASON = "return_finish_reason"
REASON = "finish_reason"
"""vLLM's Triton backend: set the BOOL input and it sends why it stopped as this output."""

_LEN = struct.Struct("<I")
_ids = itertools.count(1)


# -- BYTES tensors -----------------------------------------------------------------------


def encode_bytes_tensor(*elements: bytes) -> bytes:
    """Raw contents of a BYTES tensor: each element as a 4-byte LE length, then its bytes."""
    return b"".join(_LEN.pack(len(element)) + element for element in elements)


def decode_bytes_tensor(raw: bytes) -> list[bytes]:
    """The elements of a BYTES tensor's raw contents; ValueError when malformed."""
    if len(raw) >= 4:
        (size,) = _LEN.unpack_from(raw)
        if size + 4 == len(raw):  # the usual case: one element
            return [raw[4:]]
    elements: list[bytes] = []
    offset = 0
    end = len(raw)
    while offset < end:
        if offset + 4 > end:
            raise ValueError(f"truncated length prefix at byte {offset}")
        (size,) = _LEN.unpack_from(raw, offset)
        offset += 4
        if offset + size > end:
            raise ValueError(f"element of {size} bytes at byte {offset} passes the end ({end})")
        elements.append(raw[offset : offset + size])
        offset += size
    return elements


# -- the model's metadata ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    datatype: str
    shape: tuple[int, ...]

    def describe(self) -> str:
        return f"{self.name} ({self.datatype} [{', '.join(map(str, self.shape))}])"


@dataclass(frozen=True, slots=True)
class TensorNames:
    """The tensors a profile names: the prompt, the text, and the optional flags."""

    input: str = "text_input"
    output: str = "text_output"
    stream_param: str | None = None
    max_tokens: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What the model's metadata told us: the shapes to send."""

    input_shape: tuple[int, ...] = (1,)
    stream_shape: tuple[int, ...] = (1,)
    max_tokens_shape: tuple[int, ...] = (1,)
    finish_reason_shape: tuple[int, ...] | None = None
    """The model offers vLLM's ``return_finish_reason`` input and ``finish_reason``
    output (the only way a Triton answer says it stopped at its limit); else None."""


def tensors_from_proto(items: Iterable[Any]) -> list[TensorInfo]:
    """``ModelMetadataResponse.inputs`` / ``.outputs`` as :class:`TensorInfo`."""
    return [TensorInfo(t.name, t.datatype, tuple(t.shape)) for t in items]


def tensors_from_dicts(items: Iterable[Mapping[str, Any]]) -> list[TensorInfo]:
    """The ``{"name", "datatype", "shape"}`` tensors of ``model_metadata()``."""
    return [TensorInfo(t["name"], t["datatype"], tuple(t["shape"])) for t in items]


def metadata_dict(response: pb.ModelMetadataResponse) -> dict[str, Any]:
    """``{"name", "versions", "platform", "inputs", "outputs"}``; tensors as
    ``{"name", "datatype", "shape"}``."""

    def tensors(items: Iterable[Any]) -> list[dict[str, Any]]:
        return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in items]

    return {
        "name": response.name,
        "versions": list(response.versions),
        "platform": response.platform,
        "inputs": tensors(response.inputs),
        "outputs": tensors(response.outputs),
    }


def _send_shape(tensor: TensorInfo | None) -> tuple[int, ...]:
    """One element, with as many dimensions as the model declares (batch included)."""
    return (1,) * max(1, len(tensor.shape)) if tensor else (1,)


def check_tensors(
    inputs: list[TensorInfo],
    outputs: list[TensorInfo],
    names: TensorNames,
    *,
    profile: str,
    where: str,
) -> Plan:
    """The shapes to send, or a :class:`ConfigError` naming the tensors the model has
    when a profile's name is missing or of the wrong type.  ``where``: "model 'x' at
    host:port", for the message."""
    by_input = {t.name: t for t in inputs}
    by_output = {t.name: t for t in outputs}
    wanted = [("input_tensor", names.input, "BYTES")]
    if names.stream_param:
        wanted.append(("stream_param", names.stream_param, "BOOL"))
    if names.max_tokens:
        wanted.append(("max_tokens_tensor", names.max_tokens, "INT32"))
    listed_inputs = ", ".join(t.describe() for t in inputs) or "(none)"
    for option, name, datatype in wanted:
        tensor = by_input.get(name)
        if tensor is None:
            raise ConfigError(
                f"Profile {profile!r}: {option} = {name!r}, but {where} has no "
                f"input tensor {name!r}. Its inputs: {listed_inputs}.",
                hint=f"Set {option} in the profile to one of those names.",
            )
        if tensor.datatype != datatype:
            raise ConfigError(
                f"Profile {profile!r}: {option} = {name!r} is a "
                f"{tensor.datatype} tensor of {where}; tokentide sends {datatype}.",
                hint=f"Its inputs: {listed_inputs}.",
            )
    output = by_output.get(names.output)
    listed_outputs = ", ".join(t.describe() for t in outputs) or "(none)"
    if output is None:
        raise ConfigError(
            f"Profile {profile!r}: output_tensor = {names.output!r}, but "
            f"{where} has no output tensor {names.output!r}. Its outputs: "
            f"{listed_outputs}.",
            hint="Set output_tensor in the profile to one of those names.",
        )
    if output.datatype != "BYTES":
        raise ConfigError(
            f"Profile {profile!r}: output_tensor = {names.output!r} is a "
            f"{output.datatype} tensor of {where}, not text (BYTES).",
            hint=f"Its outputs: {listed_outputs}.",
        )
    asks = by_input.get(ASK_REASON)
    says = by_output.get(REASON)
    offers_reason = (
        asks is not None
        and asks.datatype == "BOOL"
        and says is not None
        and says.datatype == "BYTES"
    )
    return Plan(
        input_shape=_send_shape(by_input[names.input]),
        stream_shape=_send_shape(by_input.get(names.stream_param or "")),
        max_tokens_shape=_send_shape(by_input.get(names.max_tokens or "")),
        finish_reason_shape=_send_shape(asks) if offers_reason else None,
    )


# -- requests ----------------------------------------------------------------------------


def set_param(target: Any, key: str, value: Any) -> None:
    """One entry of a request's ``parameters`` map, typed by the value."""
    param = target[key]
    if isinstance(value, bool):
        param.bool_param = value
    elif isinstance(value, int):
        param.int64_param = value
    elif isinstance(value, float):
        param.double_param = value
    elif isinstance(value, str):
        param.string_param = value
    else:  # lists and tables: as JSON text (e.g. stop sequences)
        param.string_param = json.dumps(value)


def infer_request(
    request: GenerationRequest,
    profile: Profile,
    plan: Plan,
    names: TensorNames,
    *,
    model: str,
    model_version: str,
    stream: bool,
) -> pb.ModelInferRequest:
    """The one ``ModelInferRequest`` of an answer: the prompt, the optional flag and
    ``max_tokens`` tensors, sampling settings and ``params`` as request parameters."""
    message = pb.ModelInferRequest(
        model_name=model, model_version=model_version, id=f"tide-{next(_ids)}"
    )
    raw: list[bytes] = []
    prompt = message.inputs.add()
    prompt.name = names.input
    prompt.datatype = "BYTES"
    prompt.shape.extend(plan.input_shape)
    raw.append(encode_bytes_tensor(prompt_text(request).encode("utf-8")))
    if names.stream_param:
        flag = message.inputs.add()
        flag.name = names.stream_param
        flag.datatype = "BOOL"
        flag.shape.extend(plan.stream_shape)
        raw.append(b"\x01" if stream else b"\x00")
    chosen = sampling(request, profile)
    max_tokens = chosen.get("max_tokens")
    if names.max_tokens and max_tokens is not None:
        limit = message.inputs.add()
        limit.name = names.max_tokens
        limit.datatype = "INT32"
        limit.shape.extend(plan.max_tokens_shape)
        raw.append(struct.pack("<i", max_tokens))
    if plan.finish_reason_shape is not None:
        ask = message.inputs.add()
        ask.name = ASK_REASON
        ask.datatype = "BOOL"
        ask.shape.extend(plan.finish_reason_shape)
        raw.append(b"\x01")
    message.raw_input_contents.extend(raw)
    message.outputs.add().name = names.output
    if plan.finish_reason_shape is not None:
        message.outputs.add().name = REASON
    if request.stop:
        chosen["stop"] = list(request.stop)
    for key, value in chosen.items():
        set_param(message.parameters, key, value)
    for key, value in itertools.chain(profile.params.items(), request.extra.items()):
        set_param(message.parameters, key, value)
    if stream:
        message.parameters[EMPTY_FINAL].bool_param = True
    return message


# -- responses ---------------------------------------------------------------------------


def tensor_bytes(
    response: pb.ModelInferResponse, name: str, *, server: str, model: str
) -> bytes | None:
    """The output tensor ``name``'s bytes (its elements joined), or None when absent; a
    malformed BYTES tensor is a :class:`ProtocolError`."""
    for index, output in enumerate(response.outputs):
        if output.name == name:
            raw = response.raw_output_contents
            if index < len(raw):
                try:
                    elements = decode_bytes_tensor(raw[index])
                except ValueError as error:
                    raise ProtocolError(
                        f"The server at {server} sent a malformed BYTES tensor "
                        f"{name!r} for model {model!r}: {error}.",
                        server=server,
                    ) from None
            else:
                elements = list(output.contents.bytes_contents)
            return elements[0] if len(elements) == 1 else b"".join(elements)
    return None


def finish_reason(response: pb.ModelInferResponse, *, server: str, model: str) -> str | None:
    """vLLM's ``finish_reason`` output, where sent and final (``None`` until then)."""
    data = tensor_bytes(response, REASON, server=server, model=model)
    word = data.decode("utf-8", "replace").strip() if data else ""
    return word if word and word != "None" else None
