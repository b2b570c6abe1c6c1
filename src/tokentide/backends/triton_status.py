"""gRPC failures as tokentide errors, translated in one place: the gRPC boundary.

Every call the ``triton-grpc`` backend makes (the stream, the unary ``ModelInfer``,
health and metadata, the model listing of ``tide models``) runs inside
:class:`GrpcErrors`, which turns a ``grpc.aio.AioRpcError`` into the error a person can
act on with :func:`rpc_error`.  A status the server answered with stays a gRPC status
(:class:`~tokentide.errors.GrpcStatusError`: ``code`` and ``details`` as sent), except
where it means something tokentide already has a type for::

    NOT_FOUND, "unknown model"              GrpcStatusError   has no model (names the ready ones)
    UNAUTHENTICATED, PERMISSION_DENIED,     GrpcStatusError   refused: check the API key
      UNAVAILABLE "restricted … header"
    UNAVAILABLE                             CannotConnect (retryable), or IncompleteStream
                                            once text has arrived
    RESOURCE_EXHAUSTED                      Overloaded        try again later
    DEADLINE_EXCEEDED                       BackendTimeout
    INVALID_ARGUMENT, UNIMPLEMENTED         GrpcStatusError   with the profile key to check
    CANCELLED                               BackendError
    any other                               GrpcStatusError   failed the request

An error the server sends inside the stream (``error_message``) is :func:`stream_error`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import grpc
import grpc.aio

from tokentide.backends.triton_options import DEFAULT_PORT
from tokentide.errors import (
    BackendError,
    BackendTimeout,
    GrpcStatusError,
    IncompleteStream,
    Overloaded,
    ServerError,
    cannot_connect,
    connect_hint,
    excerpt,
)

__all__ = ["CallSite", "GrpcErrors", "rpc_error", "stream_error"]

ReadyModels = Callable[[], Awaitable[Sequence[str] | None]]
"""Asks the server which models are ready (``None`` when it will not say)."""


@dataclass(frozen=True, slots=True)
class CallSite:
    """Who was asked for what, for the messages."""

    server: str
    """``host:port`` as the profile reaches it."""
    model: str
    profile: str
    listing: bool = False
    """The call lists the server's models (``RepositoryIndex``), not one model's."""


class GrpcErrors:
    """``async with GrpcErrors(site) as guard:`` around gRPC calls: an ``AioRpcError``
    leaves it as a tokentide error (:func:`rpc_error`); anything else passes unchanged.

    Set ``guard.started`` once text has arrived (a broken call is then an incomplete
    answer, not a server that cannot be reached).  ``ready_models``: asked on
    ``NOT_FOUND`` so that the message names the models the server does have."""

    __slots__ = ("_ready_models", "site", "started")

    def __init__(self, site: CallSite, *, ready_models: ReadyModels | None = None) -> None:
        self.site = site
        self.started = False
        self._ready_models = ready_models

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not isinstance(error, grpc.aio.AioRpcError):
            return
        models = None
        if error.code() is grpc.StatusCode.NOT_FOUND and self._ready_models is not None:
            models = await self._ready_models()
        site = self.site
        raise rpc_error(
            error,
            server=site.server,
            model=site.model,
            profile=site.profile,
            started=self.started,
            models=models,
            listing=site.listing,
        ) from error


def _details(error: grpc.aio.AioRpcError) -> str:
    return excerpt(error.details() or "") or "(no details)"


def _refused_hint(profile: str) -> str:
    return (
        f"Check the API key: metadata (or api_key_env / headers) in profile {profile!r} "
        "must carry the header the server expects."
    )


def rpc_error(
    error: grpc.aio.AioRpcError,
    *,
    server: str,
    model: str,
    profile: str,
    started: bool = False,
    models: Sequence[str] | None = None,
    listing: bool = False,
) -> BackendError:
    """A gRPC status as the backend error a person can act on (the table above).

    ``started``: text had already arrived.  ``models``: the server's ready models, named
    when the model is unknown.  ``listing``: the call listed the server's models.
    """
    code = error.code()
    name = code.name
    details = _details(error)
    said = f"gRPC {name}: {details}"
    lowered = details.lower()
    if code is grpc.StatusCode.NOT_FOUND or "unknown model" in lowered:
        known = f"It serves: {', '.join(models)}. " if models else ""
        return GrpcStatusError(
            f"The server at {server} has no model {model!r} ({said}).",
            code=name,
            details=details,
            server=server,
            hint=f"{known}Check model (and model_version) in profile {profile!r}; "
            "`tide doctor` lists the ready models.",
            status=404,
        )
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED) or (
        code is grpc.StatusCode.UNAVAILABLE and ("restricted" in lowered or "header" in lowered)
    ):
        # Triton answers UNAVAILABLE "This protocol is restricted, expecting header ..."
        # for an endpoint that needs an access header: not a server that is down.
        what = "to list its models" if listing else f"the request for model {model!r}"
        return GrpcStatusError(
            f"The {'gRPC ' if listing else ''}server at {server} refused {what} ({said}).",
            code=name,
            details=details,
            server=server,
            hint=_refused_hint(profile),
            status=403 if code is grpc.StatusCode.PERMISSION_DENIED else 401,
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
        # Overloaded, as HTTP 429 is: the type that says "try again later" to the retry
        # policy and to every view, whatever the transport.
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
        return GrpcStatusError(
            f"The server at {server} rejected the request for model {model!r}: {details}",
            code=name,
            details=details,
            server=server,
            hint=f"Check the tensor names and params of profile {profile!r} against the "
            "model's configuration (`tide doctor` shows its inputs).",
        )
    if code is grpc.StatusCode.UNIMPLEMENTED:
        if listing:
            message = f"The gRPC server at {server} has no model list ({said})."
            hint = "It does not offer Triton's repository API (RepositoryIndex)."
        else:
            message = f"The server at {server} cannot do this for model {model!r} ({said})."
            hint = (
                f"The model is decoupled: set decoupled = true in profile {profile!r}."
                if "decoupled" in lowered
                else f"Check that url in profile {profile!r} is a Triton / KServe v2 gRPC endpoint."
            )
        return GrpcStatusError(message, code=name, details=details, server=server, hint=hint)
    if code is grpc.StatusCode.CANCELLED:
        return BackendError(
            f"The server at {server} cancelled the request for model {model!r} ({said}).",
            server=server,
        )
    return GrpcStatusError(
        f"The server at {server} failed the request for model {model!r} ({said}).",
        code=name,
        details=details,
        server=server,
    )


def stream_error(message: str, site: CallSite) -> BackendError:
    """An ``error_message`` the server sent inside the stream.  Triton's "unknown model"
    is its ``NOT_FOUND`` (what a status would have said); anything else is the model's
    own :class:`~tokentide.errors.ServerError`."""
    if "unknown model" in message.lower():
        return GrpcStatusError(
            f"The server at {site.server} has no model {site.model!r} ({excerpt(message)}).",
            code="NOT_FOUND",
            details=message,
            server=site.server,
            hint=f"Check model (and model_version) in profile {site.profile!r}.",
        )
    return ServerError(
        f"Model {site.model!r} at {site.server} reported an error: {excerpt(message)}",
        server=site.server,
        hint=None
        if "input" not in message.lower()
        else f"Check the tensor names and params of profile {site.profile!r}.",
    )
