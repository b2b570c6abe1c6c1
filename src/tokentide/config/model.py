"""What a config file may say, as frozen dataclasses.  Defaults live here and nowhere else.

default = "local"                 # profile used when none is named
theme = "textual-dark"            # [ui] table also accepted
log = true                        # tide ask saves each exchange in the history
[profiles.NAME]
api = "openai"                    # which backend speaks to the server
url = "http://127.0.0.1:8000/v1"  # base URL as people write it for that server
model = "..."                     # model name sent to the server
api_key_env = "MY_KEY"            # the key is read from this environment variable
                                  # (default: the provider's, for its own host only)
system = "..."                    # system prompt
temperature / max_tokens / seed / top_p
price_in / price_out              # currency units per million prompt / answer tokens
context_window                    # tokens; overrides what the server reports
connect_timeout / first_token_timeout / idle_timeout   (seconds)
max_retries / max_event_bytes / max_answer_bytes
headers = { "X-Api-Key-Header" = "..." }
params = { ... }                  # extra request fields sent as they are
...                               # backend-specific keys, checked by the backend
approve = "ask"                   # tools: ask before each call (or "all", "none")
allow_tools = ["calc.add"]        # tools that run without asking
mcp = ["~/mcp.json"]              # {"mcpServers": {...}} files (Claude Desktop's shape)
functions = ["~/tools.py"]        # Python files whose functions are tools
max_tool_rounds = 8 / tool_timeout = 60
[mcp_servers.NAME]                # one MCP server: command/args/env/cwd or url/headers,
trust = true                      # trust: its tools run without asking
[templates.NAME]                  # a starting point: tide ask -t NAME, "New conversation
profile / model / system          # from template" in the app; flags beat the template,
temperature / max_tokens / top_p / seed   # the template beats the profile
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Approve", "Deadlines", "Limits", "Profile", "Settings", "Template", "ToolSettings"]

Approve = Literal["ask", "all", "none"]
"""Which tool calls run: ``ask`` the user each time (the default), ``all`` without asking,
``none`` (every call is refused and the model is told so)."""


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Application-level deadlines, in seconds; None disables one.

    httpx's read timeout is per socket read, so keep-alive comments would defeat it;
    the first-token and idle deadlines are therefore enforced by the generation object
    and count only *content* tokens.
    """

    connect: float | None = 10.0
    first_token: float | None = 300.0
    """CPU prefill of a long prompt can take minutes: generous by default."""
    idle: float | None = 120.0
    """Longest silence between two content tokens."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_event_bytes: int = 1 << 20
    max_answer_bytes: int = 64 << 20


@dataclass(frozen=True, slots=True)
class Profile:
    """One ``[profiles.NAME]`` table, or the same built from command-line flags."""

    name: str
    api: str
    url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)
    """A key written in the config file itself (discouraged; the file must be 0600)."""
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    top_p: float | None = None
    price_in: float | None = None
    """Currency units per million prompt tokens (for a cost estimate; no currency implied)."""
    price_out: float | None = None
    """Currency units per million generated tokens."""
    context_window: int | None = None
    """The model's context length in tokens, when the server does not say (or says wrong)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    deadlines: Deadlines = field(default_factory=Deadlines)
    limits: Limits = field(default_factory=Limits)
    max_retries: int = 2
    """Retries after the first attempt (so 3 attempts at most), only before the first
    content token."""
    functions: tuple[str, ...] = ()
    """Python files whose functions are tools for this profile (``functions = [...]``)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Backend-specific keys (``target``, ``model_path``, tensor names, ...), checked by
    the backend's factory."""

    def resolve_api_key(self, env: Mapping[str, str]) -> str | None:
        """The API key to send: from ``api_key_env`` if set, else the file's ``api_key``,
        else the provider's variable (``OPENAI_API_KEY``, ...) but only when the url is
        the provider's host or its base-URL variable's (:mod:`tokentide.config.credentials`)."""
        from tokentide.config.credentials import key_source

        return key_source(self, env).key


@dataclass(frozen=True, slots=True)
class Template:
    """One ``[templates.NAME]`` table: a starting point for a conversation or a prompt.

    ``None`` leaves the value to the profile (and the command line beats both):
    :func:`tokentide.config.templates.start_from_template` applies it.
    """

    name: str
    profile: str | None = None
    """The profile to talk to; ``None``: the default profile."""
    model: str | None = None
    """Overrides the profile's model."""
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class ToolSettings:
    """Where tools come from and which calls run (docs/tools.md).  The command line's
    ``--mcp``, ``--functions``, ``--approve`` and ``--allow-tool`` add to or beat these."""

    mcp_files: tuple[str, ...] = ()
    """Files in the ``{"mcpServers": {...}}`` shape Claude Desktop and oterm use."""
    mcp_servers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """``[mcp_servers.NAME]`` tables, as written (checked by :mod:`tokentide.tools`)."""
    functions: tuple[str, ...] = ()
    approve: Approve = "ask"
    allow_tools: tuple[str, ...] = ()
    max_rounds: int = 8
    """Most model → tools → model rounds in one answer before tide stops with a note."""
    timeout: float | None = 60.0
    """Seconds each call may take (None: no deadline)."""

    @property
    def configured(self) -> bool:
        """Any tool source at all (nothing of the tools machinery loads otherwise)."""
        return bool(self.mcp_files or self.mcp_servers or self.functions)


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole config file."""

    profiles: Mapping[str, Profile] = field(default_factory=dict)
    templates: Mapping[str, Template] = field(default_factory=dict)
    default: str | None = None
    theme: str | None = None
    log: bool = True
    """``tide ask`` saves each exchange in the history (``log = false``: never)."""
    keys: Mapping[str, str] = field(default_factory=dict)
    """Key bindings: action name -> key(s), e.g. ``stop = "escape"``."""
    tools: ToolSettings = field(default_factory=ToolSettings)
    path: str | None = None
    """The file these settings came from, if any."""
    warnings: tuple[str, ...] = ()
    """Things the user should know (e.g. a key file readable by others)."""
