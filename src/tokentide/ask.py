"""``tide ask``: one prompt in, the answer streamed to stdout.  Never imports Textual.

Correct in pipelines: tokens are written as they arrive (everything queued goes out in
one write), no colour or spinner unless stderr is a terminal, stats and errors on
stderr, and exit codes a script can branch on:

    0 ok · 2 usage/config · 3 cannot connect · 4 server or protocol error
    5 timeout · 130 interrupted (Ctrl-C) · 141 stdout closed (e.g. ``| head``)

Model text is sanitised (escape sequences, C1 codes, BEL... removed) before it reaches
stdout, terminal or not, unless ``--raw``; ``--json`` writes every event as one JSON
object per line with ``ensure_ascii``, so the exact text survives and no raw control
byte is ever written.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from tokentide.backends.base import Backend, GenerationRequest
from tokentide.backends.events import Finish, ReasoningDelta, Retrying, TextDelta
from tokentide.config.model import Profile
from tokentide.errors import TideError
from tokentide.generation import Generation, RetryPolicy, State

__all__ = ["AskOptions", "build_prompt", "run_ask"]

EXIT_OK = 0
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


@dataclass(frozen=True, slots=True)
class AskOptions:
    stream: bool = True
    json: bool = False
    stats: bool = False
    raw: bool = False


def build_prompt(args: list[str], stdin: IO[str] | None) -> str:
    """Prompt arguments, then a blank line, then stdin (read whole) if it is not a tty."""
    parts = [" ".join(args).strip()] if args and " ".join(args).strip() else []
    if stdin is not None and not stdin.isatty():
        data = stdin.read()
        if data.strip():
            parts.append(data)
    return "\n\n".join(parts)


def _format_stats(gen: Generation) -> str:
    stats = gen.stats
    parts = []
    if stats.ttft is not None:
        parts.append(f"first token {stats.ttft * 1000:.0f} ms")
    parts.append(f"{stats.token_count} tokens")
    if (rate := stats.tokens_per_s) is not None:
        parts.append(f"{rate:,.1f} tok/s")
    if (total := stats.total) is not None:
        parts.append(f"total {total:.3f} s")
    if stats.attempts > 1:
        parts.append(f"{stats.attempts} attempts")
    return " · ".join(parts)


class _Writer:
    """Writes UTF-8 to a binary stream; remembers whether the last text ended a line."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.at_line_start = True
        self.broken = False

    def write(self, text: str) -> None:
        if not text or self.broken:
            return
        try:
            self.stream.write(text.encode("utf-8", "replace"))
            self.stream.flush()
        except BrokenPipeError:
            self.broken = True
            return
        self.at_line_start = text.endswith("\n")


async def _consume(
    gen: Generation,
    out: _Writer,
    err: Callable[[str], None],
    options: AskOptions,
    make_sanitizer: Callable[[], Any] | None,
) -> None:
    sanitizer = make_sanitizer() if make_sanitizer is not None else None
    as_json = options.json
    try:
        async for batch in gen.batches():
            if as_json:
                out.write("".join(_event_json(event) for event in batch))
            else:
                texts = [e.text for e in batch if type(e) is TextDelta and not e.special]
                if texts:
                    text = "".join(texts)
                    out.write(sanitizer.feed(text) if sanitizer is not None else text)
                for event in batch:
                    if isinstance(event, Retrying):
                        err(
                            f"retrying in {event.delay:.1f} s (attempt {event.attempt}): {event.reason}"
                        )
            if out.broken:
                gen.cancel()
    finally:
        if sanitizer is not None and not as_json:
            out.write(sanitizer.flush())


def _event_json(event: object) -> str:
    if isinstance(event, TextDelta):
        obj: dict[str, Any] = {"type": "delta", "text": event.text}
        for key in ("token_id", "logprob", "node_id"):
            if (value := getattr(event, key)) is not None:
                obj[key] = value
        if event.special:
            obj["special"] = True
    elif isinstance(event, ReasoningDelta):
        obj = {"type": "reasoning", "text": event.text}
    elif isinstance(event, Finish):
        usage = event.usage
        obj = {
            "type": "finish",
            "reason": event.reason,
            "usage": None
            if usage is None
            else {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
            },
        }
        if event.seed is not None:
            obj["seed"] = event.seed
    elif isinstance(event, Retrying):
        obj = {
            "type": "retrying",
            "attempt": event.attempt,
            "delay": event.delay,
            "reason": event.reason,
        }
    else:  # pragma: no cover - every event type is handled above
        obj = {"type": "unknown"}
    return json.dumps(obj, ensure_ascii=True) + "\n"


async def _run(
    backend: Backend,
    request: GenerationRequest,
    profile: Profile,
    options: AskOptions,
    out: _Writer,
    err: Callable[[str], None],
) -> int:
    from tokentide.sanitize import StreamSanitizer

    gen = Generation(
        backend,
        request,
        mode="stream" if options.stream else "create",
        deadlines=profile.deadlines,
        retry=RetryPolicy(max_retries=profile.max_retries),
    )
    loop = asyncio.get_running_loop()
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        gen.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    try:
        async with gen:
            try:
                await _consume(gen, out, err, options, None if options.raw else StreamSanitizer)
            except TideError:
                pass  # reported below from gen.error, after the partial text
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await backend.aclose()
    if not options.json and not out.at_line_start and not out.broken:
        out.write("\n")  # the partial or complete answer ends its line
    if options.json:
        if gen.error is not None:
            out.write(json.dumps({"type": "error", "error": type(gen.error).__name__,
                                  "message": gen.error.message, "exit_code": gen.error.exit_code},
                                 ensure_ascii=True) + "\n")  # fmt: skip
        out.write(json.dumps({"type": "stats", "state": gen.state.value, **gen.stats.as_dict()},
                             ensure_ascii=True) + "\n")  # fmt: skip
    if options.stats:
        err(_format_stats(gen) + ("" if gen.state is State.DONE else f" · {gen.state.value}"))
    if out.broken:
        return EXIT_BROKEN_PIPE
    if interrupted:
        err("stopped")
        return EXIT_INTERRUPTED
    if gen.error is not None:
        err(f"error: {gen.error}")
        return gen.error.exit_code
    return EXIT_OK


def run_ask(
    backend: Backend,
    request: GenerationRequest,
    profile: Profile,
    options: AskOptions,
    *,
    stdout: IO[bytes] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run one generation, writing to stdout/stderr; returns the exit code."""
    from tokentide.sanitize import sanitize

    out = _Writer(stdout if stdout is not None else sys.stdout.buffer)
    err_stream = stderr if stderr is not None else sys.stderr

    def err(message: str) -> None:
        try:
            err_stream.write(sanitize(message) + "\n")
            err_stream.flush()
        except BrokenPipeError:
            pass

    code = asyncio.run(_run(backend, request, profile, options, out, err))
    if out.broken:
        # Keep Python from complaining about the closed pipe while it exits.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return code
