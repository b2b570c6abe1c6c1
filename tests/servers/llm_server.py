"""One small, deterministic LLM server speaking every HTTP dialect tokentide supports.

Use it from a test (sync fixture; the server runs uvicorn in a thread on 127.0.0.1)::

    from tests.servers.llm_server import serve

    @pytest.fixture(scope="module")
    def server():
        with serve() as s:
            yield s

    url = server.url(tokens=3, delay=0.01) + "/v1"      # knobs ride in the URL path
    ...
    record = server.last()                               # what the client sent / did
    await server.wait_disconnect(record)                 # -> monotonic time it saw the close

Routes (the dialect is chosen by the path; everything before it is ignored, so
``http://127.0.0.1:PORT/k/<knobs>/v1`` is a valid OpenAI base URL):

=====================================================  ===================================
``POST …/chat/completions``, ``…/completions``          OpenAI (vLLM / llama.cpp / TGI-v1)
``POST …/generate_stream``, ``…/generate``              TGI native
``POST …/v1/messages``                                  Anthropic Messages
``POST /v2/models/M[/versions/V]/generate[_stream]``    Triton HTTP generate extension
``POST …/compose``                                      Substrate
``POST …/predictions/remote``, ``GET …/blob/N``         Muna remote predictions
``POST …/api/chat``                                     Ollama native (NDJSON)
``GET …/health``                                        200 ``ok``
``GET …/models``                                        OpenAI model list (``tide models``)
``GET …/v1/models`` with ``anthropic-version``          Anthropic model list
``GET …/api/tags``                                      Ollama model list
``GET …/info``                                          TGI model information
``POST …/v2/repository/index``                          Triton repository index
``GET …/props``                                         llama.cpp server (``flavor=llamacpp``)
=====================================================  ===================================

Knobs
-----
Knobs are ``key=value`` pairs, URL-encoded, taken (later wins) from a ``/k/<query>``
path segment (:meth:`LLMServer.url` builds it), the query string, and an
``X-Tide-Knobs`` header holding a query string.  Flags are ``1``/``0``.

Answer:
  ``text``        the answer (default ``"The quick brown fox jumps over the lazy dog."``),
                  split into tokens at word starts (``"The"``, ``" quick"``, …)
  ``tokens=N``    instead: N tokens ``w0 w1 …``
  ``echo=1``      the answer is the prompt the server received (to check what was sent)
  ``see=1``       the answer says which pictures it received (``saw 2: image/png 68, …``;
                  chat dialects, :func:`images_in`; a malformed picture fails the request)
  ``reasoning``   text streamed as reasoning first (OpenAI ``reasoning_content``, Anthropic
                  thinking block, Ollama ``message.thinking``)
  ``finish``      finish reason to report (dialect default otherwise); the request's own
                  token limit (max_tokens, max_new_tokens, num_predict, Triton max_tokens)
                  is honoured and gives the dialect's "length" reason
  ``tag``         free text stored on the :class:`Record` (find it with ``server.record``)
  ``tool``        after the text, ask to call these tools (comma-separated names), each
                  with ``tool_args`` (JSON text, default ``{"city": "Paris"}``): OpenAI
                  ``tool_calls`` (streamed as ``index``/``id``/``function.name`` then
                  ``function.arguments`` fragments; finish ``tool_calls``), Anthropic
                  ``tool_use`` blocks (``input_json_delta`` fragments; ``tool_use``),
                  Ollama ``message.tool_calls`` (arguments an object).  ``tool=*``: each
                  tool the request offers (its ``tools``), none if it offers none
  ``tool_once=1`` no calls when the request's last message is a tool's result (so a
                  conversation goes call → result → answer)
  ``tool_args_I`` the arguments of call I (0-based) instead of ``tool_args``
  ``tool_split=N`` stream arguments in N-character fragments (default 4; 1 splits every
                  escape and multibyte character)
  ``tool_interleave=1`` OpenAI: every call's first fragment, then the rest of them in
                  turns (parallel calls interleaved by ``index``)
  ``tool_index0=1`` OpenAI: every call at ``index`` 0, told apart by its id only
  ``tool_lines=1`` Ollama: one line per call (default: all in one line)

Timing:
  ``delay``       seconds before each token (default 0); ``first_delay`` before the first
  ``delay_headers`` seconds before the response headers are sent
  ``stall_at=k``  after k tokens, send nothing more until the client goes away
  ``keepalive=N`` N keep-alive comments (``:\\n\\n``; Ollama: blank lines) before each token

Endings and errors:
  ``truncate=1``      all tokens, then a clean EOF without the terminator
  ``truncate_at=k``   clean EOF after k tokens
  ``abort_at=k``      after k tokens break the connection (truncated chunked body);
                      ``partial=1`` first writes half of the next event
  ``error_at=k``      after k tokens send the dialect's in-band error (0: the only event)
  ``error_kind``      its type: TGI ``error_type`` (default ``generation``), Anthropic
                      error type (``overloaded_error``), Substrate ``data.type``, OpenAI type
  ``error_shape``     OpenAI only: ``object`` (default, then ``[DONE]``), ``llamacpp``
                      (old ``error: {...}`` field), ``tgi`` (``{"error":{"message",
                      "http_status_code":422}}``), ``string`` (``{"error":"..."}``),
                      ``event`` (``event: error``)
  ``error_message``   its message (default ``"boom at token k"``)
  ``status=S``        answer HTTP S with the dialect's error body before streaming
  ``retry_after``     ``Retry-After`` header value (with ``status``);
                      ``retry_after_ms`` the ``retry-after-ms`` header
  ``status_body``     exact error body; ``status_ctype`` its content type
  ``html=1``          HTTP 200 with an HTML page (a captive portal / wrong URL)
  ``ctype``           override the stream's Content-Type (``none``: no header)

Framing (SSE dialects):
  ``nospace=1`` ``data:{...}`` without the space   ``crlf=1`` CRLF line ends
  ``bom=1``     a leading UTF-8 BOM                ``ascii=1`` ``\\uXXXX`` escapes in JSON
                (default: raw UTF-8, so U+2028 / U+0085 in ``text`` go out as raw bytes)
  ``chunk=N``   split every write into N-byte writes (multibyte characters cross writes)
  ``final_newline=0`` Ollama: no ``\\n`` after the last line

Dialect specifics:
  OpenAI: ``role_first=0`` (default 1: first chunk ``{"role":"assistant","content":null}``),
    ``usage=0`` (default: a ``choices: []`` usage chunk when ``stream_options.include_usage``,
    and ``usage`` in a non-streaming reply; 0: neither, a server that does not count),
    ``done=0`` (no ``[DONE]``), ``all_roles=1`` (TGI-v1: role on every delta).
  TGI: ``special=0`` (default 1: an EOS ``</s>`` special token ends an ``eos_token``
    answer), ``null_logprob=1`` (logprob null), ``overloaded=1`` (shortcut: ``/generate``
    429, ``/generate_stream`` 200 with only the overloaded event).
  Anthropic: ``ping=0`` (default 1), ``api_key`` (require this ``x-api-key``; else 401).
  Triton: model ``nope`` is unknown (404); ``input`` / ``output`` tensor names (default
    ``text_input`` / ``text_output``; a missing input gives real Triton's 400 event-stream
    error); ``cumulative=1`` (cumulative text per response); ``decoupled=1`` (``/generate``
    answers 200 + ``{"error"}`` like a decoupled model); a request with
    ``return_finish_reason`` (top level or a parameter, as vLLM's backend takes it) gets a
    ``finish_reason`` output on its last response (``length`` when cut by ``max_tokens``,
    else ``stop`` or the ``finish`` knob), ``finish_reason_list=1`` as a one-element list.
  Substrate: ``key=nodeId`` (spelling of the node key), ``shape=choices``
    (``data.choices`` ``array.item`` deltas), ``delta_upto=k`` (only k tokens as deltas;
    ``node.result`` carries the rest), ``error_node=i`` (which node fails, default 0),
    ``continue_after_error=1``.  Node *i* > 0 answers ``"(<node id>) " + text``.
  Muna: ``input`` (expected input name, default ``prompt``), ``encoding`` ``base64``
    (default) / ``percent`` / ``url`` (an http URL served by ``GET …/blob/N``),
    ``delta=1`` (delta instead of cumulative results).
  Ollama: ``model`` ``nope`` is unknown (404).

Model listings (``status``, ``status_body``, ``html``, ``api_key`` and ``ctype`` apply too):
  ``models``      the ids, comma-separated, or a JSON array (default: one per dialect)
  ``flavor``      OpenAI list as ``openai`` (default), ``vllm`` (``max_model_len``, ``root``)
                  or ``llamacpp`` (``meta``; and ``/props`` answers with ``n_ctx``)
  ``n_ctx``       the context those report (default 2048; ``n_ctx_train`` is 8192)
  ``pad=N``       an N-byte ``description`` on every entry (an oversized list)
  ``list_body``   the exact HTTP 200 body instead (garbage, a wrong shape)
  ``page=K``      Anthropic: K models per page (``has_more``, ``after_id``)
  ``unavailable`` Triton: this model is listed ``UNAVAILABLE`` with a reason

Every request is recorded (:class:`Record`): method, path, knobs, lower-cased headers,
JSON body (and ``raw``, its bytes as sent), the number of tokens sent, whether the response completed, and
``disconnected_at`` (``time.monotonic()`` when the server saw the client go away while it
was still streaming).  Everything is deterministic; nothing waits unless a knob says so.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import threading
import time
import traceback
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

__all__ = ["DEFAULT_TEXT", "LLMServer", "Record", "images_in", "see", "serve", "split_tokens"]

DEFAULT_TEXT = "The quick brown fox jumps over the lazy dog."
_TOKEN_RE = re.compile(r"\s*\S+|\s+$", re.S)

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


def split_tokens(text: str) -> list[str]:
    """How the server splits ``text`` into tokens (word starts keep their space)."""
    return _TOKEN_RE.findall(text) or ([text] if text else [])


@dataclass
class Record:
    """One request as the server saw it."""

    method: str
    path: str
    knobs: dict[str, str]
    headers: dict[str, str]
    body: Any
    started: float = field(default_factory=time.monotonic)
    tokens_sent: int = 0
    completed: bool = False
    """The server sent the whole response (as far as it was meant to)."""
    disconnected_at: float | None = None
    """``time.monotonic()`` when the server saw the client go away mid-response."""
    finished: threading.Event = field(default_factory=threading.Event)
    """Set when the server is done with the request, for whatever reason."""
    responding: threading.Event = field(default_factory=threading.Event)
    """Set once the response headers have been sent."""
    raw: bytes = b""
    """The request body's bytes exactly as they arrived."""

    @property
    def images(self) -> list[tuple[str, bytes]]:
        """The pictures the request carries, see :func:`images_in`."""
        return images_in(self.body)

    @property
    def tag(self) -> str | None:
        return self.knobs.get("tag")


class _Stall(Exception):
    pass


class Knobs:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name, default)

    def num(self, name: str, default: int | None = None) -> int | None:
        value = self.values.get(name)
        return default if value is None or value == "" else int(value)

    def seconds(self, name: str, default: float = 0.0) -> float:
        value = self.values.get(name)
        return default if value is None or value == "" else float(value)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        return value.lower() not in ("0", "false", "no", "")


class Ctx:
    """One request: its knobs, body, framing helpers and the token plan."""

    def __init__(self, record: Record, server: LLMServer) -> None:
        self.record = record
        self.server = server
        self.k = Knobs(record.knobs)
        self.body = record.body if isinstance(record.body, dict) else {}
        self.ascii = self.k.flag("ascii")
        self.eol = "\r\n" if self.k.flag("crlf") else "\n"
        self.sep = ":" if self.k.flag("nospace") else ": "

    # -- framing --

    def dumps(self, obj: Any) -> str:
        return json.dumps(obj, ensure_ascii=self.ascii, separators=(",", ":"))

    def sse(self, obj: Any, event: str | None = None) -> bytes:
        data = obj if isinstance(obj, str) else self.dumps(obj)
        head = f"event{self.sep}{event}{self.eol}" if event else ""
        return f"{head}data{self.sep}{data}{self.eol}{self.eol}".encode()

    def line(self, obj: Any) -> bytes:
        return (self.dumps(obj) + "\n").encode()

    # -- the answer --

    def answer(self, prompt: str = "") -> str:
        if self.k.flag("see"):
            return see(images_in(self.body))
        if self.k.flag("echo"):
            return prompt
        if (n := self.k.num("tokens")) is not None:
            return " ".join(f"w{i}" for i in range(n))
        return self.k.get("text", DEFAULT_TEXT) or ""

    def plan(self, prompt: str, limit: int | None) -> tuple[list[str], bool]:
        """(tokens to send, True if cut by the request's limit)."""
        tokens = split_tokens(self.answer(prompt))
        if limit is not None and 0 <= limit < len(tokens):
            return tokens[:limit], True
        return tokens, False

    def error_message(self, position: int) -> str:
        return self.k.get("error_message") or f"boom at token {position}"

    def tool_calls(self) -> list[tuple[str, str]]:
        """(name, arguments JSON text) of each call the ``tool`` knob asks for."""
        wanted = self.k.get("tool") or ""
        if self.k.flag("tool_once") and self.answers_a_tool():
            return []
        names = self.offered_tools() if wanted == "*" else [n for n in wanted.split(",") if n]
        args = self.k.get("tool_args", '{"city": "Paris"}') or ""
        return [(name, self.k.get(f"tool_args_{i}", args) or "") for i, name in enumerate(names)]

    def answers_a_tool(self) -> bool:
        """Whether the request's last message is a tool's result (OpenAI and Ollama
        ``role: tool``, Anthropic a user turn of ``tool_result`` blocks)."""
        messages = self.body.get("messages") or []
        last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
        if last.get("role") == "tool":
            return True
        content = last.get("content")
        return isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in content
        )

    def offered_tools(self) -> list[str]:
        """The names of the tools the request offers (OpenAI and Ollama
        ``tools[].function.name``, Anthropic ``tools[].name``)."""
        names = []
        for tool in self.body.get("tools") or []:
            if isinstance(tool, dict):
                function = tool.get("function")
                name = function.get("name") if isinstance(function, dict) else tool.get("name")
                if isinstance(name, str):
                    names.append(name)
        return names

    def tool_fragments(self, args: str) -> list[str]:
        return fragments(args, self.k.num("tool_split") or 4)


def fragments(text: str, size: int = 4) -> list[str]:
    """``text`` in ``size``-character pieces, as servers stream tool arguments."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _block_text(block: Any) -> str:
    """An Anthropic content block's text: a text block's, a tool result's content."""
    if not isinstance(block, dict):
        return ""
    if block.get("type") == "tool_result":
        content = block.get("content", "")
        return content if isinstance(content, str) else "".join(map(_block_text, content))
    return str(block.get("text", ""))


def images_in(body: Any) -> list[tuple[str, bytes]]:
    """(media type, bytes) of every picture in a chat request, in order: OpenAI
    ``image_url`` parts (``data:`` URLs only), Anthropic ``image`` blocks (base64 source),
    Ollama ``images`` (media type ``""``: Ollama sends none).  Malformed ones raise
    (``ValueError``), so the request fails as a strict server's would."""
    found: list[tuple[str, bytes]] = []
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        found.extend(("", base64.b64decode(b, validate=True)) for b in message.get("images") or [])
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "image_url":
                url = part["image_url"]["url"]
                head, _, data = url.partition(",")
                if not (head.startswith("data:") and head.endswith(";base64")):
                    raise ValueError(f"not a base64 data: URL: {url[:40]!r}")
                found.append((head[5:-7], base64.b64decode(data, validate=True)))
            elif kind == "image":
                source = part["source"]
                if source.get("type") != "base64":
                    raise ValueError(f"image source type {source.get('type')!r}")
                found.append(
                    (source["media_type"], base64.b64decode(source["data"], validate=True))
                )
    return found


def see(images: list[tuple[str, bytes]]) -> str:
    """The ``see`` knob's answer: what the server received, e.g. ``saw 1: image/png 68``."""
    return f"saw {len(images)}: " + ", ".join(f"{kind or '?'} {len(data)}" for kind, data in images)


def _text_of(content: Any) -> str:
    """A chat message's text: a string as it is, a list of parts (OpenAI ``text`` parts,
    Anthropic text blocks) joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_block_text(p) for p in content if isinstance(p, dict) and "text" in p)
    return ""


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


Item = tuple[str, bytes]
"""("token", bytes) counts as a token; ("end", bytes) is the terminator; ("meta", bytes)
is anything else (role chunk, message_start, ...)."""


class LLMServer:
    """The running server: its URL, the records of requests, helpers for tests."""

    def __init__(self) -> None:
        self.base = ""
        self.records: list[Record] = []
        self.blobs: dict[int, bytes] = {}
        self.errors: list[str] = []
        """Tracebacks of bugs in this server (tests may assert it stays empty)."""
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._uvicorn: uvicorn.Server | None = None

    # -- test helpers --

    def url(self, **knobs: Any) -> str:
        """The base URL with ``knobs`` in a ``/k/...`` path segment."""
        if not knobs:
            return self.base
        pairs = {k: (int(v) if isinstance(v, bool) else v) for k, v in knobs.items()}
        query = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote, safe="")
        return f"{self.base}/k/{query}"

    def last(self) -> Record:
        with self._lock:
            return self.records[-1]

    def record(self, tag: str) -> Record:
        with self._lock:
            for record in reversed(self.records):
                if record.tag == tag:
                    return record
        raise LookupError(f"no request tagged {tag!r}")

    def record_or_none(self, tag: str) -> Record | None:
        try:
            return self.record(tag)
        except LookupError:
            return None

    async def wait_responding(self, tag: str, timeout: float = 5.0) -> Record:
        """Wait until a request tagged ``tag`` has arrived and its response headers are
        sent (e.g. to cancel while the server stalls before the first token)."""

        def wait() -> Record:
            with self._lock:
                found = self._arrived.wait_for(
                    lambda: any(r.tag == tag for r in self.records), timeout
                )
            if not found:
                raise TimeoutError(f"no request tagged {tag!r} within {timeout} s")
            record = self.record(tag)
            if not record.responding.wait(timeout):
                raise TimeoutError(f"no response to {tag!r} within {timeout} s")
            return record

        return await asyncio.to_thread(wait)

    async def wait_finished(self, record: Record, timeout: float = 5.0) -> None:
        if not await asyncio.to_thread(record.finished.wait, timeout):
            raise TimeoutError(f"server still busy with {record.path} after {timeout} s")

    async def wait_disconnect(self, record: Record, timeout: float = 5.0) -> float:
        """Wait until the server is done with ``record``; return when it saw the client
        go away (raises if it finished without seeing a disconnect)."""
        await self.wait_finished(record, timeout)
        if record.disconnected_at is None:
            raise AssertionError(f"the server never saw the client leave {record.path}")
        return record.disconnected_at

    # -- ASGI --

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path, knobs = _split_knobs(scope)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if "x-tide-knobs" in headers:
            knobs.update(urllib.parse.parse_qsl(headers["x-tide-knobs"]))
        record = Record(scope["method"], path, knobs, headers, body, raw=raw)
        with self._lock:
            self.records.append(record)
            self._arrived.notify_all()
        try:
            await self._serve(record, receive, send)
        except ConnectionAbortedError:
            raise  # the abort_at knob: uvicorn breaks the connection
        except Exception:
            self.errors.append(traceback.format_exc())
            raise
        finally:
            record.finished.set()

    async def _serve(self, record: Record, receive: Receive, send: Send) -> None:
        ctx = Ctx(record, self)
        status, headers, items = _route(ctx)
        watch = asyncio.ensure_future(_wait_disconnect(receive))
        pump = asyncio.ensure_future(self._pump(ctx, status, headers, items, send))
        try:
            done, _ = await asyncio.wait({watch, pump}, return_when=asyncio.FIRST_COMPLETED)
            if pump not in done:
                record.disconnected_at = time.monotonic()
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
            else:
                pump.result()  # re-raise an abort so uvicorn breaks the connection
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    async def _pump(
        self,
        ctx: Ctx,
        status: int,
        headers: list[tuple[str, str]],
        items: AsyncIterator[Item] | bytes,
        send: Send,
    ) -> None:
        k = ctx.k
        if (wait := k.seconds("delay_headers")) > 0:
            await asyncio.sleep(wait)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(a.encode(), b.encode()) for a, b in headers],
            }
        )
        ctx.record.responding.set()
        size = k.num("chunk") or 0

        async def write(data: bytes) -> None:
            if not data:
                return
            if size > 0:
                for i in range(0, len(data), size):
                    await send(
                        {
                            "type": "http.response.body",
                            "body": data[i : i + size],
                            "more_body": True,
                        }
                    )
            else:
                await send({"type": "http.response.body", "body": data, "more_body": True})

        if isinstance(items, bytes):
            await write(items)
        else:
            if k.flag("bom"):
                await write(b"\xef\xbb\xbf")
            try:
                async for _, data in items:
                    await write(data)
            except _Stall:
                await asyncio.Event().wait()  # until the client goes away
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        ctx.record.completed = True


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _split_knobs(scope: Scope) -> tuple[str, dict[str, str]]:
    raw_path = scope.get("raw_path") or scope["path"].encode()
    path = raw_path.decode("latin-1")
    knobs: dict[str, str] = {}
    while path.startswith("/k/"):
        segment, _, rest = path[3:].partition("/")
        knobs.update(urllib.parse.parse_qsl(segment, keep_blank_values=True))
        path = "/" + rest
    path = urllib.parse.unquote(path)
    if scope.get("query_string"):
        knobs.update(urllib.parse.parse_qsl(scope["query_string"].decode("latin-1")))
    return path, knobs


# -- the shared emission engine -------------------------------------------------------


async def _run(
    ctx: Ctx,
    items: Iterator[Item],
    error: Callable[[int], bytes],
    keepalive: bytes = b":\n\n",
) -> AsyncIterator[Item]:
    """Apply the timing, truncation and error knobs to a dialect's item sequence."""
    k = ctx.k
    delay, first_delay = k.seconds("delay"), k.seconds("first_delay", -1.0)
    stall_at, truncate_at = k.num("stall_at"), k.num("truncate_at")
    abort_at, error_at = k.num("abort_at"), k.num("error_at")
    truncate = k.flag("truncate")
    n_keepalive = k.num("keepalive") or 0
    count = 0
    for kind, data in items:
        if kind in ("token", "end"):
            if error_at is not None and count == error_at:
                yield "meta", error(count)
                return
            if stall_at is not None and count == stall_at:
                raise _Stall
            if truncate_at is not None and count == truncate_at:
                return
            if abort_at is not None and count == abort_at:
                if k.flag("partial"):
                    yield "meta", data[: max(1, len(data) // 2)]
                raise ConnectionAbortedError("abort_at knob: breaking the connection")
        if kind == "end" and truncate:
            return
        if kind == "token":
            wait = first_delay if count == 0 and first_delay >= 0 else delay
            if wait > 0:
                await asyncio.sleep(wait)
            for _ in range(n_keepalive):
                yield "meta", keepalive
            count += 1
            ctx.record.tokens_sent = count
        yield kind, data


def _stream_headers(ctx: Ctx, default: str) -> list[tuple[str, str]]:
    ctype = ctx.k.get("ctype", default)
    headers = [("cache-control", "no-cache")]
    if ctype and ctype != "none":
        headers.insert(0, ("content-type", ctype))
    return headers


_HTML = (
    b"<!DOCTYPE html><html><head><title>Sign in to the network</title></head>"
    b"<body><h1>Welcome</h1><p>Please sign in.</p></body></html>"
)


def _error_reply(
    ctx: Ctx, status: int, body: Any, ctype: str = "application/json"
) -> tuple[int, list[tuple[str, str]], bytes]:
    k = ctx.k
    headers = [("content-type", k.get("status_ctype", ctype) or ctype)]
    if (ra := k.get("retry_after")) is not None:
        headers.append(("retry-after", ra))
    if (ra_ms := k.get("retry_after_ms")) is not None:
        headers.append(("retry-after-ms", ra_ms))
    raw = k.get("status_body")
    data = (
        raw.encode()
        if raw is not None
        else (body if isinstance(body, bytes) else ctx.dumps(body).encode())
    )
    return status, headers, data


def _json_reply(ctx: Ctx, obj: Any, status: int = 200) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("content-type", "application/json")], ctx.dumps(obj).encode()


Routed = tuple[int, list[tuple[str, str]], AsyncIterator[Item] | bytes]


def _route(ctx: Ctx) -> Routed:
    path = ctx.record.path
    k = ctx.k
    if path.endswith("/health"):
        return 200, [("content-type", "text/plain")], b"ok"
    if (m := re.search(r"/blob/(\d+)$", path)) is not None:
        blob = ctx.server.blobs.get(int(m.group(1)))
        if blob is None:
            return _json_reply(ctx, {"errors": [{"message": "no such blob"}]}, 404)
        return 200, [("content-type", "text/plain; charset=utf-8")], blob
    dialect: Callable[[Ctx], Routed]
    error_body: Callable[[Ctx, str], Any]
    if (listing := _listing_route(ctx)) is not None:
        dialect, error_body = listing
    elif re.search(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/(generate_stream|generate)$", path):
        dialect, error_body = _triton, lambda c, m: {"error": m}
    elif path.endswith(("/chat/completions", "/completions")):
        dialect, error_body = _openai, _openai_error_body
    elif path.endswith(("/generate_stream", "/generate")):
        dialect, error_body = _tgi, _tgi_error_body
    elif path.endswith("/v1/messages"):
        dialect, error_body = _anthropic, _anthropic_error_body
    elif path.endswith("/compose"):
        dialect, error_body = _substrate, _substrate_error_body
    elif path.endswith("/predictions/remote"):
        dialect, error_body = _muna, lambda c, m: {"errors": [{"message": m}]}
    elif path.endswith("/api/chat"):
        dialect, error_body = _ollama, lambda c, m: {"error": m}
    else:
        return _json_reply(ctx, {"error": f"no route for {path}"}, 404)
    if (status := k.num("status")) is not None:
        message = k.get("error_message") or _STATUS_MESSAGES.get(status, f"error {status}")
        if k.get("status_ctype", "").startswith("text/html"):  # type: ignore[union-attr]
            return _error_reply(ctx, status, _HTML)
        return _error_reply(ctx, status, error_body(ctx, message))
    if k.flag("html"):
        return 200, [("content-type", "text/html; charset=utf-8")], _HTML
    return dialect(ctx)


_STATUS_MESSAGES = {
    400: "Bad request",
    401: "Invalid API key",
    404: "Not found",
    429: "Rate limit reached, slow down",
    500: "Internal server error",
    503: "Service unavailable",
    529: "Overloaded",
}


# -- OpenAI -------------------------------------------------------------------------


def _openai_error_body(ctx: Ctx, message: str) -> Any:
    status = ctx.k.num("status") or 500
    kind = {429: "rate_limit_error", 401: "authentication_error"}.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _openai(ctx: Ctx) -> Routed:
    body, k = ctx.body, ctx.k
    chat = ctx.record.path.endswith("/chat/completions")
    if chat:
        messages = body.get("messages") or []
        prompt = _text_of(messages[-1].get("content", "")) if messages else ""
    else:
        prompt = str(body.get("prompt", ""))
    tokens, cut = ctx.plan(prompt, body.get("max_tokens"))
    calls = ctx.tool_calls() if chat else []
    finish = k.get("finish") or ("length" if cut else "tool_calls" if calls else "stop")
    model = body.get("model") or "test-model"
    text = "".join(tokens)
    usage = {
        "prompt_tokens": len(split_tokens(prompt)),
        "completion_tokens": len(tokens),
        "total_tokens": len(split_tokens(prompt)) + len(tokens),
    }
    reasoning = k.get("reasoning")
    if not body.get("stream"):
        if k.num("error_at") is not None:
            return _error_reply(ctx, 500, _openai_error_body(ctx, ctx.error_message(0)))
        if chat:
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if reasoning:
                message["reasoning_content"] = reasoning
            if calls:
                message["tool_calls"] = [
                    {
                        "id": f"call_{i}",
                        "type": "function",
                        "function": {"name": name, "arguments": args},
                    }
                    for i, (name, args) in enumerate(calls)
                ]
            choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        obj = "chat.completion" if chat else "text_completion"
        counted = usage if k.flag("usage", True) else None
        return _json_reply(
            ctx,
            {"id": "cmpl-1", "object": obj, "model": model, "choices": [choice], "usage": counted},
        )
    obj = "chat.completion.chunk" if chat else "text_completion"
    all_roles = k.flag("all_roles")

    def chunk(delta: dict[str, Any] | None, finish_reason: str | None, text: str = "") -> Any:
        if chat:
            assert delta is not None
            if all_roles:
                delta = {"role": "assistant", **delta}
            choice: dict[str, Any] = {"index": 0, "delta": delta}
        else:
            choice = {"index": 0, "text": text}
        choice["logprobs"] = None
        choice["finish_reason"] = finish_reason
        return {"id": "cmpl-1", "object": obj, "created": 1, "model": model, "choices": [choice]}

    def tool_chunks() -> Iterator[Item]:
        index0 = k.flag("tool_index0")
        parts: list[list[dict[str, Any]]] = []
        for i, (name, args) in enumerate(calls):
            index = 0 if index0 else i
            head = {"index": index, "id": f"call_{i}", "type": "function"}
            head["function"] = {"name": name, "arguments": ""}
            pieces = [
                {"index": index, "function": {"arguments": p}} for p in ctx.tool_fragments(args)
            ]
            parts.append([head, *pieces])
        if k.flag("tool_interleave"):
            heads = [call[0] for call in parts]
            rest = [call[1:] for call in parts]
            parts = [heads] + [
                [call[turn] for call in rest if turn < len(call)]
                for turn in range(max((len(call) for call in rest), default=0))
            ]
            for group in parts:  # one chunk carrying several calls' fragments
                yield "meta", ctx.sse(chunk({"tool_calls": group}, None))
            return
        for call in parts:
            for part in call:
                yield "meta", ctx.sse(chunk({"tool_calls": [part]}, None))

    def items() -> Iterator[Item]:
        if chat and k.flag("role_first", True):
            yield "meta", ctx.sse(chunk({"role": "assistant", "content": None}, None))
        if chat and reasoning:
            for piece in split_tokens(reasoning):
                yield "meta", ctx.sse(chunk({"reasoning_content": piece}, None))
        for token in tokens:
            yield "token", ctx.sse(chunk({"content": token}, None, token))
        yield from tool_chunks()
        yield "end", ctx.sse(chunk({} if chat else None, finish, ""))
        include = (body.get("stream_options") or {}).get("include_usage")
        if k.flag("usage", bool(include)):
            yield (
                "end",
                ctx.sse(
                    {"id": "cmpl-1", "object": obj, "model": model, "choices": [], "usage": usage}
                ),
            )
        if k.flag("done", True):
            yield "end", ctx.sse("[DONE]")

    def error(position: int) -> bytes:
        message = ctx.error_message(position)
        kind = k.get("error_kind", "server_error")
        shape = k.get("error_shape", "object")
        done = ctx.sse("[DONE]")
        if shape == "llamacpp":
            err = ctx.dumps({"code": 500, "message": message, "type": kind})
            return f"error{ctx.sep}{err}{ctx.eol}{ctx.eol}".encode() + done
        if shape == "tgi":
            return ctx.sse({"error": {"message": message, "http_status_code": 422}}) + done
        if shape == "string":
            return ctx.sse({"error": message})
        if shape == "event":
            return ctx.sse({"message": message, "type": kind}, event="error")
        return (
            ctx.sse({"error": {"message": message, "type": kind, "param": None, "code": None}})
            + done
        )

    return 200, _stream_headers(ctx, "text/event-stream; charset=utf-8"), _run(ctx, items(), error)


# -- TGI ------------------------------------------------------------------------------


def _tgi_error_body(ctx: Ctx, message: str) -> Any:
    status = ctx.k.num("status") or 500
    kind = {429: "overloaded", 422: "validation", 424: "generation"}.get(status, "generation")
    return {"error": message, "error_type": ctx.k.get("error_kind", kind)}


def _tgi(ctx: Ctx) -> Routed:
    body, k = ctx.body, ctx.k
    params = body.get("parameters") or {}
    prompt = str(body.get("inputs", ""))
    tokens, cut = ctx.plan(prompt, params.get("max_new_tokens"))
    streaming = ctx.record.path.endswith("/generate_stream")
    details = bool(params.get("details"))
    seed = params.get("seed")
    if seed is None and params.get("do_sample"):
        seed = 1234
    special = k.flag("special", True)
    finish = k.get("finish") or ("length" if cut else "eos_token")
    with_eos = special and finish == "eos_token"
    text = "".join(tokens)
    null_logprob = k.flag("null_logprob")

    def token_obj(i: int, token: str, is_special: bool = False) -> dict[str, Any]:
        return {
            "id": 100 + i if not is_special else 2,
            "text": token,
            "logprob": None if null_logprob else round(-0.125 * (i + 1), 4),
            "special": is_special,
        }

    all_tokens = [token_obj(i, t) for i, t in enumerate(tokens)]
    if with_eos:
        all_tokens.append(token_obj(len(tokens), "</s>", True))
    details_obj = {
        "finish_reason": finish,
        "generated_tokens": len(all_tokens),
        "seed": seed,
        "input_length": len(split_tokens(prompt)),
    }
    if k.flag("overloaded"):
        if not streaming:
            return _error_reply(
                ctx, 429, {"error": "Model is overloaded", "error_type": "overloaded"}
            )
        only = ctx.sse({"error": "Model is overloaded", "error_type": "overloaded"})
        return 200, _stream_headers(ctx, "text/event-stream"), only
    if not streaming:
        if k.num("error_at") is not None:
            kind = k.get("error_kind", "generation") or "generation"
            status = {"overloaded": 429, "validation": 422}.get(kind, 424)
            return _error_reply(ctx, status, {"error": ctx.error_message(0), "error_type": kind})
        reply: dict[str, Any] = {"generated_text": text}
        if details:
            reply["details"] = {**details_obj, "prefill": [], "tokens": all_tokens}
        return _json_reply(ctx, reply)

    truncate = k.flag("truncate")

    def items() -> Iterator[Item]:
        n = len(all_tokens)
        for i, tok in enumerate(all_tokens):
            last = i == n - 1
            final = last and not truncate
            event = {
                "index": i + 1,
                "token": tok,
                "generated_text": text if final else None,
                "details": details_obj if (final and details) else None,
            }
            # the EOS event is the terminator; without one the last token carries it
            yield ("end" if last and tok["special"] else "token"), ctx.sse(event)

    def error(position: int) -> bytes:
        kind = k.get("error_kind", "generation")
        return ctx.sse({"error": ctx.error_message(position), "error_type": kind})

    return 200, _stream_headers(ctx, "text/event-stream"), _run(ctx, items(), error)


# -- Anthropic ------------------------------------------------------------------------


def _anthropic_error_body(ctx: Ctx, message: str) -> Any:
    status = ctx.k.num("status") or 500
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        429: "rate_limit_error",
        529: "overloaded_error",
    }.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def _anthropic(ctx: Ctx) -> Routed:
    body, k = ctx.body, ctx.k
    headers = ctx.record.headers
    if (key := k.get("api_key")) is not None and headers.get("x-api-key") != key:
        return _error_reply(
            ctx,
            401,
            {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            },
        )
    if "anthropic-version" not in headers:
        return _error_reply(
            ctx,
            400,
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "anthropic-version header is required",
                },
            },
        )
    if not isinstance(body.get("max_tokens"), int):
        return _error_reply(
            ctx,
            400,
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
            },
        )
    messages = body.get("messages") or []
    last = messages[-1].get("content", "") if messages else ""
    prompt = last if isinstance(last, str) else "".join(_block_text(b) for b in last)
    tokens, cut = ctx.plan(prompt, body.get("max_tokens"))
    calls = ctx.tool_calls()
    stop_reason = k.get("finish") or ("max_tokens" if cut else "tool_use" if calls else "end_turn")
    model = body.get("model") or "claude-test"

    reasoning = k.get("reasoning")
    in_tokens = len(split_tokens(prompt)) + len(split_tokens(str(body.get("system", ""))))
    if not body.get("stream"):
        if k.num("error_at") is not None:
            kind = k.get("error_kind", "api_error")
            status = 529 if kind == "overloaded_error" else 500
            return _error_reply(
                ctx,
                status,
                {"type": "error", "error": {"type": kind, "message": ctx.error_message(0)}},
            )
        content: list[dict[str, Any]] = []
        if reasoning:
            content.append({"type": "thinking", "thinking": reasoning, "signature": "sig"})
        # two text blocks, to prove the client joins them
        half = len(tokens) // 2
        content.append({"type": "text", "text": "".join(tokens[:half])})
        content.append({"type": "text", "text": "".join(tokens[half:])})
        for i, (name, args) in enumerate(calls):
            tool = {"type": "tool_use", "id": f"toolu_{i}", "name": name}
            content.append({**tool, "input": _json_or_text(args) if args else {}})
        return _json_reply(
            ctx,
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {"input_tokens": in_tokens, "output_tokens": len(tokens)},
            },
        )

    def ev(obj: dict[str, Any]) -> bytes:
        return ctx.sse(obj, event=obj["type"])

    def items() -> Iterator[Item]:
        yield (
            "meta",
            ev(
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_1",
                        "type": "message",
                        "role": "assistant",
                        "content": [],
                        "model": model,
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": in_tokens, "output_tokens": 1},
                    },
                }
            ),
        )
        index = 0
        if reasoning:
            yield (
                "meta",
                ev(
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "thinking", "thinking": ""},
                    }
                ),
            )
            for piece in split_tokens(reasoning):
                yield (
                    "meta",
                    ev(
                        {
                            "type": "content_block_delta",
                            "index": 0,
                            "delta": {"type": "thinking_delta", "thinking": piece},
                        }
                    ),
                )
            yield (
                "meta",
                ev(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "signature_delta", "signature": "c2ln"},
                    }
                ),
            )
            yield "meta", ev({"type": "content_block_stop", "index": 0})
            index = 1
        yield (
            "meta",
            ev(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                }
            ),
        )
        if k.flag("ping", True):
            yield "meta", ev({"type": "ping"})
        for token in tokens:
            yield (
                "token",
                ev(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": token},
                    }
                ),
            )
        yield "end", ev({"type": "content_block_stop", "index": index})
        for i, (name, args) in enumerate(calls, start=index + 1):
            tool = {"type": "tool_use", "id": f"toolu_{i - index - 1}", "name": name}
            block = {"type": "content_block_start", "index": i, "content_block": tool}
            yield "meta", ev({**block, "content_block": {**tool, "input": {}}})
            for piece in ctx.tool_fragments(args):
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield "meta", ev({"type": "content_block_delta", "index": i, "delta": delta})
            yield "meta", ev({"type": "content_block_stop", "index": i})
        yield (
            "end",
            ev(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": len(tokens)},
                }
            ),
        )
        yield "end", ev({"type": "message_stop"})

    def error(position: int) -> bytes:
        kind = k.get("error_kind", "overloaded_error")
        return ctx.sse(
            {"type": "error", "error": {"type": kind, "message": ctx.error_message(position)}},
            event="error",
        )

    return 200, _stream_headers(ctx, "text/event-stream; charset=utf-8"), _run(ctx, items(), error)


# -- Triton HTTP generate ---------------------------------------------------------------


def _triton(ctx: Ctx) -> Routed:
    body, k = ctx.body, ctx.k
    m = re.search(
        r"/v2/models/([^/]+)(?:/versions/([^/]+))?/(generate_stream|generate)$", ctx.record.path
    )
    assert m is not None
    model, version, route = m.group(1), m.group(2) or "1", m.group(3)
    if model == "nope":
        return _json_reply(
            ctx, {"error": f"Request for unknown model: '{model}' is not found"}, 404
        )
    input_name = k.get("input", "text_input") or "text_input"
    output_name = k.get("output", "text_output") or "text_output"
    if input_name not in body:
        trace = f"Traceback (most recent call last):\n  File \"model.py\", line 1, in infer\nKeyError: '{input_name}'\n"
        return 400, [("content-type", "text/event-stream")], ctx.sse({"error": trace})
    prompt = str(body[input_name])
    params = body.get("parameters") or {}
    limit = body.get("max_tokens", params.get("max_tokens"))
    tokens, cut = ctx.plan(prompt, limit if isinstance(limit, int) else None)
    cumulative = k.flag("cumulative")
    # vLLM's Triton backend: a finish_reason output when the request asks for it.
    reason = (k.get("finish") or ("length" if cut else "stop")) if (
        body.get("return_finish_reason") or params.get("return_finish_reason")
    ) else None  # fmt: skip

    def out(text: str, last: bool = False) -> dict[str, Any]:
        obj = {"model_name": model, "model_version": version, output_name: text}
        if last and reason is not None:
            obj["finish_reason"] = [reason] if k.flag("finish_reason_list") else reason
        return obj

    if route == "generate":
        if k.flag("decoupled"):
            return _json_reply(
                ctx,
                {
                    "error": "generate expects model to produce exactly 1 response, use generate stream for model that generates various number of responses"
                },
            )
        if k.num("error_at") is not None:
            return _json_reply(ctx, {"error": ctx.error_message(0)}, 400)
        return _json_reply(ctx, out("".join(tokens), last=True))

    def items() -> Iterator[Item]:
        so_far = ""
        for i, token in enumerate(tokens):
            so_far += token
            yield "token", ctx.sse(out(so_far if cumulative else token, i == len(tokens) - 1))

    def error(position: int) -> bytes:
        return ctx.sse({"error": ctx.error_message(position)})

    return 200, _stream_headers(ctx, "text/event-stream; charset=utf-8"), _run(ctx, items(), error)


# -- Substrate ------------------------------------------------------------------------


def _substrate_error_body(ctx: Ctx, message: str) -> Any:
    return {"error": {"type": "invalid_request_error", "message": message}}


def _substrate(ctx: Ctx) -> Routed:
    body, k = ctx.body, ctx.k
    dag = body.get("dag")
    if not isinstance(dag, dict) or not isinstance(dag.get("nodes"), list) or not dag["nodes"]:
        return _json_reply(ctx, _substrate_error_body(ctx, "dag.nodes is required"), 400)
    nodes = [(str(n.get("id")), n) for n in dag["nodes"]]
    key = k.get("key", "node_id") or "node_id"

    def prompt_of(node: dict[str, Any]) -> str:
        args = node.get("args") or {}
        return str(args.get("prompt", ""))

    texts = {}
    for i, (node_id, node) in enumerate(nodes):
        answer = ctx.answer(prompt_of(node))
        texts[node_id] = answer if i == 0 else f"({node_id}) {answer}"
    shape = k.get("shape", "text")

    def output(text: str) -> dict[str, Any]:
        if shape == "choices":
            return {"choices": [{"text": text}]}
        return {"text": text}

    streaming = "text/event-stream" in ctx.record.headers.get("accept", "")
    if not streaming:
        if k.num("error_at") is not None:
            return _json_reply(ctx, _substrate_error_body(ctx, ctx.error_message(0)), 500)
        return _json_reply(
            ctx, {"data": {nid: output(t) for nid, t in texts.items()}, "status": "success"}
        )
    error_node = k.num("error_node", 0) or 0
    delta_upto = k.num("delta_upto")
    cont = k.flag("continue_after_error")
    error_at = k.num("error_at")

    def delta(text: str) -> dict[str, Any]:
        if shape == "choices":
            return {"choices": {"object": "array.item", "index": 0, "item": {"text": text}}}
        return {"text": text}

    async def items() -> AsyncIterator[Item]:
        delay = k.seconds("delay")
        stall_at = k.num("stall_at")
        truncate = k.flag("truncate")
        count = 0
        failed = False
        for i, (node_id, _) in enumerate(nodes):
            tokens = split_tokens(texts[node_id])
            streamed = tokens if delta_upto is None else tokens[:delta_upto]
            for j, token in enumerate(streamed):
                if error_at is not None and i == error_node and j == error_at:
                    break
                if stall_at is not None and count == stall_at:
                    raise _Stall
                if delay > 0:
                    await asyncio.sleep(delay)
                count += 1
                ctx.record.tokens_sent = count
                yield "token", ctx.sse({"object": "node.delta", key: node_id, "data": delta(token)})
            if error_at is not None and i == error_node:
                failed = True
                yield (
                    "meta",
                    ctx.sse(
                        {
                            "object": "node.error",
                            key: node_id,
                            "data": {
                                "type": k.get("error_kind", "api_error"),
                                "message": ctx.error_message(error_at),
                            },
                        }
                    ),
                )
                if not cont:
                    return
                continue
            yield (
                "meta",
                ctx.sse({"object": "node.result", key: node_id, "data": output(texts[node_id])}),
            )
        if truncate:
            return
        data = {nid: output(t) for nid, t in texts.items()}
        if failed:
            data = {nid: v for nid, v in data.items() if nid != nodes[error_node][0]}
        yield "end", ctx.sse({"object": "graph.result", "data": data})

    return 200, _stream_headers(ctx, "text/event-stream"), items()


# -- Muna -------------------------------------------------------------------------------


def _decode_data_url(url: str) -> str:
    head, _, payload = url.partition(",")
    if head.endswith(";base64"):
        return base64.b64decode(payload).decode()
    return urllib.parse.unquote(payload)


def _muna(ctx: Ctx) -> Routed:
    body, k = ctx.body, ctx.k
    input_name = k.get("input", "prompt") or "prompt"
    inputs = body.get("inputs") or {}
    value = inputs.get(input_name)
    if not isinstance(value, dict) or not isinstance(value.get("data"), str):
        return _json_reply(ctx, {"errors": [{"message": f"Missing input '{input_name}'"}]}, 400)
    prompt = _decode_data_url(value["data"])
    tokens, _ = ctx.plan(prompt, None)
    encoding = k.get("encoding", "base64")
    delta_mode = k.flag("delta")
    tag = body.get("tag", "@test/predictor")

    def remote(text: str) -> dict[str, Any]:
        raw = text.encode()
        if encoding == "percent":
            data = "data:text/plain;charset=utf-8," + urllib.parse.quote(raw)
        elif encoding == "url":
            server = ctx.server
            with server._lock:
                n = len(server.blobs)
                server.blobs[n] = raw
            data = re.sub(r"/predictions/remote$", f"/blob/{n}", _request_url(ctx))
        else:
            data = "data:text/plain;base64," + base64.b64encode(raw).decode()
        return {"data": data, "type": "string"}

    def prediction(text: str | None, error: str | None = None) -> dict[str, Any]:
        return {
            "id": "pred_1",
            "tag": tag,
            "results": None if text is None else [remote(text)],
            "latency": 1.5,
            "error": error,
            "logs": None,
            "created": "2025-05-01T00:00:00Z",
        }

    if not body.get("stream"):
        if k.num("error_at") is not None:
            return _json_reply(ctx, prediction(None, ctx.error_message(0)))
        return _json_reply(ctx, prediction("".join(tokens)))

    def items() -> Iterator[Item]:
        so_far = ""
        for token in tokens:
            so_far += token
            yield "token", ctx.sse(prediction(token if delta_mode else so_far), event="prediction")

    def error(position: int) -> bytes:
        return ctx.sse(prediction(None, ctx.error_message(position)), event="prediction")

    return 200, _stream_headers(ctx, "text/event-stream"), _run(ctx, items(), error)


def _request_url(ctx: Ctx) -> str:
    host = ctx.record.headers.get("host", "127.0.0.1")
    knobs = urllib.parse.urlencode(ctx.record.knobs, quote_via=urllib.parse.quote, safe="")
    prefix = f"/k/{knobs}" if knobs else ""
    return f"http://{host}{prefix}{ctx.record.path}"


# -- Ollama -----------------------------------------------------------------------------


def _ollama(ctx: Ctx) -> Routed:
    body, k = ctx.body, ctx.k
    model = body.get("model") or "llama3.2"
    if model == "nope":
        return _json_reply(ctx, {"error": f"model '{model}' not found, try pulling it first"}, 404)
    messages = body.get("messages") or []
    prompt = _text_of(messages[-1].get("content", "")) if messages else ""
    options = body.get("options") or {}
    tokens, cut = ctx.plan(prompt, options.get("num_predict"))
    done_reason = k.get("finish") or ("length" if cut else "stop")
    reasoning = k.get("reasoning")
    calls = [
        {"function": {"index": i, "name": name, "arguments": _json_or_text(args)}}
        for i, (name, args) in enumerate(ctx.tool_calls())
    ]
    counts = {
        "total_duration": 4883583458,
        "load_duration": 1334875,
        "prompt_eval_count": len(split_tokens(prompt)),
        "prompt_eval_duration": 342546000,
        "eval_count": len(tokens),
        "eval_duration": 4535599000,
    }
    created = "2024-08-04T15:52:19.385406455Z"

    def final(content: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        return {
            "model": model,
            "created_at": created,
            "message": message,
            "done_reason": done_reason,
            "done": True,
            **counts,
        }

    if body.get("stream") is False:
        if k.num("error_at") is not None:
            return _json_reply(ctx, {"error": ctx.error_message(0)}, 500)
        reply = final("".join(tokens))
        if reasoning:
            reply["message"]["thinking"] = reasoning
        if calls:
            reply["message"]["tool_calls"] = calls
        return _json_reply(ctx, reply)

    def chunk(content: str, thinking: str | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if thinking is not None:
            message["thinking"] = thinking
        return {"model": model, "created_at": created, "message": message, "done": False}

    def items() -> Iterator[Item]:
        if reasoning:
            for piece in split_tokens(reasoning):
                yield "meta", ctx.line(chunk("", piece))
        for token in tokens:
            yield "token", ctx.line(chunk(token))
        for group in [[c] for c in calls] if k.flag("tool_lines") else [calls] if calls else []:
            call_chunk = chunk("")
            call_chunk["message"]["tool_calls"] = group
            yield "meta", ctx.line(call_chunk)
        last = ctx.line(final(""))
        if not k.flag("final_newline", True):
            last = last.rstrip(b"\n")
        yield "end", last

    def error(position: int) -> bytes:
        return ctx.line({"error": ctx.error_message(position)})

    return (
        200,
        _stream_headers(ctx, "application/x-ndjson"),
        _run(ctx, items(), error, keepalive=b"\n"),
    )


# -- running it -------------------------------------------------------------------------


# -- model listings (tide models) -------------------------------------------------------


def _listing_route(ctx: Ctx) -> tuple[Callable[[Ctx], Routed], Callable[[Ctx, str], Any]] | None:
    """The listing dialect for this path, with its error body, or None."""
    path, headers = ctx.record.path, ctx.record.headers
    if path.endswith("/v1/models") and "anthropic-version" in headers:
        return _anthropic_models, _anthropic_error_body
    if path.endswith("/models"):
        return _openai_models, _openai_error_body
    if path.endswith("/api/tags"):
        return _ollama_tags, lambda c, m: {"error": m}
    if path.endswith("/info"):
        return _tgi_info, _tgi_error_body
    if path.endswith("/v2/repository/index"):
        return _triton_index, lambda c, m: {"error": m}
    if path.endswith("/props"):
        return _llamacpp_props, lambda c, m: {"error": {"code": 404, "message": m}}
    return None


def _listed(ctx: Ctx, default: list[str]) -> list[str]:
    raw = ctx.k.get("models")
    if raw is None:
        return default
    if raw.startswith("["):
        return [str(item) for item in json.loads(raw)]
    return [item for item in raw.split(",") if item]


def _list_reply(ctx: Ctx, obj: Any) -> Routed:
    if (raw := ctx.k.get("list_body")) is not None:
        ctype = ctx.k.get("ctype", "application/json") or "application/json"
        return 200, [("content-type", ctype)], raw.encode()
    return _json_reply(ctx, obj)


def _padded(ctx: Ctx, entry: dict[str, Any]) -> dict[str, Any]:
    if pad := ctx.k.num("pad"):
        entry["description"] = "x" * pad
    return entry


def _openai_models(ctx: Ctx) -> Routed:
    flavor = ctx.k.get("flavor", "openai")
    n_ctx = ctx.k.num("n_ctx", 2048)
    data = []
    for model in _listed(ctx, ["test-model"]):
        entry: dict[str, Any] = {"id": model, "object": "model", "created": 1733011200}
        if flavor == "vllm":
            entry.update(
                owned_by="vllm",
                root=f"/models/{model}",
                parent=None,
                max_model_len=n_ctx,
                permission=[],
            )
        elif flavor == "llamacpp":
            entry.update(
                owned_by="llamacpp",
                meta={
                    "vocab_type": 2,
                    "n_vocab": 49152,
                    "n_ctx_train": 8192,
                    "n_embd": 576,
                    "n_params": 134515008,
                    "size": 98296320,
                },
            )
        else:
            entry["owned_by"] = "system"
        data.append(_padded(ctx, entry))
    return _list_reply(ctx, {"object": "list", "data": data})


def _llamacpp_props(ctx: Ctx) -> Routed:
    if ctx.k.get("flavor") != "llamacpp":
        return _json_reply(ctx, {"detail": "Not Found"}, 404)
    n_ctx = ctx.k.num("n_ctx", 2048)
    return _json_reply(ctx, {"default_generation_settings": {"n_ctx": n_ctx}, "total_slots": 1})


def _ollama_tags(ctx: Ctx) -> Routed:
    models = []
    for model in _listed(ctx, ["llama3.2:latest"]):
        models.append(
            _padded(
                ctx,
                {
                    "name": model,
                    "model": model,
                    "modified_at": "2025-11-30T10:00:00.0+01:00",
                    "size": 2019393189,
                    "digest": "a80c4f17acd5",
                    "details": {
                        "parent_model": "",
                        "format": "gguf",
                        "family": "llama",
                        "families": ["llama"],
                        "parameter_size": "3.2B",
                        "quantization_level": "Q4_K_M",
                    },
                },
            )
        )
    return _list_reply(ctx, {"models": models})


def _tgi_info(ctx: Ctx) -> Routed:
    model = (_listed(ctx, ["test-model"]) or [""])[0]
    info = {
        "model_id": model,
        "model_sha": None,
        "model_dtype": "torch.float16",
        "model_device_type": "cpu",
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": 128,
        "max_best_of": 2,
        "max_stop_sequences": 4,
        "max_input_tokens": 1024,
        "max_total_tokens": ctx.k.num("n_ctx", 2048),
        "validation_workers": 2,
        "max_client_batch_size": 4,
        "router": "text-generation-router",
        "version": "3.3.6",
        "sha": None,
    }
    return _list_reply(ctx, _padded(ctx, info))


def _anthropic_models(ctx: Ctx) -> Routed:
    headers = ctx.record.headers
    if (key := ctx.k.get("api_key")) is not None and headers.get("x-api-key") != key:
        return _error_reply(
            ctx,
            401,
            {
                "type": "error",
                "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            },
        )
    models = _listed(ctx, ["claude-test-1", "claude-test-0"])
    start = 0
    if after := ctx.k.get("after_id"):
        start = models.index(after) + 1 if after in models else len(models)
    size = ctx.k.num("page") or 1000
    page = models[start : start + size]
    data = [
        _padded(
            ctx,
            {
                "type": "model",
                "id": m,
                "display_name": m.replace("-", " ").title(),
                "created_at": "2025-05-14T00:00:00Z",
            },
        )
        for m in page
    ]
    return _list_reply(
        ctx,
        {
            "data": data,
            "has_more": start + size < len(models),
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        },
    )


def _triton_index(ctx: Ctx) -> Routed:
    broken = ctx.k.get("unavailable")
    index = []
    for model in _listed(ctx, ["toy_stream"]):
        entry = {"name": model, "version": "1", "state": "READY"}
        if model == broken:
            entry.update(state="UNAVAILABLE", reason="unable to load model 'x'")
        index.append(_padded(ctx, entry))
    return _list_reply(ctx, index)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextlib.contextmanager
def serve(*, http: str = "auto") -> Iterator[LLMServer]:
    """Run the server on 127.0.0.1 (a free port) in a thread; yield it; stop it."""
    state = LLMServer()
    config = uvicorn.Config(
        state.app,
        host="127.0.0.1",
        port=0,
        http=http,
        ws="none",
        lifespan="off",
        interface="asgi3",
        log_level=os.environ.get("TIDE_TEST_SERVER_LOG", "critical"),
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"llm-server-{port}", daemon=True
    )
    thread.start()
    try:
        if not server.ready.wait(10):
            raise RuntimeError("the test LLM server did not start within 10 s")
        state.base = f"http://127.0.0.1:{port}"
        state._uvicorn = server
        yield state
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


# -- helpers for tests that drive tokentide backends against this server ---------------


class BackendMaker:
    """Builds backends for a test and closes them all afterwards::

    @pytest.fixture
    async def make(server):
        maker = BackendMaker("tgi")
        yield maker
        await maker.aclose()
    """

    def __init__(self, api: str) -> None:
        self.api = api
        self.made: list[Any] = []

    def __call__(self, url: str, **profile: Any) -> Any:
        from tokentide.backends.registry import create_backend
        from tokentide.config.model import Profile

        env = profile.pop("env", {})
        backend = create_backend(
            Profile(name="test", api=profile.pop("api", self.api), url=url, **profile), env
        )
        self.made.append(backend)
        return backend

    async def aclose(self) -> None:
        for backend in self.made:
            await backend.aclose()


async def drain(stream: AsyncIterator[Any]) -> tuple[list[Any], BaseException | None]:
    """All events of ``stream`` and the error that ended it (None if it ended well)."""
    events: list[Any] = []
    try:
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            async for event in stream:
                events.append(event)
    except Exception as error:
        return events, error
    return events, None


async def read_then_close(
    server: LLMServer, stream: AsyncIterator[Any], tag: str, n: int = 2
) -> tuple[list[Any], float]:
    """Read ``n`` events, close the stream; return them and how long after the close the
    server saw the client go away (seconds; negative if it saw it before close returned)."""
    events = []
    async with contextlib.aclosing(stream):  # type: ignore[type-var]
        for _ in range(n):
            events.append(await anext(stream))
    closed = time.monotonic()
    seen = await server.wait_disconnect(server.record(tag))
    return events, seen - closed
