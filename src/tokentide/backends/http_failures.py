"""What went wrong talking to an HTTP server, as a message for a person: transport
failures (a refused connection, an untrusted certificate, a broken stream), error
statuses with their bodies, and a 200 answer that is not the stream asked for."""

from __future__ import annotations

import socket
import ssl
from typing import TypeVar

import httpx

from tokentide.backends.http_errors import (
    describe_body,
    error_from_body,
    parse_error_text,
    parse_json,
    parse_retry_after,
)
from tokentide.config.model import Profile
from tokentide.errors import (
    BackendError,
    BackendTimeout,
    CannotConnect,
    HTTPStatusError,
    IncompleteStream,
    Overloaded,
    ProtocolError,
    ServerError,
    cannot_connect,
    connect_hint,
    excerpt,
)

__all__ = ["check_stream_type", "status_error", "transport_error"]

_E = TypeVar("_E", bound=BaseException)


def transport_error(
    error: httpx.HTTPError, url: str, profile: Profile, server: str, *, started: bool
) -> BackendError:
    """A transport failure of httpx as a message for a person."""
    if isinstance(error, httpx.ConnectTimeout):
        deadline = profile.deadlines.connect
        return cannot_connect(
            url,
            "no connection within the connect deadline"
            + ("" if deadline is None else f" of {deadline:g} s"),
            server=server,
            profile=profile.name,
            timeout=True,
            retryable=True,  # a lost SYN may pass; a refusal (below) does not
        )
    if isinstance(error, httpx.ConnectError):
        return _connect_error(error, url, profile, server)
    if isinstance(error, httpx.TimeoutException):
        return BackendTimeout(f"Timed out talking to {url}.", server=server)
    if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError)):
        if started:
            return IncompleteStream(
                f"The connection to {server} broke in the middle of the answer "
                f"({error or type(error).__name__}).",
                server=server,
            )
        return CannotConnect(
            f"{url} closed the connection before answering ({error or 'no response'}).",
            server=server,
            hint="The server may have crashed or may not speak HTTP on that port.",
        )
    if isinstance(error, httpx.DecodingError):
        return ProtocolError(f"Could not decode the response from {url}: {error}", server=server)
    return BackendError(f"HTTP error talking to {url}: {error}", server=server)


def status_error(
    response: httpx.Response, text: str, profile: Profile, server: str
) -> HTTPStatusError:
    """A 3xx, 4xx or 5xx answer (its bounded body in ``text``) as a message for a person."""
    status = response.status_code
    url = str(response.request.url)
    parsed = parse_error_text(text, response.headers.get("content-type", ""))
    detail = excerpt(parsed[0]) if parsed else describe_body(text)
    message = f"{url} answered HTTP {status} {response.reason_phrase}: {detail}"
    retry_after = parse_retry_after(response.headers)
    hint: str | None = None
    if status < 400:
        location = excerpt(response.headers.get("location", "(no location)"), 200)
        message = (
            f"{url} answered HTTP {status} {response.reason_phrase}, a redirect to "
            f"{location}; tokentide follows no redirects (the key would go along)."
        )
        hint = f"Set the url of profile {profile.name!r} to the address it redirects to."
    elif status in (401, 403):
        where = (
            f"the environment variable {profile.api_key_env}"
            if profile.api_key_env
            else "api_key_env in the profile"
        )
        hint = f"Check the API key ({where})."
    elif status == 404:
        hint = f"Check the url ({server}) and the model name of profile {profile.name!r}."
    elif status in (429, 503, 529):
        hint = "The server is busy; try again later" + (
            f" (it asks to wait {retry_after:g} s)." if retry_after is not None else "."
        )
    cls = (
        Overloaded
        if status in (429, 503, 529) or (parsed and parsed[1] == "overloaded")
        else HTTPStatusError
    )
    return cls(
        message,
        status=status,
        body=text,
        server=server,
        hint=hint,
        retry_after=retry_after,
    )


def check_stream_type(
    response: httpx.Response, first: bytes, framing: str, api: str, server: str
) -> None:
    """Raise when the first bytes of a 200 answer are not the stream ``framing`` says."""
    ctype = response.headers.get("content-type", "").lower()
    if framing == "sse" and "event-stream" in ctype:
        return
    if framing == "ndjson" and ("ndjson" in ctype or "json" in ctype):
        return
    text = first.decode("utf-8", "replace")
    if "json" in ctype or text.lstrip().startswith("{"):
        try:
            parsed = error_from_body(parse_json(text))
        except ValueError:
            parsed = None
        if parsed:
            raise ServerError(
                f"{server} reported an error: {excerpt(parsed[0])}",
                kind=parsed[1],
                server=server,
            )
    if not ctype and framing == "sse" and text.lstrip().startswith(("data", ":", "event")):
        return  # no content type, but it looks like SSE: be lenient
    if "html" in ctype or "<html" in text[:500].lower():
        raise ProtocolError(
            f"{server} answered with {describe_body(text)} instead of a "
            f"{'token stream' if framing == 'sse' else 'JSON stream'}.",
            server=server,
            hint="Check the url: it may point at a web page or a proxy, not the API.",
        )
    if framing == "sse" and "event-stream" not in ctype:
        raise ProtocolError(
            f"{server} answered with content type {ctype or '(none)'!r}, "
            f"not an event stream: {describe_body(text)}.",
            server=server,
            hint=f"Check that api = {api!r} is what this server speaks.",
        )


def _connect_error(
    error: httpx.ConnectError, url: str, profile: Profile, server: str
) -> BackendError:
    """Refused, unresolvable, untrusted: why, in words, from the OS error underneath
    (httpx says "All connection attempts failed" for all of them)."""
    if _is_certificate_error(error):
        return cannot_connect(
            url,
            "its TLS certificate could not be verified, so nothing was sent "
            f"({_cause(error, ssl.SSLError) or error})",
            server=server,
            hint="The certificate is not trusted (self-signed, expired or for another "
            "name), or something is intercepting the connection.",
        )
    if (dns := _cause(error, socket.gaierror)) is not None:
        host = httpx.URL(url).host
        return cannot_connect(
            url,
            f"the host name {host!r} could not be resolved ({dns.strerror or dns})",
            server=server,
            hint=connect_hint(profile.name, first="Is the host name right? Correct it"),
        )
    if (tls := _cause(error, ssl.SSLError)) is not None:
        return cannot_connect(
            url, f"the TLS handshake failed ({tls.reason or tls})", server=server,
            hint="Check that the server speaks https on that port (or use http://).",
        )  # fmt: skip
    if _cause(error, ConnectionRefusedError) is not None:
        reason = "connection refused (nothing is listening there)"
    else:
        os_error = _cause(error, OSError)
        reason = (os_error.strerror if os_error is not None else None) or str(error)
    return cannot_connect(url, reason or "connection failed", server=server, profile=profile.name)


def _cause(error: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of ``kind`` in the ``__cause__``/``__context__`` chain."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _is_certificate_error(error: BaseException) -> bool:
    seen: BaseException | None = error
    for _ in range(8):  # httpx -> httpcore -> ssl, through __cause__/__context__
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(error)
