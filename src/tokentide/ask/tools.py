"""``tide ask`` with tools: the rounds after the first answer, and asking on the
terminal.

Tool activity goes to stderr, one line per call once it has ended
(``▸ calc.add(a=2, b=3) → 5``), the
final answer to stdout; ``--json`` adds ``tool_result`` events after the
``tool_call`` ones.  A call the rules leave to the user is asked on the terminal
(``/dev/tty``) when there is one; in a pipe with no terminal, ``tide ask`` exits 2 at
the first such call, saying which tool and how to approve it, and runs nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from tokentide.backends.base import GenerationRequest
from tokentide.backends.events import ToolCallRequested
from tokentide.chat.answer import AnswerBuilder
from tokentide.chat.tool_text import call_text, pretty_arguments, source_text, tool_line
from tokentide.chat.tool_use import Choice, ToolUse
from tokentide.generation import Generation, State

if TYPE_CHECKING:
    from tokentide.ask.args import AskArgs
    from tokentide.backends.base import Backend
    from tokentide.backends.events import Event
    from tokentide.config.model import Profile, Settings
    from tokentide.tools import ToolSource

__all__ = ["AskRounds", "started", "terminal_asker", "tools_for"]

T = TypeVar("T")


class AskRounds:
    """The tool rounds of one ``tide ask``: feed it every batch (:meth:`take`), then
    ask it for the next round's request after each generation (:meth:`after`)."""

    def __init__(
        self,
        tools: ToolUse,
        request: GenerationRequest,
        report: Callable[[str], None],
        write_json: Callable[[str], None] | None,
    ) -> None:
        self.tools = tools
        self.request = request
        self.report = report
        self.write_json = write_json
        self.builder = AnswerBuilder()
        self.rounds = 0
        self._task: asyncio.Task[Any] | None = None

    def take(self, batch: Sequence[Event]) -> None:
        self.builder.add(batch)

    async def after(self, gen: Generation) -> GenerationRequest | None:
        """The request of the next round, or None when the answer is done (no calls,
        the generation did not end well, or the rounds ran out: said on stderr).
        :class:`~tokentide.chat.tool_use.ApprovalNeeded` when no one can be asked."""
        calls = self.builder.asked()
        if not calls or gen.state is not State.DONE:
            return None
        if self.rounds >= self.tools.max_rounds:
            self.report(f"tide: {self.tools.stopped_note()}")
            return None
        decided = await self._in_task(self.tools.decide(calls))
        results = await self._in_task(self.tools.run(decided))
        for item, result in zip(decided, results, strict=True):
            self.report(tool_line(item.call, item.source, result, denied=item.denied))
            if self.write_json is not None:
                self.write_json(
                    json.dumps(
                        {"type": "tool_result", "id": result.call_id, "name": result.name,
                         "content": result.content, "is_error": result.is_error},
                        ensure_ascii=True,
                    ) + "\n"
                )  # fmt: skip
        self.builder.end_round(results)
        self.rounds += 1
        return self.tools.next_request(self.request, self.builder.parts())

    async def _in_task(self, work: Coroutine[Any, Any, T]) -> T:
        self._task = task = asyncio.ensure_future(work)
        try:
            return await task
        finally:
            self._task = None

    def cancel(self) -> None:
        """Ctrl+C during a call: stop it (the calls so far stay in the answer)."""
        if self._task is not None:
            self._task.cancel()


def terminal_asker() -> (
    Callable[[ToolCallRequested, ToolSource], Coroutine[Any, Any, Choice]] | None
):
    """Ask on the controlling terminal (``/dev/tty``), so a pipe on stdin and stdout
    does not matter; None when there is no terminal to ask on.

    The answer is read with the event loop watching the terminal (no thread blocked on
    ``readline``), so ctrl+c at the question stops ``tide ask`` at once.
    """
    import os

    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None

    def say(text: str) -> None:
        try:
            os.write(fd, text.encode("utf-8", "replace"))
        except OSError:
            pass

    async def line() -> str:
        loop = asyncio.get_running_loop()
        got: asyncio.Future[str] = loop.create_future()
        pending = bytearray()

        def readable() -> None:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            pending.extend(chunk)
            if (not chunk or b"\n" in pending) and not got.done():
                got.set_result(pending.split(b"\n", 1)[0].decode("utf-8", "replace"))

        loop.add_reader(fd, readable)
        try:
            return await got
        except asyncio.CancelledError:
            say("\n")  # the question's line ends; the terminal is left as it was
            raise
        finally:
            loop.remove_reader(fd)

    async def ask(call: ToolCallRequested, source: ToolSource) -> Choice:
        say(
            f"\nThe model wants to run {call_text(call, source)} (from the {source_text(source)}):\n"
            f"{pretty_arguments(call)}\n"
            "Run it? [y]es once / [a]lways for this tool / [N]o: "
        )
        answer = (await line()).strip().lower()
        if answer in ("y", "yes"):
            return Choice(run=True)
        if answer in ("a", "always"):
            return Choice(run=True, always=True)
        say("Why not (sent to the model; Enter for none)? ")
        return Choice(run=False, reason=(await line()).strip())

    return ask


def tools_for(
    args: AskArgs, settings: Settings, profile: Profile, backend: Backend
) -> ToolUse | None:
    """The tools of this ``tide ask`` (None when the backend cannot take them, which is
    said on stderr; the files are still read, so a broken one is an error).  Functions
    files are imported now; MCP servers start in :func:`started`."""
    import sys

    from tokentide.backends.base import calls_tools
    from tokentide.chat.tool_setup import CommandLineTools, tool_use_from

    given = CommandLineTools(
        mcp=args.mcp, functions=args.functions, approve=args.approve, allow=args.allow_tool
    )
    if calls_tools(backend):
        return tool_use_from(settings, profile, given, ask_user=terminal_asker())
    tool_use_from(settings, profile, given)
    sys.stderr.write(
        f"tide: {profile.name} ({profile.api}) cannot call tools, so none are offered.\n"
    )
    return None


async def started(
    tools: ToolUse, request: GenerationRequest, err: Callable[[str], None]
) -> GenerationRequest:
    """Start the MCP servers, wait until each is ready or has failed (a one-shot prompt
    needs its tools before it is sent; a failure is said, not fatal), and give back the
    request with the tools offered."""
    tools.toolbox.start()
    await tools.toolbox.settled()
    for status in tools.toolbox.snapshot():
        if status.state == "failed":
            err(f"tide: the tools of {status.name} are unavailable: {status.message}")
    return replace(request, tools=tools.specs())
