"""A small Triton / KServe v2 gRPC server (``grpc.aio``, tritonclient's stubs) for tests.

Use it from an async test, on the test's own event loop::

    from tests.servers.triton_grpc_server import serve

    async with serve() as server:                     # 127.0.0.1, a free port
        profile = Profile(..., url=server.target, model="toy", params={"tokens": 3})
        ...
        record = server.last()                          # what the client sent / did
        when = await server.wait_cancelled(record)      # monotonic time it saw CANCELLED

or as a process (the benchmark does, so that its CPU is not the client's)::

    python -m tests.servers.triton_grpc_server --port 0    # prints "PORT <n>" when ready

Models (all answer ``ServerLive``/``ServerReady``/``ModelReady``/``ModelMetadata``):

==============  =========================================================================
``toy``         decoupled; inputs ``text_input`` BYTES [1], ``stream`` BOOL [1],
                ``max_tokens`` INT32 [1] (optional); output ``text_output`` BYTES [-1]
``batched``     the same with a batch dimension, TensorRT-LLM style: shapes [-1, 1]
``unary``       not decoupled: ``ModelInfer`` answers the whole text in one response
``renamed``     decoupled; input ``prompt`` BYTES [1], output ``answer`` BYTES [1]
``numeric``     decoupled; output ``text_output`` is FP32 (a wrong profile)
``vllm``        as vLLM's Triton backend: ``toy``'s inputs plus ``return_finish_reason``
                BOOL [1], outputs ``text_output`` and ``finish_reason`` BYTES [-1]; when
                asked, every response carries ``finish_reason``: ``None`` until the last
                token's, then ``length`` (cut at ``max_tokens``) or ``stop``
==============  =========================================================================

``RepositoryIndex`` lists these as ``READY`` and, unless ``ready`` is asked, ``broken``
as ``UNAVAILABLE`` (a model that failed to load).  Any other name is unknown:
``ModelMetadata``/``ModelInfer`` answer ``NOT_FOUND``, and a stream gets Triton's
in-stream error ``Request for unknown model: 'x' is not found``.

Knobs are request parameters (so a profile's ``params`` sets them):

``tokens=N``   N tokens ``w0``, `` w1``, … (default 5); ``text`` instead: the answer,
               split at word starts; ``echo=true``: the answer is the prompt received
``max_tokens`` (tensor or parameter) caps the number of tokens
``delay``      seconds before each token; ``first_delay`` before the first
``cumulative`` each response carries the whole text so far
``contents``   text in ``contents.bytes_contents`` instead of ``raw_output_contents``
``bytes_at``   split the answer into responses of this many *bytes* (UTF-8 crosses)
``error_at=k`` after k tokens send an ``error_message`` response (``error_message``
               sets its text)
``status``     end the call with this gRPC status (a ``StatusCode`` name) after
               ``status_at`` tokens (default 0); ``status_message`` its details
``hang``       send nothing, ever (until the client cancels)
``no_final``   no ``triton_final_response`` flag: the call just ends
``linger``     after the final response keep the call open (until the client cancels)
``stall_at=k`` after k tokens send nothing more until the client cancels

Server-wide: ``serve(api_key=...)`` requires metadata ``x-api-key`` on every call
(``UNAUTHENTICATED`` otherwise); ``serve(tls=(key_pem, cert_pem))`` serves TLS.

Every call leaves a :class:`Record`: the request, the metadata, when each response was
sent, and ``cancelled_at``, the ``time.monotonic()`` at which the handler saw the client's
cancellation, so a test proves the server-side cancellation and its latency.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import re
import struct
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

__all__ = ["MODELS", "Record", "TritonServer", "serve"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    inputs: tuple[tuple[str, str, tuple[int, ...]], ...]
    outputs: tuple[tuple[str, str, tuple[int, ...]], ...]
    decoupled: bool = True

    @property
    def input_name(self) -> str:
        return self.inputs[0][0]

    @property
    def output_name(self) -> str:
        return self.outputs[0][0]

    @property
    def output_names(self) -> frozenset[str]:
        return frozenset(name for name, _, _ in self.outputs)


_TOY_INPUTS = (
    ("text_input", "BYTES", (1,)),
    ("stream", "BOOL", (1,)),
    ("max_tokens", "INT32", (1,)),
)
MODELS = {
    spec.name: spec
    for spec in (
        ModelSpec("toy", _TOY_INPUTS, (("text_output", "BYTES", (-1,)),)),
        ModelSpec(
            "batched",
            tuple((n, t, (-1, 1)) for n, t, _ in _TOY_INPUTS),
            (("text_output", "BYTES", (-1, 1)),),
        ),
        ModelSpec("unary", _TOY_INPUTS, (("text_output", "BYTES", (-1,)),), decoupled=False),
        ModelSpec("renamed", (("prompt", "BYTES", (1,)),), (("answer", "BYTES", (1,)),)),
        ModelSpec("numeric", _TOY_INPUTS, (("text_output", "FP32", (1,)),)),
        ModelSpec(
            "vllm",
            (*_TOY_INPUTS, ("return_finish_reason", "BOOL", (1,))),
            (("text_output", "BYTES", (-1,)), ("finish_reason", "BYTES", (-1,))),
        ),
    )
}


@dataclass
class Record:
    """One call as the server saw it."""

    method: str
    request: pb.ModelInferRequest | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    sent: list[float] = field(default_factory=list)
    """``time.monotonic()`` of each response sent (text or not)."""
    cancelled_at: float | None = None
    status: str | None = None
    """How the handler ended: ``OK``, a status code name, or ``CANCELLED``."""
    done: asyncio.Event = field(default_factory=asyncio.Event)
    asked_finish_reason: bool = False
    """The request set the ``return_finish_reason`` input (vLLM's backend) to true."""

    @property
    def params(self) -> dict[str, Any]:
        return _params(self.request) if self.request is not None else {}

    def tensor(self, name: str) -> tuple[str, list[int], bytes] | None:
        """(datatype, shape, raw contents) of an input tensor the client sent."""
        if self.request is None:
            return None
        for index, tensor in enumerate(self.request.inputs):
            if tensor.name == name:
                raw = self.request.raw_input_contents
                return tensor.datatype, list(tensor.shape), raw[index] if index < len(raw) else b""
        return None

    @property
    def prompt(self) -> str | None:
        if self.request is None or not self.request.inputs:
            return None
        raw = self.request.raw_input_contents[0]
        (size,) = struct.unpack_from("<I", raw)
        return str(raw[4 : 4 + size].decode())


def _params(request: pb.ModelInferRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, param in request.parameters.items():
        kind = param.WhichOneof("parameter_choice")
        out[key] = getattr(param, kind) if kind else None
    return out


def _flag(request: pb.ModelInferRequest, name: str) -> bool:
    """A BOOL input tensor's first element (False when not sent)."""
    for index, tensor in enumerate(request.inputs):
        if tensor.name == name and index < len(request.raw_input_contents):
            return bytes(request.raw_input_contents[index][:1]) == b"\x01"
    return False


def _bytes_tensor(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


class _Servicer(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    def __init__(self, server: TritonServer) -> None:
        self.server = server

    # -- helpers -----------------------------------------------------------------------

    async def _auth(
        self, context: grpc.aio.ServicerContext[Any, Any], method: str
    ) -> dict[str, str]:
        self.server.calls[method] += 1
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        key = self.server.api_key
        if key is not None and metadata.get("x-api-key") != key:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong x-api-key")
        return metadata

    async def _spec(self, name: str, context: grpc.aio.ServicerContext[Any, Any]) -> ModelSpec:
        spec = MODELS.get(name)
        if spec is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"Request for unknown model: '{name}' is not found"
            )
            raise AssertionError("unreachable")
        return spec

    def _answer(self, spec: ModelSpec, request: pb.ModelInferRequest) -> list[bytes]:
        """The answer's pieces, as bytes, one per response."""
        return self._plan(spec, request)[0]

    def _plan(self, spec: ModelSpec, request: pb.ModelInferRequest) -> tuple[list[bytes], bool]:
        """The answer's pieces, and whether ``max_tokens`` cut it."""
        params = _params(request)
        if params.get("echo"):
            raw = request.raw_input_contents[0]
            text = raw[4:].decode()
        elif "text" in params:
            text = str(params["text"])
        else:
            text = " ".join(f"w{i}" for i in range(int(params.get("tokens", 5))))
        pieces = [w.encode() for w in _words(text)]
        limit = params.get("max_tokens")
        for index, tensor in enumerate(request.inputs):
            if tensor.name == "max_tokens" and index < len(request.raw_input_contents):
                (limit,) = struct.unpack("<i", request.raw_input_contents[index])
        cut = limit is not None and len(pieces) > int(limit)
        if limit is not None:
            pieces = pieces[: int(limit)]
        if "bytes_at" in params:
            whole = b"".join(pieces)
            step = int(params["bytes_at"])
            pieces = [whole[i : i + step] for i in range(0, len(whole), step)]
        return pieces, cut

    def _response(
        self,
        spec: ModelSpec,
        request: pb.ModelInferRequest,
        data: bytes | None,
        *,
        final: bool,
        contents: bool = False,
        reason: str | None = None,
    ) -> pb.ModelInferResponse:
        response = pb.ModelInferResponse(model_name=spec.name, model_version="1", id=request.id)
        response.parameters["triton_final_response"].bool_param = final
        if data is not None:
            out = response.outputs.add()
            out.name = spec.output_name
            out.datatype = spec.outputs[0][1]
            out.shape.extend([1])
            if contents:
                out.contents.bytes_contents.append(data)
            else:
                response.raw_output_contents.append(_bytes_tensor(data))
            if reason is not None and not contents:
                why = response.outputs.add()
                why.name = "finish_reason"
                why.datatype = "BYTES"
                why.shape.extend([1])
                response.raw_output_contents.append(_bytes_tensor(reason.encode()))
        return response

    # -- health ------------------------------------------------------------------------

    async def ServerLive(self, request: Any, context: Any) -> pb.ServerLiveResponse:
        await self._auth(context, "ServerLive")
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> pb.ServerReadyResponse:
        await self._auth(context, "ServerReady")
        return pb.ServerReadyResponse(ready=True)

    async def ModelReady(self, request: Any, context: Any) -> pb.ModelReadyResponse:
        await self._auth(context, "ModelReady")
        return pb.ModelReadyResponse(ready=request.name in MODELS)

    async def ModelMetadata(self, request: Any, context: Any) -> pb.ModelMetadataResponse:
        await self._auth(context, "ModelMetadata")
        spec = await self._spec(request.name, context)
        response = pb.ModelMetadataResponse(name=spec.name, versions=["1"], platform="python")
        for name, datatype, shape in spec.inputs:
            response.inputs.add(name=name, datatype=datatype, shape=shape)
        for name, datatype, shape in spec.outputs:
            response.outputs.add(name=name, datatype=datatype, shape=shape)
        return response

    async def RepositoryIndex(self, request: Any, context: Any) -> pb.RepositoryIndexResponse:
        await self._auth(context, "RepositoryIndex")
        response = pb.RepositoryIndexResponse()
        for name in MODELS:
            response.models.add(name=name, version="1", state="READY")
        if not request.ready:  # as Triton lists a model that failed to load
            response.models.add(
                name="broken", version="1", state="UNAVAILABLE", reason="failed to load 'broken'"
            )
        return response

    # -- inference ---------------------------------------------------------------------

    async def ModelInfer(self, request: Any, context: Any) -> pb.ModelInferResponse:
        record = self.server._record("ModelInfer", request, context)
        try:
            await self._auth(context, "ModelInfer")
            spec = await self._spec(request.model_name, context)
            if spec.decoupled:
                await context.abort(
                    grpc.StatusCode.UNIMPLEMENTED,
                    "ModelInfer RPC doesn't support models with decoupled transaction policy",
                )
            params = _params(request)
            if params.get("hang"):
                await asyncio.Event().wait()
            if "status" in params:
                await context.abort(
                    getattr(grpc.StatusCode, str(params["status"])),
                    str(params.get("status_message", f"forced {params['status']}")),
                )
            response = self._response(
                spec, request, b"".join(self._answer(spec, request)), final=True
            )
            record.sent.append(time.monotonic())
            record.status = "OK"
            return response
        except asyncio.CancelledError:
            record.cancelled_at = time.monotonic()
            record.status = "CANCELLED"
            raise
        finally:
            record.done.set()

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[pb.ModelInferRequest], context: Any
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        record = self.server._record("ModelStreamInfer", None, context)
        try:
            await self._auth(context, "ModelStreamInfer")
            async for request in request_iterator:
                record.request = request
                async for response in self._generate(request, record, context):
                    record.sent.append(time.monotonic())
                    yield response
            record.status = record.status or "OK"
        except asyncio.CancelledError:
            record.cancelled_at = time.monotonic()
            record.status = "CANCELLED"
            raise
        finally:
            record.done.set()

    async def _generate(
        self, request: pb.ModelInferRequest, record: Record, context: Any
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        spec = MODELS.get(request.model_name)
        if spec is None:
            yield pb.ModelStreamInferResponse(
                error_message=f"Request for unknown model: '{request.model_name}' is not found"
            )
            return
        params = _params(request)
        if params.get("hang"):
            await asyncio.Event().wait()
        pieces, cut = self._plan(spec, request)
        record.asked_finish_reason = _flag(request, "return_finish_reason")
        error_at = params.get("error_at")
        status_at = int(params.get("status_at", 0)) if "status" in params else None
        stall_at = params.get("stall_at")
        cumulative = bool(params.get("cumulative"))
        contents = bool(params.get("contents"))
        so_far = b""
        for index, piece in enumerate(pieces):
            if index == status_at:
                break
            if index == error_at:
                break
            if index == stall_at:
                await asyncio.Event().wait()
            key = "first_delay" if index == 0 and "first_delay" in params else "delay"
            delay = float(params.get(key, 0))
            if delay:
                await asyncio.sleep(delay)
            so_far += piece
            data = so_far if cumulative else piece
            reason = None
            if record.asked_finish_reason and "finish_reason" in spec.output_names:
                last = index == len(pieces) - 1
                reason = ("length" if cut else "stop") if last else "None"
            yield pb.ModelStreamInferResponse(
                infer_response=self._response(
                    spec, request, data, final=False, contents=contents, reason=reason
                )
            )
        if status_at is not None:
            record.status = str(params["status"])
            await context.abort(
                getattr(grpc.StatusCode, str(params["status"])),
                str(params.get("status_message", f"forced {params['status']}")),
            )
        if error_at is not None and int(error_at) <= len(pieces):
            record.status = "error_message"
            yield pb.ModelStreamInferResponse(
                error_message=str(params.get("error_message", f"boom at token {error_at}"))
            )
            return
        if params.get("no_final"):
            return
        # The flags-only final response (the client set triton_enable_empty_final_response).
        yield pb.ModelStreamInferResponse(
            infer_response=self._response(spec, request, None, final=True)
        )
        if params.get("linger"):
            await asyncio.Event().wait()


class TritonServer:
    """A running test server: its address, and the records of the calls it served."""

    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.port = 0
        self.records: list[Record] = []
        self.calls: collections.Counter[str] = collections.Counter()
        """How many calls of each method arrived."""

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _record(self, method: str, request: Any, context: Any) -> Record:
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        record = Record(method, request, metadata)
        self.records.append(record)
        return record

    def last(self, method: str = "ModelStreamInfer") -> Record:
        return next(r for r in reversed(self.records) if r.method == method)

    async def wait_cancelled(self, record: Record, timeout: float = 5.0) -> float:
        """The monotonic time at which the handler saw the cancellation (waits for the
        handler to end; raises AssertionError if it ended without one)."""
        async with asyncio.timeout(timeout):
            await record.done.wait()
        assert record.cancelled_at is not None, f"the call ended with {record.status}"
        return record.cancelled_at


@contextlib.asynccontextmanager
async def serve(
    *, api_key: str | None = None, tls: tuple[bytes, bytes] | None = None, port: int = 0
) -> AsyncIterator[TritonServer]:
    """Start the server on 127.0.0.1 (``port`` 0: a free one) for the ``async with``."""
    state = TritonServer(api_key=api_key)
    server = grpc.aio.server()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(_Servicer(state), server)
    if tls is None:
        state.port = server.add_insecure_port(f"127.0.0.1:{port}")
    else:
        credentials = grpc.ssl_server_credentials([tls])
        state.port = server.add_secure_port(f"127.0.0.1:{port}", credentials)
    await server.start()
    try:
        yield state
    finally:
        await server.stop(grace=None)


async def _main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Triton gRPC test server")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    async with serve(port=args.port) as server:
        print(f"PORT {server.port}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
