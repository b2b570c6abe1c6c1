"""The gRPC channel to one Triton server, and its health and metadata calls.

One channel per backend, made on first use: READY within the profile's connect deadline
(an address that refuses fails at once with :class:`~tokentide.errors.CannotConnect`),
reconnecting soon after a failure.  Unary calls (health, metadata, the repository index)
run inside the one translator, :class:`~tokentide.backends.triton_status.GrpcErrors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import grpc.aio
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from tokentide import __version__
from tokentide.backends.triton_options import DEFAULT_PORT
from tokentide.backends.triton_status import CallSite, GrpcErrors
from tokentide.backends.triton_tensors import TensorInfo, metadata_dict, tensors_from_dicts
from tokentide.config.model import Profile
from tokentide.errors import BackendError, ConfigError, cannot_connect, connect_hint

__all__ = ["TritonChannel"]

_INDEX_TIMEOUT = 2.0
"""Seconds the list of ready models may take when it only decorates an error."""


class TritonChannel:
    """``grpc.aio`` channel and stub for ``target``, with the profile's limits, deadlines
    and metadata."""

    def __init__(
        self,
        profile: Profile,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.profile = profile
        self.target = target
        self.credentials = credentials
        self.metadata = tuple(metadata)
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.GRPCInferenceServiceStub | None = None

    @property
    def url(self) -> str:
        """The address as a URL, for messages: ``grpc://host:port``, ``grpcs://…`` or the
        ``unix:`` path as given."""
        if self.target.startswith("unix:"):
            return self.target
        return f"{'grpcs' if self.credentials is not None else 'grpc'}://{self.target}"

    @property
    def open(self) -> bool:
        return self._channel is not None

    @property
    def stub(self) -> pb_grpc.GRPCInferenceServiceStub:
        """The stub, making the channel on first use (it connects lazily)."""
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
            if self.credentials is not None:
                self._channel = grpc.aio.secure_channel(self.target, self.credentials, options)
            else:
                self._channel = grpc.aio.insecure_channel(self.target, options)
            self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        return self._stub

    async def aclose(self) -> None:
        if self._channel is not None:
            channel, self._channel, self._stub = self._channel, None, None
            await channel.close()

    def connect_hint(self) -> str:
        tls = "; check tls / ca_file" if self.credentials else ""
        return connect_hint(
            self.profile.name,
            note=f" (Triton's gRPC port is {DEFAULT_PORT}; 8000 is HTTP{tls})",
        )

    async def connect(self) -> pb_grpc.GRPCInferenceServiceStub:
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
                            + (", or the TLS handshake failed" if self.credentials else ""),
                            server=self.target,
                            hint=self.connect_hint(),
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
                hint=self.connect_hint(),
                timeout=True,
                retryable=True,
            ) from None
        return stub

    async def ready_models(self) -> list[str] | None:
        """The names of the server's ready models, or None where it will not say (Triton
        may restrict the repository API) or has no channel yet."""
        if self._stub is None:
            return None
        try:
            index = await self._stub.RepositoryIndex(
                pb.RepositoryIndexRequest(ready=True),
                metadata=self.metadata,
                timeout=_INDEX_TIMEOUT,
            )
        except grpc.aio.AioRpcError:
            return None
        return sorted({m.name for m in index.models})

    async def unary(self, method: str, request: Any, site: CallSite) -> Any:
        """One unary call (connect deadline, else 30 s), its failures translated."""
        stub = await self.connect()
        timeout = self.profile.deadlines.connect
        ready = None if site.listing else self.ready_models
        async with GrpcErrors(site, ready_models=ready):
            return await getattr(stub, method)(
                request, metadata=self.metadata, timeout=30.0 if timeout is None else timeout
            )

    # -- health and metadata (tide doctor) ---------------------------------------------

    async def server_live(self, site: CallSite) -> bool:
        return bool((await self.unary("ServerLive", pb.ServerLiveRequest(), site)).live)

    async def server_ready(self, site: CallSite) -> bool:
        return bool((await self.unary("ServerReady", pb.ServerReadyRequest(), site)).ready)

    async def model_ready(self, site: CallSite, version: str) -> bool:
        request = pb.ModelReadyRequest(name=site.model, version=version)
        return bool((await self.unary("ModelReady", request, site)).ready)

    async def model_metadata(self, site: CallSite, version: str) -> pb.ModelMetadataResponse:
        request = pb.ModelMetadataRequest(name=site.model, version=version)
        return await self.unary("ModelMetadata", request, site)

    async def repository_index(self, site: CallSite) -> pb.RepositoryIndexResponse:
        """Every model of the repository, ready or not (``tide models``)."""
        return await self.unary("RepositoryIndex", pb.RepositoryIndexRequest(), site)

    async def probe(
        self,
        site: CallSite,
        version: str,
        check: Callable[[list[TensorInfo], list[TensorInfo]], object],
    ) -> dict[str, Any]:
        """Everything a health check shows, never raising: ``server``, ``live``,
        ``ready``, ``model``, ``model_ready``, ``metadata``, ``problems`` (messages of
        what failed, including what ``check`` says of the model's tensors)."""
        result: dict[str, Any] = {
            "server": self.target,
            "model": site.model,
            "live": None,
            "ready": None,
            "model_ready": None,
            "metadata": None,
            "problems": [],
        }
        try:
            result["live"] = await self.server_live(site)
            result["ready"] = await self.server_ready(site)
            result["model_ready"] = await self.model_ready(site, version)
            metadata = metadata_dict(await self.model_metadata(site, version))
            result["metadata"] = metadata
            check(tensors_from_dicts(metadata["inputs"]), tensors_from_dicts(metadata["outputs"]))
        except (BackendError, ConfigError) as error:
            result["problems"].append(str(error))
        return result
