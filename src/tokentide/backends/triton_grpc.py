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
  :class:`~tokentide.errors.BackendError`, a status the server answered with a
  :class:`~tokentide.errors.GrpcStatusError` (see :mod:`~tokentide.backends.triton_status`).

Before the first generation (once per backend) the model's metadata is read: it checks
that the profile's tensor names exist (a :class:`~tokentide.errors.ConfigError` lists the
ones that do) and gives the tensors' shapes.  :meth:`TritonGRPCBackend.probe` and the
``server_live`` / ``server_ready`` / ``model_ready`` / ``model_metadata`` methods serve
``tide doctor``-style checks.

Deadlines: ``connect`` bounds getting the channel READY (an address that refuses fails at
once with :class:`~tokentide.errors.CannotConnect`); the first-token and idle deadlines are
the generation object's (:mod:`tokentide.generation`), as for every backend: its watchdog
cancels the stream (or the unary ``ModelInfer``), and the server sees ``CANCELLED``.

Limits, the ``yields`` style and the UTF-8 decoding of the output bytes (a character split
across two responses is never garbled) are the shared
:class:`~tokentide.backends.stream_guard.StreamGuard`'s.

The parts, one module each: ``stream_guard`` (shared with every backend), ``triton_tensors`` (the BYTES codec, the metadata check, the
request), ``triton_status`` (the one translator of gRPC failures), ``triton_options``
(the profile), ``triton_channel`` (the channel, health and metadata calls); this module
is the backend.

The generated stubs are tritonclient's (``tritonclient.grpc.service_pb2``): compiling a
second copy of ``grpc_service.proto`` would clash in protobuf's descriptor pool.  This
module is imported only when a ``triton-grpc`` profile is used.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import grpc
import grpc.aio
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from tokentide.backends.base import GenerationRequest, Reply, collect
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.backends.media import backend_label, refuse_images
from tokentide.backends.stream_guard import StreamGuard, Wording
from tokentide.backends.triton_channel import TritonChannel
from tokentide.backends.triton_options import DEFAULT_PORT, Yields, settings_from
from tokentide.backends.triton_status import (
    CallSite,
    GrpcErrors,
    rpc_error,
    stream_error,
)
from tokentide.backends.triton_tensors import (
    FINAL,
    Plan,
    TensorInfo,
    TensorNames,
    check_tensors,
    decode_bytes_tensor,
    encode_bytes_tensor,
    finish_reason,
    infer_request,
    metadata_dict,
    tensor_bytes,
    tensors_from_proto,
)
from tokentide.config.model import Profile
from tokentide.errors import GrpcStatusError, ProtocolError

__all__ = [
    "DEFAULT_PORT",
    "TensorInfo",
    "TritonGRPCBackend",
    "decode_bytes_tensor",
    "encode_bytes_tensor",
    "from_profile",
    "rpc_error",
]

_END_GRACE = 0.5
"""Seconds to wait for the call's end after the final response before cancelling it."""


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
        self.yields: Yields = yields
        self.decoupled = decoupled
        self.names = TensorNames(input_tensor, output_tensor, stream_param, max_tokens_tensor)
        self.channel = TritonChannel(profile, target, credentials=credentials, metadata=metadata)
        self.site = CallSite(server=target, model=model, profile=profile.name)
        """Who is asked for what, for every message of this backend."""
        self._plan: Plan | None = None
        self._plan_lock: asyncio.Lock | None = None

    @property
    def name(self) -> str:
        version = f" v{self.model_version}" if self.model_version else ""
        scheme = "grpcs" if self.channel.credentials is not None else "grpc"
        return f"{self.api} {scheme}://{self.target} ({self.model}{version})"

    @property
    def url(self) -> str:
        """``grpc://host:port``, ``grpcs://…`` or the ``unix:`` path, for messages."""
        return self.channel.url

    @property
    def stub(self) -> pb_grpc.GRPCInferenceServiceStub:
        return self.channel.stub

    async def aclose(self) -> None:
        if self.channel.open:
            self._plan = None
        await self.channel.aclose()

    # -- health and metadata (tide doctor) ---------------------------------------------

    async def server_live(self) -> bool:
        return await self.channel.server_live(self.site)

    async def server_ready(self) -> bool:
        return await self.channel.server_ready(self.site)

    async def model_ready(self) -> bool:
        return await self.channel.model_ready(self.site, self.model_version)

    async def model_metadata(self) -> dict[str, Any]:
        """``{"name", "versions", "platform", "inputs", "outputs"}``; tensors as
        ``{"name", "datatype", "shape"}``."""
        return metadata_dict(await self.channel.model_metadata(self.site, self.model_version))

    async def probe(self) -> dict[str, Any]:
        """Everything a health check shows, never raising: ``server``, ``live``,
        ``ready``, ``model``, ``model_ready``, ``metadata``, ``problems`` (messages of
        what failed, including tensor names the model does not have)."""
        return await self.channel.probe(self.site, self.model_version, self._check_tensors)

    # -- the model's tensors -----------------------------------------------------------

    def _check_tensors(self, inputs: list[TensorInfo], outputs: list[TensorInfo]) -> Plan:
        return check_tensors(
            inputs,
            outputs,
            self.names,
            profile=self.profile.name,
            where=f"model {self.model!r} at {self.target}",
        )

    async def _prepare(self, model: str) -> tuple[pb_grpc.GRPCInferenceServiceStub, Plan]:
        """Connect, and (once) read the model's metadata to check the tensor names."""
        stub = await self.channel.connect()
        if self._plan is not None and model == self.model:
            return stub, self._plan
        if model != self.model:  # a per-request model: trust the profile's tensor names
            return stub, Plan()
        if self._plan_lock is None:
            self._plan_lock = asyncio.Lock()
        async with self._plan_lock:
            if self._plan is None:
                try:
                    response = await self.channel.model_metadata(self.site, self.model_version)
                except GrpcStatusError as error:
                    if error.code != "UNIMPLEMENTED":
                        raise
                    self._plan = Plan()  # no ModelMetadata on this server: trust the profile
                else:
                    self._plan = self._check_tensors(
                        tensors_from_proto(response.inputs), tensors_from_proto(response.outputs)
                    )
        return stub, self._plan

    def build_request(
        self, request: GenerationRequest, plan: Plan, *, stream: bool
    ) -> pb.ModelInferRequest:
        return infer_request(
            request,
            self.profile,
            plan,
            self.names,
            model=request.model or self.model,
            model_version=self.model_version,
            stream=stream,
        )

    def _output(self, response: pb.ModelInferResponse) -> bytes | None:
        """The output tensor's bytes (its elements joined), or None when absent."""
        return tensor_bytes(response, self.names.output, server=self.target, model=self.model)

    def _reason(self, response: pb.ModelInferResponse) -> str | None:
        return finish_reason(response, server=self.target, model=self.model)

    # -- generation --------------------------------------------------------------------

    def stream_guard(self) -> StreamGuard:
        """The limits, yields style and UTF-8 decoding of one answer's responses."""
        where = f"model {self.model!r} at {self.target}"
        return StreamGuard(
            self.profile.limits,
            self.yields,
            wording=Wording(
                f"Model {self.model!r} at {self.target}",
                self.target,
                piece="sent a response",
                whole=f"The answer from {where}",
            ),
        )

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        """The answer's text as it comes.  No deadline of its own: the first-token and
        idle deadlines are the generation's (:class:`~tokentide.generation.Generation`),
        whose watchdog cancels this generator, which cancels the call."""
        refuse_images(request, backend_label(self.profile, "triton-grpc"), self.target)
        stub, plan = await self._prepare(request.model or self.model)
        message = self.build_request(request, plan, stream=True)
        site = self.site
        guard = self.stream_guard()
        started = False
        reason: str | None = None
        asks_reason = plan.finish_reason_shape is not None
        output, server, model = self.names.output, self.target, self.model
        eof = grpc.aio.EOF
        call = stub.ModelStreamInfer(metadata=self.channel.metadata)
        try:
            async with GrpcErrors(site, ready_models=self.channel.ready_models) as errors:
                try:
                    await call.write(message)
                    await call.done_writing()
                except asyncio.InvalidStateError:
                    pass  # the call already ended: its status is raised by read() below
                while True:
                    response = await call.read()
                    if response is eof:
                        break
                    if response.error_message:
                        raise stream_error(response.error_message, site)
                    infer = response.infer_response
                    data = tensor_bytes(infer, output, server=server, model=model)
                    if asks_reason:
                        reason = self._reason(infer) or reason
                    if data:
                        text = guard.data(data)
                        if text:
                            if not started:
                                started = errors.started = True
                            yield TextDelta(text)
                        if guard.exhausted:
                            raise guard.too_long()
                    final = infer.parameters.get(FINAL)
                    if final is not None and final.bool_param:
                        # We half-closed after the one request, so Triton now ends the
                        # call with OK: read that end (briefly) so that the server does
                        # not log a finished answer as cancelled.
                        with contextlib.suppress(TimeoutError, grpc.aio.AioRpcError):
                            async with asyncio.timeout(_END_GRACE):
                                await call.read()
                        break
        finally:
            call.cancel()  # no-op once the call is over; else the server sees CANCELLED
        tail = guard.end()
        if tail:
            yield TextDelta(tail)
        yield Finish(reason)

    async def create(self, request: GenerationRequest) -> Reply:
        refuse_images(request, backend_label(self.profile, "triton-grpc"), self.target)
        if self.decoupled:
            return await collect(self.stream(request))
        stub, plan = await self._prepare(request.model or self.model)
        message = self.build_request(request, plan, stream=False)
        async with GrpcErrors(self.site, ready_models=self.channel.ready_models):
            response = await stub.ModelInfer(message, metadata=self.channel.metadata)
        data = self._output(response)
        if data is None:
            raise ProtocolError(
                f"Model {self.model!r} at {self.target} answered without the output tensor "
                f"{self.names.output!r}.",
                server=self.target,
                hint=f"Check output_tensor in profile {self.profile.name!r}.",
            )
        reason = self._reason(response) if plan.finish_reason_shape is not None else None
        return Reply(text=data.decode("utf-8", "replace"), finish_reason=reason)


def from_profile(profile: Profile, env: Mapping[str, str]) -> TritonGRPCBackend:
    settings = settings_from(profile, env)
    names = settings.names
    return TritonGRPCBackend(
        profile,
        target=settings.target,
        model=settings.model,
        model_version=settings.model_version,
        input_tensor=names.input,
        output_tensor=names.output,
        yields=settings.yields,
        decoupled=settings.decoupled,
        credentials=settings.credentials,
        metadata=settings.metadata,
        stream_param=names.stream_param,
        max_tokens_tensor=names.max_tokens,
    )
