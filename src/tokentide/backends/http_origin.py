"""Where a profile's requests go, and the one rule for where its key may go.

:class:`BaseURL` normalises the profile's ``url`` once (scheme and host lower-cased by
``httpx.URL``, default ports filled in for the comparison) and builds request URLs from
it, keeping a query string such as Azure's ``?api-version=`` after the path.

The rule (``docs/backends-http.md``, "Transport security"): credentials (the API key
and the profile's ``headers``) are attached only to URLs on the base URL's *origin*, its
scheme, host and port compared after normalising; any other URL a server names is
fetched without them, and only over https when the base is https.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from tokentide.errors import ConfigError, ProtocolError

__all__ = ["BaseURL", "Origin", "origin_of"]

_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int | None]
"""(scheme, host, port), lower-cased, the default port filled in."""


def origin_of(url: httpx.URL) -> Origin:
    scheme = url.scheme.lower()
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(scheme)
    return scheme, url.host.lower(), port


@dataclass(frozen=True, slots=True)
class BaseURL:
    """A profile's base URL, normalised."""

    text: str
    """The whole URL as shown to the user (query included, no trailing slash)."""
    prefix: str
    """Scheme, authority and path, without the query and the trailing slash."""
    query: str
    """The query string without its ``?`` ("" when there is none)."""
    origin: Origin | None
    """None for an empty URL (backends that have no server)."""

    @classmethod
    def parse(cls, raw: str | None, profile: str = "?") -> BaseURL:
        if not raw:
            return cls("", "", "", None)
        try:
            url = httpx.URL(raw.strip())
        except (httpx.InvalidURL, ValueError, TypeError) as error:
            raise ConfigError(
                f"Profile {profile!r}: the url {raw!r} is not a valid URL ({error}).",
                hint='Write it as "https://host[:port]/path".',
            ) from None
        if url.scheme.lower() not in _DEFAULT_PORTS or not url.host:
            raise ConfigError(
                f"Profile {profile!r}: the url {raw!r} must start with http:// or https:// "
                "and name a host.",
                hint='Write it as "https://host[:port]/path".',
            )
        if url.port is not None and not 0 < url.port < 65536:
            raise ConfigError(
                f"Profile {profile!r}: the url {raw!r} has port {url.port}, outside 1-65535.",
                hint="Check the port number in the url.",
            )
        query = url.query.decode("ascii", "replace")
        prefix = str(url.copy_with(query=None, fragment=None)).rstrip("/")
        text = prefix + (f"?{query}" if query else "")
        return cls(text, prefix, query, origin_of(url))

    @property
    def is_https(self) -> bool:
        return self.origin is not None and self.origin[0] == "https"

    def url_for(self, path: str) -> str:
        """``path`` after the base path, the base's query kept after it (and joined
        with the path's own); a full ``http(s)://`` URL is returned as it is."""
        if path[:4].lower() == "http" and path.lower().startswith(("http://", "https://")):
            return path
        if not self.query:
            return self.prefix + path
        path, _, own = path.partition("?")
        return (
            f"{self.prefix}{path}?{self.query}&{own}"
            if own
            else f"{self.prefix}{path}?{self.query}"
        )

    def same_origin(self, url: str | httpx.URL) -> bool:
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError):
            return False
        return self.origin is not None and origin_of(parsed) == self.origin

    def check_foreign(self, url: str) -> httpx.URL:
        """A URL the server named on another origin, checked before it is fetched
        (without credentials): http(s) only, and https when the base is https."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError):
            parsed = None
        scheme = parsed.scheme.lower() if parsed is not None else ""
        if parsed is None or scheme not in _DEFAULT_PORTS or not parsed.host:
            raise ProtocolError(
                f"{self.text} named a result URL tokentide cannot fetch: {url[:200]!r}.",
                server=self.text,
            )
        if self.is_https and scheme != "https":
            raise ProtocolError(
                f"{self.text} named a result at a plain-http URL ({url[:200]}); tokentide "
                "fetches results only over https when the profile's url is https.",
                server=self.text,
                hint="The server (or something between it and you) sent an insecure link.",
            )
        return parsed
