"""The environment variables every other client reads, per api, and the hosts they
belong to.

* ``openai``, ``openai-completions``: key ``OPENAI_API_KEY`` (its host: api.openai.com),
  base URL ``OPENAI_BASE_URL``;
* ``anthropic``: key ``ANTHROPIC_API_KEY`` (api.anthropic.com), base URL
  ``ANTHROPIC_BASE_URL``;
* ``tgi``: key ``HF_TOKEN`` (huggingface.co and its subdomains, such as
  router.huggingface.co, and Inference Endpoints, ``*.huggingface.cloud``);
* ``ollama``: base URL ``OLLAMA_HOST``, read as the ollama CLI reads it; no key.

A profile without a ``url`` takes its base-URL variable, else the provider's default
(``https://api.openai.com/v1``, ``https://api.anthropic.com``, ``http://127.0.0.1:11434``).
Whether the provider's key may go to a URL is :func:`key_allowed`: only to the
provider's own hosts over https, or to the origin its base-URL variable names.
Nothing here reads ``os.environ`` itself: callers pass the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "OLLAMA_DEFAULT",
    "Provider",
    "base_origin",
    "env_url",
    "key_allowed",
    "normal_origin",
    "ollama_host_url",
    "provider_for",
]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
OLLAMA_DEFAULT: Final = "http://127.0.0.1:11434"


@dataclass(frozen=True, slots=True)
class Provider:
    """What the conventions say about one api."""

    key_var: str | None
    """The variable that holds the provider's key (sent only to its hosts)."""
    base_var: str | None
    """The variable that names the provider's base URL (the key may go there too)."""
    hosts: tuple[str, ...]
    """The provider's own hosts; ``*.example.com`` matches every subdomain."""
    default_url: str | None
    """The url a profile without one uses when the base-URL variable is unset."""


_OPENAI: Final = Provider(
    "OPENAI_API_KEY", "OPENAI_BASE_URL", ("api.openai.com",), "https://api.openai.com/v1"
)
_PROVIDERS: Final[Mapping[str, Provider]] = {
    "openai": _OPENAI,
    "openai-completions": _OPENAI,
    "anthropic": Provider(
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        ("api.anthropic.com",),
        "https://api.anthropic.com",
    ),
    "tgi": Provider(
        "HF_TOKEN", None, ("huggingface.co", "*.huggingface.co", "*.huggingface.cloud"), None
    ),
    "ollama": Provider(None, "OLLAMA_HOST", (), OLLAMA_DEFAULT),
}


def provider_for(api: str) -> Provider | None:
    """The conventions of ``api``, or None for an api that has none (triton, muna, ...)."""
    return _PROVIDERS.get(api)


Origin = tuple[str, str, int | None]


def normal_origin(url: str) -> Origin | None:
    """(scheme, host, port) of ``url``: lower-cased, a trailing dot dropped from the host,
    the default port filled in; None when it is not an http(s) URL with a host."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".").lower()
        port = parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def _host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def env_url(api: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    """The url a profile of ``api`` without one uses, and where it comes from (``"$VAR"``
    or ``"provider default"``); None when the api has no default (tgi, triton, ...)."""
    provider = provider_for(api)
    if provider is None:
        return None
    if provider.base_var:
        raw = env.get(provider.base_var, "").strip()
        if raw:
            url = ollama_host_url(raw) if provider.base_var == "OLLAMA_HOST" else raw
            return url, f"${provider.base_var}"
    if provider.default_url:
        return provider.default_url, "provider default"
    return None


def base_origin(api: str, env: Mapping[str, str]) -> Origin | None:
    """The origin the api's base-URL variable names, if it is set and is a URL."""
    provider = provider_for(api)
    if provider is None or not provider.base_var:
        return None
    raw = env.get(provider.base_var, "").strip()
    if not raw:
        return None
    return normal_origin(ollama_host_url(raw) if provider.base_var == "OLLAMA_HOST" else raw)


def key_allowed(api: str, url: str | None, env: Mapping[str, str]) -> bool:
    """May the provider's key (``OPENAI_API_KEY``, ...) go to ``url``?

    Yes to the provider's own hosts over https on the default port, and to the origin
    the provider's base-URL variable names (the user pointed the provider there); no to
    anything else, so a cloud key never reaches a local or third-party server by itself.
    """
    provider = provider_for(api)
    if provider is None or not url:
        return False
    origin = normal_origin(url)
    if origin is None:
        return False
    scheme, host, port = origin
    if scheme == "https" and port == 443 and any(_host_matches(host, p) for p in provider.hosts):
        return True
    return origin == base_origin(api, env)


def ollama_host_url(raw: str) -> str:
    """``OLLAMA_HOST`` as the ollama CLI reads it (envconfig ``Host`` and
    ``ConnectableHost``): quotes and spaces trimmed; scheme http unless given; port 11434,
    or 80/443 when a scheme is given without one; ``ollama.com`` alone is
    ``https://ollama.com:443``; an empty or unspecified host (``:11434``, ``0.0.0.0``,
    ``::``) is reached on loopback; a port that is not 0-65535 is replaced by the default.
    """
    text = raw.strip().strip("\"'").strip()
    scheme, sep, hostport = text.partition("://")
    default_port = "11434"
    if not sep:
        scheme, hostport = "http", text
        if text == "ollama.com":
            scheme, hostport = "https", "ollama.com:443"
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport, _, path = hostport.partition("/")
    host, port = _split_host_port(hostport)
    if port is None:
        host, port = hostport.strip("[]") or "127.0.0.1", default_port
    if not port.isdigit() or int(port) > 65535:
        port = default_port
    if host in ("", "0.0.0.0"):  # a bind address: reached on loopback
        host = "127.0.0.1"
    elif host in ("::", "0:0:0:0:0:0:0:0"):
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}" + (f"/{path.rstrip('/')}" if path.strip("/") else "")


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    """Go's ``net.SplitHostPort``: ``host:port`` or ``[v6]:port``; (hostport, None) when
    there is no port to split off."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end > 0 and hostport[end + 1 : end + 2] == ":":
            return hostport[1:end], hostport[end + 2 :]
        return hostport, None
    if hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
        return host, port
    return hostport, None
