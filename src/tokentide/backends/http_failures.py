"""What went wrong talking to an HTTP server, as a message for a person: transport
failures (a refused connection, an untrusted certificate, a broken stream), error
statuses with their bodies, and a 200 answer that is not the stream asked for."""

from __future__ import annotations

import ssl

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
    ConnectTimeout,
    HTTPStatusError,
    IncompleteStream,
    Overloaded,
    ProtocolError,
    ServerError,
    excerpt,
)

__all__ = ["check_stream_type", "status_error", "transport_error"]


def transport_error(
    error: httpx.HTTPError, url: str, profile: Profile, server: str, *, started: bool
) -> BackendError:
    """A transport failure of httpx as a message for a person."""
    if isinstance(error, httpx.ConnectTimeout):
        return ConnectTimeout(
            f"Timed out connecting to {url} (connect deadline {profile.deadlines.connect:g} s).",
            server=server,
            hint="Check that the server is running and reachable.",
        )
    if isinstance(error, httpx.ConnectError) and _is_certificate_error(error):
        return CannotConnect(
            f"The TLS certificate of {url} could not be verified ({error}); "
            "nothing was sent to it.",
            server=server,
            hint="The server's certificate is not trusted (self-signed, expired or for "
            "another name), or something is intercepting the connection.",
        )
    if isinstance(error, httpx.ConnectError):
        return CannotConnect(
            f"Cannot connect to {url}: {error or 'connection refused'}.",
            server=server,
            hint=f"Is the server running? Check the url of profile {profile.name!r}.",
        )
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


def _is_certificate_error(error: BaseException) -> bool:
    seen: BaseException | None = error
    for _ in range(8):  # httpx -> httpcore -> ssl, through __cause__/__context__
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(error)
