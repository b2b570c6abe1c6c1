"""Every failure tokentide reports, as one exception hierarchy.

    TideError                     base; ``str(error)`` is written for a person
    ├── ConfigError               a config file, profile or flag is wrong       (exit 2)
    ├── UsageError                the command line is wrong                      (exit 2)
    ├── HistoryError              the conversation store failed                  (exit 4)
    │   └── HistoryBusy           another process holds the store's write lock
    └── BackendError              talking to a model failed                      (exit 4)
        ├── NoAnswer              never got an answer (nothing of one exists)
        │   ├── CannotConnect     nothing answered at the address                (exit 3)
        │   └── ConnectTimeout    the connect deadline passed                    (exit 5)
        ├── ServerAnswered        the server answered, and that is the failure
        │   ├── HTTPStatusError   an error status
        │   │   ├── Overloaded    429/503/529: try again later (``retry_after``)
        │   │   └── GrpcStatusError  a gRPC status: ``code``, ``details`` as gRPC said
        │   ├── ServerError       an error reported inside a 200 stream
        │   ├── ProtocolError     something we cannot parse
        │   │   └── IncompleteStream  the stream ended without its terminator
        │   ├── LimitExceeded     one event or the whole answer was too large
        │   └── IdleTimeout       a stall between content tokens                 (exit 5)
        ├── BackendTimeout        a deadline passed                              (exit 5)
        │   ├── ConnectTimeout    …while connecting                (also NoAnswer)
        │   ├── FirstTokenTimeout …before the first content token (either branch:
        │   │                     headers may or may not have come)
        │   └── IdleTimeout       …between content tokens    (also ServerAnswered)
        └── LocalFunctionError    a local Python backend function raised

The two branches are the question a caller asks ("did anything of an answer come?"):
:class:`NoAnswer` keeps nothing and may be retried where ``retryable``;
:class:`ServerAnswered` may follow a partial answer, which is kept.  Each wire protocol
translates its own failures into these once, at its boundary
(:meth:`tokentide.backends.http.HTTPBackend.errors` for httpx,
:mod:`tokentide.backends.triton_status` for gRPC).

Messages may quote text from a server (untrusted): every message, hint and quoted body is
sanitised and redacted (:func:`tokentide.redact.redact`) when the error is made, so a key
a server echoes back ("Invalid API key: Bearer sk-…") reaches no terminal, history or
export through an error, whoever prints or stores it.

A failure to reach a server (refused, DNS, TLS, connect deadline; HTTP or gRPC) is built
by :func:`cannot_connect`: one line that names the URL and why, and one hint line.
"""

from __future__ import annotations

from tokentide.redact import redact
from tokentide.sanitize import sanitize

__all__ = [
    "EXIT_INTERRUPTED",
    "BackendError",
    "BackendTimeout",
    "CannotConnect",
    "ConfigError",
    "ConnectTimeout",
    "FirstTokenTimeout",
    "GrpcStatusError",
    "HTTPStatusError",
    "HistoryBusy",
    "HistoryError",
    "IdleTimeout",
    "IncompleteStream",
    "LimitExceeded",
    "LocalFunctionError",
    "NoAnswer",
    "Overloaded",
    "ProtocolError",
    "ServerAnswered",
    "ServerError",
    "TideError",
    "UsageError",
    "cannot_connect",
    "connect_hint",
]

EXCERPT = 300
"""How much of an untrusted body an error message quotes."""


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """``text`` shortened to ``limit`` characters, on one line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


EXIT_INTERRUPTED = 130
"""The exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it."""


class TideError(Exception):
    """Base of every error tokentide reports to a person."""

    exit_code = 4
    hint: str | None = None
    """What the user can do about it, shown under the message."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # Messages quote servers, files and exceptions (untrusted): no escape sequence
        # or control byte may reach a terminal through str(error), whoever prints it.
        message = redact(sanitize(message))
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = redact(sanitize(hint))

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ConfigError(TideError):
    exit_code = 2


class UsageError(TideError):
    exit_code = 2


class HistoryError(TideError):
    exit_code = 4


class HistoryBusy(HistoryError):
    """Another process held the history's write lock past the store's busy timeout."""


class BackendError(TideError):
    """Talking to a model failed.  ``server`` names where (a URL, a file, a model)."""

    exit_code = 4
    retryable = False
    """True where trying the same request again may succeed (overload, connect failure)."""

    def __init__(self, message: str, *, server: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.server = None if server is None else redact(server)


class NoAnswer(BackendError):
    """The request never got an answer: nothing was connected to (refused, DNS, TLS) or
    the deadline passed before the server's first byte.  Nothing of an answer exists."""


class ServerAnswered(BackendError):
    """The server answered, and what it answered is the failure: an error status, an
    error inside the stream, something unparseable or too large, a stall mid-answer.
    Text may have arrived before it (the partial answer is kept)."""


class CannotConnect(NoAnswer):
    exit_code = 3
    retryable = True
    """Only where the failure may pass (a connection closed before the answer, a gRPC
    UNAVAILABLE status); :func:`cannot_connect` makes a refused, unresolvable or untrusted
    address final, so it is said once, at once."""


class BackendTimeout(BackendError):
    exit_code = 5


class ConnectTimeout(BackendTimeout, NoAnswer):
    retryable = True


class FirstTokenTimeout(BackendTimeout):
    pass


class IdleTimeout(BackendTimeout, ServerAnswered):
    pass


class HTTPStatusError(ServerAnswered):
    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: str = "",
        server: str | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, server=server, hint=hint)
        self.status = status
        self.body = redact(body)
        self.retry_after = retry_after
        self.retryable = status in (408, 409, 429, 500, 502, 503, 504, 529)


class Overloaded(HTTPStatusError):
    """The server is busy (429, 503, 529, or an in-band ``overloaded`` error)."""


_GRPC_HTTP_STATUS = {
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
    "DEADLINE_EXCEEDED": 504,
}
"""google.rpc's gRPC code -> HTTP status table (``google/rpc/code.proto``)."""


class GrpcStatusError(HTTPStatusError):
    """A gRPC server answered with a status other than OK.  ``code`` is the gRPC status
    name as sent (``"NOT_FOUND"``, ``"UNIMPLEMENTED"``…) and ``details`` its text; the
    inherited ``status`` is the HTTP status of the same failure (google.rpc's mapping,
    unless the translator knows better), so code that asks "did the server answer with
    a status, may it pass?" treats both Triton transports alike."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        details: str = "",
        server: str | None = None,
        hint: str | None = None,
        status: int | None = None,
    ) -> None:
        http = _GRPC_HTTP_STATUS.get(code, 500) if status is None else status
        super().__init__(message, status=http, body=details, server=server, hint=hint)
        self.code = code
        self.details = self.body  # redacted, as the body is


class ServerError(ServerAnswered):
    """An error the server sent inside a stream that had already started with HTTP 200."""

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        server: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, server=server, hint=hint)
        self.kind = kind
        """The server's error type, e.g. TGI's ``overloaded`` or ``validation``."""
        self.retryable = kind in ("overloaded", "overloaded_error")


class ProtocolError(ServerAnswered):
    pass


class IncompleteStream(ProtocolError):
    pass


class LimitExceeded(ServerAnswered):
    pass


class LocalFunctionError(BackendError):
    pass


AD_HOC_PROFILE = "command line"
"""The name of the profile ``--api``/``--url`` make without a config file."""


def connect_hint(
    profile: str | None = None,
    *,
    first: str = "Is the server running? Start it",
    note: str = "",
) -> str:
    """The one hint under a connection failure: start the server or point tide elsewhere
    (at the profile's url when the address came from a named profile).  ``note`` is
    added before the full stop, e.g. a backend's usual port."""
    if profile is None or profile == AD_HOC_PROFILE:
        where = "point tide at another one with --url or a profile"
    else:
        where = f"fix the url of profile {profile!r}"
    return f"{first}, or {where}{note}."


def cannot_connect(
    url: str,
    reason: str,
    *,
    server: str | None = None,
    profile: str | None = None,
    hint: str | None = None,
    timeout: bool = False,
    retryable: bool = False,
) -> CannotConnect | ConnectTimeout:
    """``Cannot connect to URL: REASON.`` on one line (a credential in the URL is masked,
    the reason shortened to one line) and one hint line (:func:`connect_hint` unless
    ``hint``).  ``timeout``: the connect deadline passed (a :class:`ConnectTimeout`,
    exit 5).  Not ``retryable`` unless said: a refused or unresolvable address does not
    start answering a second later, and every retry would say the same thing again."""
    message = f"Cannot connect to {url}: {excerpt(reason, 200).rstrip('.')}."
    hint = excerpt(hint if hint is not None else connect_hint(profile), 400)
    error: CannotConnect | ConnectTimeout
    if timeout:
        error = ConnectTimeout(message, server=server or url, hint=hint)
    else:
        error = CannotConnect(message, server=server or url, hint=hint)
    error.retryable = retryable
    return error
