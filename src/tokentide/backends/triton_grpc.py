"""``api = "triton-grpc"``: Triton / KServe v2 gRPC, ``inference.GRPCInferenceService``.

Every Triton deployment of an LLM speaks this (the vLLM and TensorRT-LLM backends, Python
models, NuPIC's streaming models)::

    [profiles.triton]
    api = "triton-grpc"
    url = "127.0.0.1:8001"          # or grpc://host:port; grpcs://host:port for TLS
    model = "vllm_model"            # the Triton model name
    # model_version = "1"           # default: the server's choice
    # input_tensor = "text_input"   # BYTES tensor that carries the prompt
    # output_tensor = "text_output" # BYTES tensor the text comes back in
    # yields = "delta"              # or "cumulative": each response is the whole text so far
    # decoupled = true              # false: `create` uses the unary ModelInfer
    # stream_param = "stream"       # a BOOL input tensor sent as true (vLLM backend)
    # max_tokens_tensor = "max_tokens"  # an INT32 input tensor (TensorRT-LLM ensembles)
    # tls = true                    # implied by grpcs://; ca_file = "ca.pem" for a private CA
    # metadata = { "x-api-key" = "${MY_KEY}" }   # gRPC headers; ${NAME} reads the environment
    params = { temperature = 0.2 }  # request parameters (keys may not start with "triton_")

Wire facts (``shared/reference/protocols.md`` §8.1):

* one ``ModelStreamInfer`` call per generation, carrying one request, so cancelling the call
  cancels exactly this answer: leaving :meth:`TritonGRPCBackend.stream` early (consumer
  closes it, task cancelled) runs ``call.cancel()``, the client sends ``RST_STREAM`` and
  the server sees ``CANCELLED`` at once;
* the prompt is a BYTES tensor (each element a 4-byte little-endian length, then the
  bytes); its shape is ``[1]``, or ``[1, 1]`` where the model's metadata shows a batch
  dimension (TensorRT-LLM ensembles), read from the model's metadata;
* the request sets ``triton_enable_empty_final_response`` so the last response always
  carries ``triton_final_response = true``; a clean end of the call also ends the answer
  (we half-close after the one request, so Triton closes the call once it is done);
* a per-request failure arrives as ``error_message`` inside the stream and becomes a
  :class:`~tokentide.errors.ServerError`; a gRPC status becomes the matching
  :class:`~tokentide.errors.BackendError` (see :func:`rpc_error`).

Before the first generation (once per backend) the model's metadata is read: it checks
that the profile's tensor names exist (a :class:`~tokentide.errors.ConfigError` lists the
ones that do) and gives the tensors' shapes.  :meth:`TritonGRPCBackend.probe` and the
``server_live`` / ``server_ready`` / ``model_ready`` / ``model_metadata`` methods serve
``tide doctor``-style checks.

Deadlines: ``connect`` bounds getting the channel READY (an address that refuses fails at
once with :class:`~tokentide.errors.CannotConnect`), ``first_token`` bounds the wait for the
first text; the idle deadline between tokens is the generation object's.

The generated stubs are tritonclient's (``tritonclient.grpc.service_pb2``): compiling a
second copy of ``grpc_service.proto`` would clash in protobuf's descriptor pool.  This
module is imported only when a ``triton-grpc`` profile is used.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import itertools
import json
import re
import struct
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import grpc
import grpc.aio
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from tokentide import __version__
from tokentide.backends._cumulative import yields_option
from tokentide.backends.base import GenerationRequest, Reply, collect, prompt_text, sampling
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.config.model import Profile
from tokentide.errors import (
    BackendError,
    BackendTimeout,
    ConfigError,
    FirstTokenTimeout,
    HTTPStatusError,
    IncompleteStream,
    LimitExceeded,
    Overloaded,
    ProtocolError,
    ServerError,
    cannot_connect,
    connect_hint,
    excerpt,
)
from tokentide.logsetup import register_secret

__all__ = [
    "DEFAULT_PORT",
    "TensorInfo",
    "TritonGRPCBackend",
    "decode_bytes_tensor",
    "encode_bytes_tensor",
    "from_profile",
    "rpc_error",
]

DEFAULT_PORT = 8001
"""Triton's gRPC port."""

Yields = Literal["delta", "cumulative"]

_FINAL = "triton_final_response"
_EMPTY_FINAL = "triton_enable_empty_final_response"
_END_GRACE = 0.5
"""Seconds to wait for the call's end after the final response before cancelling it."""
_RESERVED_PARAMS = frozenset(
    {
        "sequence_id",
        "sequence_start",
        "sequence_end",
        "priority",
        "timeout",
        "headers",
        "binary_data_output",
    }
)
"""Request parameters Triton (and tritonclient) reserve, besides the ``triton_`` prefix."""

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_METADATA_KEY = re.compile(r"^[0-9a-z_.-]+$")
_LEN = struct.Struct("<I")
_ids = itertools.count(1)

# gRPC status -> the HTTP status the same failure would have (google.rpc's mapping), so
# callers treat both Triton transports alike.
_HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


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


# -- errors ------------------------------------------------------------------------------


def _details(error: grpc.aio.AioRpcError) -> str:
    return excerpt(error.details() or "") or "(no details)"


def rpc_error(
    error: grpc.aio.AioRpcError,
    *,
    server: str,
    model: str,
    profile: str,
    started: bool = False,
    models: Sequence[str] | None = None,
) -> BackendError:
    """A gRPC status as the backend error a person can act on.

    ``started``: text had already arrived (a broken call is then an incomplete answer,
    not a server that cannot be reached).  ``models``: the server's ready models, named
    when the model is unknown.
    """
    code = error.code()
    details = _details(error)
    said = f"gRPC {code.name}: {details}"
    lowered = details.lower()
    status = _HTTP_STATUS.get(code, 500)
    if code is grpc.StatusCode.NOT_FOUND or "unknown model" in lowered:
        known = f"It serves: {', '.join(models)}. " if models else ""
        return HTTPStatusError(
            f"The server at {server} has no model {model!r} ({said}).",
            status=404,
            body=details,
            server=server,
            hint=f"{known}Check model (and model_version) in profile {profile!r}; "
            "`tide doctor` lists the ready models.",
        )
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED) or (
        code is grpc.StatusCode.UNAVAILABLE and ("restricted" in lowered or "header" in lowered)
    ):
        # Triton answers UNAVAILABLE "This protocol is restricted, expecting header ..."
        # for an endpoint that needs an access header.
        return HTTPStatusError(
            f"The server at {server} refused the request for model {model!r} ({said}).",
            status=401 if code is not grpc.StatusCode.PERMISSION_DENIED else 403,
            body=details,
            server=server,
            hint=f"Check the API key: metadata (or api_key_env / headers) in profile {profile!r} "
            "must carry the header the server expects.",
        )
    if code is grpc.StatusCode.UNAVAILABLE:
        if started:
            return IncompleteStream(
                f"The connection to {server} broke in the middle of the answer ({said}).",
                server=server,
            )
        return cannot_connect(
            server,
            said,
            hint=connect_hint(
                profile, note=f" (Triton's gRPC port is {DEFAULT_PORT}; 8000 is HTTP)"
            ),
            retryable=True,  # a status the server (or a proxy) sent: it may pass
        )
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return Overloaded(
            f"The server at {server} is overloaded and refused model {model!r} ({said}; "
            "treated as HTTP 429).",
            status=429,
            body=details,
            server=server,
            hint="Try again later. If the message names a message size, the answer passed "
            "gRPC's receive limit (max_answer_bytes in the profile).",
        )
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return BackendTimeout(
            f"The request to model {model!r} at {server} passed its deadline ({said}).",
            server=server,
        )
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return HTTPStatusError(
            f"The server at {server} rejected the request for model {model!r}: {details}",
            status=400,
            body=details,
            server=server,
            hint=f"Check the tensor names and params of profile {profile!r} against the "
            "model's configuration (`tide doctor` shows its inputs).",
        )
    if code is grpc.StatusCode.UNIMPLEMENTED:
        hint = (
            f"The model is decoupled: set decoupled = true in profile {profile!r}."
            if "decoupled" in lowered
            else f"Check that url in profile {profile!r} is a Triton / KServe v2 gRPC endpoint."
        )
        return HTTPStatusError(
            f"The server at {server} cannot do this for model {model!r} ({said}).",
            status=501,
            body=details,
            server=server,
            hint=hint,
        )
    if code is grpc.StatusCode.CANCELLED:
        return BackendError(
            f"The server at {server} cancelled the request for model {model!r} ({said}).",
            server=server,
        )
    return HTTPStatusError(
        f"The server at {server} failed the request for model {model!r} ({said}).",
        status=status,
        body=details,
        server=server,
    )


# -- the backend -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    datatype: str
    shape: tuple[int, ...]

    def describe(self) -> str:
        return f"{self.name} ({self.datatype} [{', '.join(map(str, self.shape))}])"


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the model's metadata told us: the shapes to send."""

    input_shape: tuple[int, ...] = (1,)
    stream_shape: tuple[int, ...] = (1,)
    max_tokens_shape: tuple[int, ...] = (1,)
    finish_reason_shape: tuple[int, ...] | None = None
    """The model offers vLLM's ``return_finish_reason`` input and ``finish_reason``
    output (the only way a Triton answer says it stopped at its limit); else None."""


_ASK_REASON = "return_finish_reason"
_REASON = "finish_reason"
"""vLLM's Triton backend: set the BOOL input and it sends why it stopped as this output."""


def _send_shape(tensor: TensorInfo | None) -> tuple[int, ...]:
    """One element, with as many dimensions as the model declares (batch included)."""
    return (1,) * max(1, len(tensor.shape)) if tensor else (1,)


def _tensors(items: Any) -> list[TensorInfo]:
    return [TensorInfo(t.name, t.datatype, tuple(t.shape)) for t in items]


def _set_param(target: Any, key: str, value: Any) -> None:
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


class TritonGRPCBackend:
    """A Triton model over gRPC.  One channel per backend; one call per generation."""

    api = "triton-grpc"
    continues_answers = True
    """``text_input`` is raw text: the transcript ends with the partial answer
    (:func:`~tokentide.backends.base.prompt_text`)."""

    def __init__(
        self,
        profile: Profile,
        *,
        target: str,
        model: str,
        model_version: str = "",
        input_tensor: str = "text_input",
        output_tensor: str = "text_output",
        yields: Yields = "delta",
        decoupled: bool = True,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        stream_param: str | None = None,
        max_tokens_tensor: str | None = None,
    ) -> None:
        self.profile = profile
        self.target = target
        self.model = model
        self.model_version = model_version
        self.input_tensor = input_tensor
        self.output_tensor = output_tensor
        self.yields: Yields = yields
        self.decoupled = decoupled
        self.stream_param = stream_param
        self.max_tokens_tensor = max_tokens_tensor
        self._credentials = credentials
        self._metadata = tuple(metadata)
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.GRPCInferenceServiceStub | None = None
        self._plan: _Plan | None = None
        self._plan_lock: asyncio.Lock | None = None

    @property
    def name(self) -> str:
        version = f" v{self.model_version}" if self.model_version else ""
        scheme = "grpcs" if self._credentials is not None else "grpc"
        return f"{self.api} {scheme}://{self.target} ({self.model}{version})"

    # -- channel -----------------------------------------------------------------------

    @property
    def stub(self) -> pb_grpc.GRPCInferenceServiceStub:
        if self._stub is None:
            limit = max(self.profile.limits.max_answer_bytes, 4 << 20)
            options = [
                ("grpc.primary_user_agent", f"tokentide/{__version__}"),
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", -1),
                # After a failed connect, try again soon (the default backoff starts at 1 s
                # and would make a retry right after a server restart fail too).
                ("grpc.initial_reconnect_backoff_ms", 250),
                ("grpc.max_reconnect_backoff_ms", 5000),
            ]
            if self._credentials is not None:
                self._channel = grpc.aio.secure_channel(self.target, self._credentials, options)
            else:
                self._channel = grpc.aio.insecure_channel(self.target, options)
            self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        return self._stub

    async def aclose(self) -> None:
        if self._channel is not None:
            channel, self._channel, self._stub = self._channel, None, None
            self._plan = None
            await channel.close()

    async def _connect(self) -> pb_grpc.GRPCInferenceServiceStub:
        """The stub, once the channel is READY (connect deadline)."""
        stub = self.stub
        assert self._channel is not None
        channel = self._channel
        state = channel.get_state(try_to_connect=True)
        if state is grpc.ChannelConnectivity.READY:
            return stub
        deadline = self.profile.deadlines.connect
        try:
            async with asyncio.timeout(deadline):
                while state is not grpc.ChannelConnectivity.READY:
                    if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                        raise cannot_connect(
                            self.url,
                            "connection refused, or not gRPC (HTTP/2) on that port"
                            + (", or the TLS handshake failed" if self._credentials else ""),
                            server=self.target,
                            hint=self._connect_hint(),
                        )
                    if state is grpc.ChannelConnectivity.SHUTDOWN:
                        raise BackendError(f"The channel to {self.target} was closed.")
                    await channel.wait_for_state_change(state)
                    state = channel.get_state(try_to_connect=True)
        except TimeoutError:
            raise cannot_connect(
                self.url,
                f"no gRPC connection within the connect deadline of {deadline:g} s",
                server=self.target,
                hint=self._connect_hint(),
                timeout=True,
                retryable=True,
            ) from None
        return stub

    @property
    def url(self) -> str:
        """The address as a URL, for messages: ``grpc://host:port``, ``grpcs://…`` or the
        ``unix:`` path as given."""
        if self.target.startswith("unix:"):
            return self.target
        return f"{'grpcs' if self._credentials is not None else 'grpc'}://{self.target}"

    def _connect_hint(self) -> str:
        tls = "; check tls / ca_file" if self._credentials else ""
        return connect_hint(
            self.profile.name,
            note=f" (Triton's gRPC port is {DEFAULT_PORT}; 8000 is HTTP{tls})",
        )

    def _error(self, error: grpc.aio.AioRpcError, *, started: bool = False) -> BackendError:
        return rpc_error(
            error,
            server=self.target,
            model=self.model,
            profile=self.profile.name,
            started=started,
        )

    async def _not_found(self, error: grpc.aio.AioRpcError) -> BackendError:
        """The unknown-model error, naming the models the server has if it will say."""
        models: list[str] | None = None
        if self._stub is not None:
            try:
                index = await self._stub.RepositoryIndex(
                    pb.RepositoryIndexRequest(ready=True), metadata=self._metadata, timeout=2.0
                )
                models = sorted({m.name for m in index.models})
            except grpc.aio.AioRpcError:
                models = None  # Triton may restrict the repository API: say nothing
        return rpc_error(
            error,
            server=self.target,
            model=self.model,
            profile=self.profile.name,
            models=models,
        )

    async def _unary(self, method: str, request: Any) -> Any:
        stub = await self._connect()
        timeout = self.profile.deadlines.connect
        try:
            return await getattr(stub, method)(
                request, metadata=self._metadata, timeout=30.0 if timeout is None else timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                raise await self._not_found(error) from error
            raise self._error(error) from error

    # -- health and metadata (tide doctor) ---------------------------------------------

    async def server_live(self) -> bool:
        return bool((await self._unary("ServerLive", pb.ServerLiveRequest())).live)

    async def server_ready(self) -> bool:
        return bool((await self._unary("ServerReady", pb.ServerReadyRequest())).ready)

    async def model_ready(self) -> bool:
        request = pb.ModelReadyRequest(name=self.model, version=self.model_version)
        return bool((await self._unary("ModelReady", request)).ready)

    async def model_metadata(self) -> dict[str, Any]:
        """``{"name", "versions", "platform", "inputs", "outputs"}``; tensors as
        ``{"name", "datatype", "shape"}``."""
        request = pb.ModelMetadataRequest(name=self.model, version=self.model_version)
        response = await self._unary("ModelMetadata", request)
        return {
            "name": response.name,
            "versions": list(response.versions),
            "platform": response.platform,
            "inputs": [
                {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                for t in response.inputs
            ],
            "outputs": [
                {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                for t in response.outputs
            ],
        }

    async def probe(self) -> dict[str, Any]:
        """Everything a health check shows, never raising: ``server``, ``live``,
        ``ready``, ``model``, ``model_ready``, ``metadata``, ``problems`` (messages of
        what failed, including tensor names the model does not have)."""
        result: dict[str, Any] = {
            "server": self.target,
            "model": self.model,
            "live": None,
            "ready": None,
            "model_ready": None,
            "metadata": None,
            "problems": [],
        }
        try:
            result["live"] = await self.server_live()
            result["ready"] = await self.server_ready()
            result["model_ready"] = await self.model_ready()
            metadata = await self.model_metadata()
            result["metadata"] = metadata
            self._check_tensors(
                _tensors_from(metadata["inputs"]), _tensors_from(metadata["outputs"])
            )
        except (BackendError, ConfigError) as error:
            result["problems"].append(str(error))
        return result

    # -- the model's tensors -----------------------------------------------------------

    def _check_tensors(self, inputs: list[TensorInfo], outputs: list[TensorInfo]) -> _Plan:
        by_input = {t.name: t for t in inputs}
        by_output = {t.name: t for t in outputs}
        where = f"model {self.model!r} at {self.target}"
        wanted = [("input_tensor", self.input_tensor, "BYTES")]
        if self.stream_param:
            wanted.append(("stream_param", self.stream_param, "BOOL"))
        if self.max_tokens_tensor:
            wanted.append(("max_tokens_tensor", self.max_tokens_tensor, "INT32"))
        listed_inputs = ", ".join(t.describe() for t in inputs) or "(none)"
        for option, name, datatype in wanted:
            tensor = by_input.get(name)
            if tensor is None:
                raise ConfigError(
                    f"Profile {self.profile.name!r}: {option} = {name!r}, but {where} has no "
                    f"input tensor {name!r}. Its inputs: {listed_inputs}.",
                    hint=f"Set {option} in the profile to one of those names.",
                )
            if tensor.datatype != datatype:
                raise ConfigError(
                    f"Profile {self.profile.name!r}: {option} = {name!r} is a "
                    f"{tensor.datatype} tensor of {where}; tokentide sends {datatype}.",
                    hint=f"Its inputs: {listed_inputs}.",
                )
        output = by_output.get(self.output_tensor)
        listed_outputs = ", ".join(t.describe() for t in outputs) or "(none)"
        if output is None:
            raise ConfigError(
                f"Profile {self.profile.name!r}: output_tensor = {self.output_tensor!r}, but "
                f"{where} has no output tensor {self.output_tensor!r}. Its outputs: "
                f"{listed_outputs}.",
                hint="Set output_tensor in the profile to one of those names.",
            )
        if output.datatype != "BYTES":
            raise ConfigError(
                f"Profile {self.profile.name!r}: output_tensor = {self.output_tensor!r} is a "
                f"{output.datatype} tensor of {where}, not text (BYTES).",
                hint=f"Its outputs: {listed_outputs}.",
            )
        asks = by_input.get(_ASK_REASON)
        says = by_output.get(_REASON)
        offers_reason = (
            asks is not None
            and asks.datatype == "BOOL"
            and says is not None
            and says.datatype == "BYTES"
        )
        return _Plan(
            input_shape=_send_shape(by_input[self.input_tensor]),
            stream_shape=_send_shape(by_input.get(self.stream_param or "")),
            max_tokens_shape=_send_shape(by_input.get(self.max_tokens_tensor or "")),
            finish_reason_shape=_send_shape(asks) if offers_reason else None,
        )

    async def _prepare(self, model: str) -> tuple[pb_grpc.GRPCInferenceServiceStub, _Plan]:
        """Connect, and (once) read the model's metadata to check the tensor names."""
        stub = await self._connect()
        if self._plan is not None and model == self.model:
            return stub, self._plan
        if model != self.model:  # a per-request model: trust the profile's tensor names
            return stub, _Plan()
        if self._plan_lock is None:
            self._plan_lock = asyncio.Lock()
        async with self._plan_lock:
            if self._plan is None:
                request = pb.ModelMetadataRequest(name=self.model, version=self.model_version)
                try:
                    response = await self._unary("ModelMetadata", request)
                except HTTPStatusError as error:
                    if error.status != 501:
                        raise
                    self._plan = _Plan()  # no ModelMetadata on this server: trust the profile
                else:
                    self._plan = self._check_tensors(
                        _tensors(response.inputs), _tensors(response.outputs)
                    )
        return stub, self._plan

    # -- requests ----------------------------------------------------------------------

    def build_request(
        self, request: GenerationRequest, plan: _Plan, *, stream: bool
    ) -> pb.ModelInferRequest:
        model = request.model or self.model
        message = pb.ModelInferRequest(
            model_name=model, model_version=self.model_version, id=f"tide-{next(_ids)}"
        )
        raw: list[bytes] = []
        prompt = message.inputs.add()
        prompt.name = self.input_tensor
        prompt.datatype = "BYTES"
        prompt.shape.extend(plan.input_shape)
        raw.append(encode_bytes_tensor(prompt_text(request).encode("utf-8")))
        if self.stream_param:
            flag = message.inputs.add()
            flag.name = self.stream_param
            flag.datatype = "BOOL"
            flag.shape.extend(plan.stream_shape)
            raw.append(b"\x01" if stream else b"\x00")
        chosen = sampling(request, self.profile)
        max_tokens = chosen.get("max_tokens")
        if self.max_tokens_tensor and max_tokens is not None:
            limit = message.inputs.add()
            limit.name = self.max_tokens_tensor
            limit.datatype = "INT32"
            limit.shape.extend(plan.max_tokens_shape)
            raw.append(struct.pack("<i", max_tokens))
        if plan.finish_reason_shape is not None:
            ask = message.inputs.add()
            ask.name = _ASK_REASON
            ask.datatype = "BOOL"
            ask.shape.extend(plan.finish_reason_shape)
            raw.append(b"\x01")
        message.raw_input_contents.extend(raw)
        message.outputs.add().name = self.output_tensor
        if plan.finish_reason_shape is not None:
            message.outputs.add().name = _REASON
        profile = self.profile
        if request.stop:
            chosen["stop"] = list(request.stop)
        for key, value in chosen.items():
            _set_param(message.parameters, key, value)
        for key, value in itertools.chain(profile.params.items(), request.extra.items()):
            _set_param(message.parameters, key, value)
        if stream:
            message.parameters[_EMPTY_FINAL].bool_param = True
        return message

    def _output(self, response: pb.ModelInferResponse) -> bytes | None:
        """The output tensor's bytes (its elements joined), or None when absent."""
        return self._tensor_bytes(response, self.output_tensor)

    def _reason(self, response: pb.ModelInferResponse) -> str | None:
        """vLLM's ``finish_reason`` output, where sent and final (``None`` until then)."""
        data = self._tensor_bytes(response, _REASON)
        word = data.decode("utf-8", "replace").strip() if data else ""
        return word if word and word != "None" else None

    def _tensor_bytes(self, response: pb.ModelInferResponse, name: str) -> bytes | None:
        for index, output in enumerate(response.outputs):
            if output.name == name:
                raw = response.raw_output_contents
                if index < len(raw):
                    try:
                        elements = decode_bytes_tensor(raw[index])
                    except ValueError as error:
                        raise ProtocolError(
                            f"The server at {self.target} sent a malformed BYTES tensor "
                            f"{name!r} for model {self.model!r}: {error}.",
                            server=self.target,
                        ) from None
                else:
                    elements = list(output.contents.bytes_contents)
                return elements[0] if len(elements) == 1 else b"".join(elements)
        return None

    def _server_error(self, message: str) -> BackendError:
        if "unknown model" in message.lower():
            return HTTPStatusError(
                f"The server at {self.target} has no model {self.model!r} ({excerpt(message)}).",
                status=404,
                body=message,
                server=self.target,
                hint=f"Check model (and model_version) in profile {self.profile.name!r}.",
            )
        return ServerError(
            f"Model {self.model!r} at {self.target} reported an error: {excerpt(message)}",
            server=self.target,
            hint=None
            if "input" not in message.lower()
            else f"Check the tensor names and params of profile {self.profile.name!r}.",
        )

    # -- generation --------------------------------------------------------------------

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        stub, plan = await self._prepare(request.model or self.model)
        message = self.build_request(request, plan, stream=True)
        cumulative = self.yields == "cumulative"
        max_event = self.profile.limits.max_event_bytes
        max_answer = self.profile.limits.max_answer_bytes
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        so_far = b""  # cumulative mode: the whole answer so far
        received = 0
        first_token = self.profile.deadlines.first_token
        loop = asyncio.get_running_loop()
        deadline = None if first_token is None else loop.time() + first_token
        started = False
        reason: str | None = None
        eof = grpc.aio.EOF
        call = stub.ModelStreamInfer(metadata=self._metadata)
        try:
            try:
                try:
                    await call.write(message)
                    await call.done_writing()
                except asyncio.InvalidStateError:
                    pass  # the call already ended: its status is raised by read() below
                while True:
                    if started:
                        response = await call.read()
                    else:
                        async with asyncio.timeout_at(deadline):
                            response = await call.read()
                    if response is eof:
                        break
                    if response.error_message:
                        raise self._server_error(response.error_message)
                    infer = response.infer_response
                    data = self._output(infer)
                    if plan.finish_reason_shape is not None:
                        reason = self._reason(infer) or reason
                    if data:
                        size = len(data)
                        received += size
                        if size > max_event or received > max_answer:
                            raise LimitExceeded(
                                f"The answer from model {self.model!r} at {self.target} passed "
                                f"{max_event if size > max_event else max_answer:,} bytes; "
                                "stopped reading.",
                                server=self.target,
                                hint="Raise max_event_bytes / max_answer_bytes in the profile "
                                "if this is expected.",
                            )
                        if cumulative:
                            if not data.startswith(so_far):
                                raise ProtocolError(
                                    f"Model {self.model!r} at {self.target} should send the "
                                    'whole text so far (yields = "cumulative"), but a response '
                                    f"does not extend the previous one: after "
                                    f"{excerpt(so_far.decode('utf-8', 'replace'), 80)!r} came "
                                    f"{excerpt(data.decode('utf-8', 'replace'), 80)!r}.",
                                    server=self.target,
                                    hint='If each response is new text, set yields = "delta".',
                                )
                            data, so_far = data[len(so_far) :], data
                        text = decoder.decode(data)
                        if text:
                            started = True
                            yield TextDelta(text)
                    final = infer.parameters.get(_FINAL)
                    if final is not None and final.bool_param:
                        # We half-closed after the one request, so Triton now ends the
                        # call with OK: read that end (briefly) so that the server does
                        # not log a finished answer as cancelled.
                        with contextlib.suppress(TimeoutError, grpc.aio.AioRpcError):
                            async with asyncio.timeout(_END_GRACE):
                                await call.read()
                        break
            except TimeoutError:
                raise FirstTokenTimeout(
                    f"Model {self.model!r} at {self.target} sent no text within the "
                    f"first-token deadline of {first_token:g} s.",
                    server=self.target,
                    hint="Raise first_token_timeout in the profile for slow prompts.",
                ) from None
            except grpc.aio.AioRpcError as error:
                if error.code() is grpc.StatusCode.NOT_FOUND:
                    raise await self._not_found(error) from error
                raise self._error(error, started=started) from error
        finally:
            call.cancel()  # no-op once the call is over; else the server sees CANCELLED
        tail = decoder.decode(b"", final=True)
        if tail:
            yield TextDelta(tail)
        yield Finish(reason)

    async def create(self, request: GenerationRequest) -> Reply:
        if self.decoupled:
            return await collect(self.stream(request))
        stub, plan = await self._prepare(request.model or self.model)
        message = self.build_request(request, plan, stream=False)
        first_token = self.profile.deadlines.first_token
        try:
            async with asyncio.timeout(first_token):
                response = await stub.ModelInfer(message, metadata=self._metadata)
        except TimeoutError:
            raise FirstTokenTimeout(
                f"Model {self.model!r} at {self.target} did not answer within the "
                f"first-token deadline of {first_token:g} s.",
                server=self.target,
                hint="Raise first_token_timeout in the profile for slow prompts.",
            ) from None
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                raise await self._not_found(error) from error
            raise self._error(error) from error
        data = self._output(response)
        if data is None:
            raise ProtocolError(
                f"Model {self.model!r} at {self.target} answered without the output tensor "
                f"{self.output_tensor!r}.",
                server=self.target,
                hint=f"Check output_tensor in profile {self.profile.name!r}.",
            )
        reason = self._reason(response) if plan.finish_reason_shape is not None else None
        return Reply(text=data.decode("utf-8", "replace"), finish_reason=reason)


def _tensors_from(items: list[dict[str, Any]]) -> list[TensorInfo]:
    return [TensorInfo(t["name"], t["datatype"], tuple(t["shape"])) for t in items]


# -- the profile -------------------------------------------------------------------------


def _target(url: str, profile: str) -> tuple[str, bool]:
    """(``host:port``, TLS?) from ``host:port``, ``grpc://`` or ``grpcs://`` (or ``unix:``)."""
    url = url.strip()
    if url.startswith("unix:"):
        return url, False
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        raise ConfigError(
            f"Profile {profile!r}: url {url!r} is an HTTP URL; gRPC takes host:port "
            f"(e.g. 127.0.0.1:{DEFAULT_PORT}) or grpc://host:port.",
            hint='For Triton\'s HTTP port use api = "triton-http".',
        )
    if scheme not in ("", "grpc", "grpcs"):
        raise ConfigError(
            f"Profile {profile!r}: url {url!r} has scheme {scheme!r}; use host:port, "
            "grpc://host:port or grpcs://host:port."
        )
    host = rest.rstrip("/")
    if not host or "/" in host:
        raise ConfigError(
            f"Profile {profile!r}: url {url!r} is not host:port (gRPC takes no path).",
            hint=f'Write url = "127.0.0.1:{DEFAULT_PORT}".',
        )
    bare = host.rsplit("]", 1)[-1]  # an [IPv6] literal has colons of its own
    if ":" not in bare:
        host = f"{host}:{DEFAULT_PORT}"
    return host, scheme == "grpcs"


def _option_str(profile: Profile, key: str, default: str | None) -> str | None:
    value = profile.options.get(key, default)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and key == "model_version":
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"Profile {profile.name!r}: {key} must be a non-empty string, not {value!r}."
        )
    return value.strip()


def _option_bool(profile: Profile, key: str, default: bool | None) -> bool | None:
    value = profile.options.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"Profile {profile.name!r}: {key} must be true or false, not {value!r}.")
    return value


def _expand(value: str, env: Mapping[str, str], profile: str, key: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(
                f"Profile {profile!r}: metadata {key!r} reads the environment variable "
                f"{name}, which is not set.",
                hint=f"export {name}=... before starting tide.",
            )
        return env[name]

    return _ENV_REF.sub(sub, value)


def _metadata(profile: Profile, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """gRPC metadata: profile ``headers``, then ``metadata`` (``${NAME}`` expanded), then
    ``authorization: Bearer <key>`` from ``api_key_env`` unless already given."""
    raw = profile.options.get("metadata", {})
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"Profile {profile.name!r}: metadata must be a table of header names to values.",
            hint='e.g. metadata = { "x-api-key" = "${MY_API_KEY}" }',
        )
    pairs: dict[str, str] = {}
    for source in (profile.headers, raw):
        for key, value in source.items():
            name = str(key).lower()
            if not _METADATA_KEY.match(name) or name.startswith("grpc-"):
                raise ConfigError(
                    f"Profile {profile.name!r}: {key!r} cannot be a gRPC metadata key.",
                    hint="Use lower-case letters, digits, '-', '_' and '.'; 'grpc-' is reserved.",
                )
            if not isinstance(value, str):
                raise ConfigError(
                    f"Profile {profile.name!r}: metadata {key!r} must be a string, not {value!r}."
                )
            pairs[name] = _expand(value, env, profile.name, name)
            if pairs[name] != value:  # filled from the environment: treat it as a secret
                register_secret(pairs[name])
    key = profile.resolve_api_key(env)
    if key:
        register_secret(key)
        if "authorization" not in pairs:
            pairs["authorization"] = f"Bearer {key}"
    return list(pairs.items())


def _params(profile: Profile) -> None:
    for key, value in profile.params.items():
        if key.startswith("triton_") or key in _RESERVED_PARAMS:
            raise ConfigError(
                f"Profile {profile.name!r}: params key {key!r} is reserved by Triton "
                "(keys starting with 'triton_' and "
                f"{', '.join(sorted(_RESERVED_PARAMS))}).",
                hint="Remove it from params.",
            )
        if value is None:
            raise ConfigError(f"Profile {profile.name!r}: params key {key!r} has no value.")


def from_profile(profile: Profile, env: Mapping[str, str]) -> TritonGRPCBackend:
    if not profile.url:
        raise ConfigError(
            f"Profile {profile.name!r} (api 'triton-grpc') has no url.",
            hint=f'Add url = "127.0.0.1:{DEFAULT_PORT}" to the profile.',
        )
    if not profile.model:
        raise ConfigError(
            f"Profile {profile.name!r} (api 'triton-grpc') has no model.",
            hint='Add model = "..." (the Triton model name) to the profile.',
        )
    target, grpcs = _target(profile.url, profile.name)
    tls = _option_bool(profile, "tls", None)
    if tls is False and grpcs:
        raise ConfigError(
            f"Profile {profile.name!r}: url {profile.url!r} asks for TLS but tls = false."
        )
    ca_file = _option_str(profile, "ca_file", None)
    credentials: grpc.ChannelCredentials | None = None
    if tls or grpcs or ca_file:
        root: bytes | None = None
        if ca_file:
            path = Path(ca_file).expanduser()
            try:
                root = path.read_bytes()
            except OSError as error:
                raise ConfigError(
                    f"Profile {profile.name!r}: cannot read ca_file {str(path)!r}: "
                    f"{error.strerror or error}."
                ) from None
        credentials = grpc.ssl_channel_credentials(root_certificates=root)
    # Cumulative outputs are compared as bytes (a response may end inside a UTF-8
    # character), so this backend has its own prefix check and no "auto" style.
    yields = yields_option(profile.options, profile.name, styles=("delta", "cumulative"))
    _params(profile)
    return TritonGRPCBackend(
        profile,
        target=target,
        model=profile.model,
        model_version=_option_str(profile, "model_version", None) or "",
        input_tensor=_option_str(profile, "input_tensor", "text_input") or "text_input",
        output_tensor=_option_str(profile, "output_tensor", "text_output") or "text_output",
        yields="cumulative" if yields == "cumulative" else "delta",
        decoupled=_option_bool(profile, "decoupled", True) is not False,
        credentials=credentials,
        metadata=_metadata(profile, env),
        stream_param=_option_str(profile, "stream_param", None),
        max_tokens_tensor=_option_str(profile, "max_tokens_tensor", None),
    )
