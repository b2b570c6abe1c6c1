"""``tide ask``: one prompt in, the answer streamed to stdout.  Never imports Textual.

Correct in pipelines: tokens are written as they arrive (everything queued goes out in
one write), no colour or spinner unless stderr is a terminal, stats and errors on
stderr, and exit codes a script can branch on:

    0 ok · 2 usage/config · 3 cannot connect · 4 server or protocol error, or the model
    asked to call a tool (tools are off) · 5 timeout · 130 interrupted (Ctrl-C)
    141 stdout closed (e.g. ``| head``)

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
from typing import IO, TYPE_CHECKING, Any

from tokentide.ask.args import Answer, AskArgs, AskOptions
from tokentide.ask.output import Spinner, Writer, is_terminal
from tokentide.backends.base import Backend, GenerationRequest, Message, request_for
from tokentide.backends.events import Retrying, TextDelta, ToolCallRequested
from tokentide.config.model import Profile
from tokentide.errors import EXIT_INTERRUPTED, TideError, UsageError
from tokentide.generation import Generation, RetryPolicy, State

if TYPE_CHECKING:
    from tokentide.ask.tools import AskRounds
    from tokentide.chat.tool_use import ToolUse

__all__ = ["Answer", "AskArgs", "AskOptions", "build_prompt", "main", "run_ask"]

EXIT_OK = 0
EXIT_TOOL_CALL = 4
"""The model asked for a tool: the answer is not what was asked for (a server-side
outcome, so the server-error code)."""
EXIT_BROKEN_PIPE = 141


def build_prompt(args: list[str], stdin: IO[str] | None) -> str:
    """Prompt arguments, then a blank line, then stdin (read whole) if it is not a tty."""
    parts = [" ".join(args).strip()] if args and " ".join(args).strip() else []
    if stdin is not None and not stdin.isatty():
        data = stdin.read()
        if data.strip():
            parts.append(data)
    return "\n\n".join(parts)


async def _consume(
    gen: Generation,
    out: Writer,
    err: Callable[[str], None],
    options: AskOptions,
    make_sanitizer: Callable[[], Any] | None,
    calls: list[ToolCallRequested],
    rounds: AskRounds | None = None,
) -> None:
    sanitizer = make_sanitizer() if make_sanitizer is not None else None
    as_json = options.json
    if as_json:
        from tokentide.ask.format import event_json as _event_json
    try:
        async for batch in gen.batches():
            calls.extend(e for e in batch if type(e) is ToolCallRequested)
            if rounds is not None:
                rounds.take(batch)
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


async def _run(
    backend: Backend,
    request: GenerationRequest,
    profile: Profile,
    options: AskOptions,
    out: Writer,
    err: Callable[[str], None],
    spin_on: IO[str] | None = None,
    answer: Answer | None = None,
    tools: ToolUse | None = None,
) -> int:
    from tokentide.backends.tool_calls import describe
    from tokentide.sanitize import StreamSanitizer

    calls: list[ToolCallRequested] = []

    def generation_for(request: GenerationRequest) -> Generation:
        return Generation(
            backend,
            request,
            mode="stream" if options.stream else "create",
            deadlines=profile.deadlines,
            retry=RetryPolicy(max_retries=profile.max_retries),
        )

    if tools is not None:
        from tokentide.ask.tools import started

        request = await started(tools, request, err)
    gen = request_gen = generation_for(request)
    rounds: AskRounds | None = None
    if tools is not None:
        from tokentide.ask.tools import AskRounds

        write_json = out.write if options.json else None
        rounds = AskRounds(tools, request, lambda line: report(line), write_json)
    if answer is not None:
        answer.generation = gen
        answer.rounds = rounds
    loop = asyncio.get_running_loop()
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        gen.cancel()
        if rounds is not None:
            rounds.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    spinner: Spinner | None = None
    if spin_on is not None and not options.json and is_terminal(out.stream):
        from tokentide.sanitize import sanitize_title

        spinner = Spinner(spin_on, gen, sanitize_title(backend.name, limit=60))
        out.before_first = spinner.stop

    def report(message: str) -> None:
        if spinner is not None:
            spinner.stop()  # a message (a retry, an error) ends the waiting line
        err(message)

    refused: TideError | None = None
    try:
        while True:
            async with gen:
                if spinner is not None and gen is request_gen:
                    spinner.start()
                try:
                    sanitizer = None if options.raw else StreamSanitizer
                    await _consume(gen, out, report, options, sanitizer, calls, rounds)
                except TideError:
                    pass  # reported below from gen.error, after the partial text
            if rounds is None or interrupted or out.broken:
                break
            try:
                following = await rounds.after(gen)
            except TideError as error:  # a call no one could approve (ApprovalNeeded)
                refused = error
                break
            except asyncio.CancelledError:
                break  # ctrl+c while a tool ran
            if following is None or interrupted:
                break
            calls.clear()  # these were run
            out.paragraph = not options.json
            gen = generation_for(following)
            if answer is not None:
                answer.generation = gen
    finally:
        if spinner is not None:
            spinner.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await backend.aclose()
        if tools is not None:
            await tools.toolbox.aclose()  # no MCP server outlives tide ask
    if not options.json and not out.at_line_start and not out.broken:
        out.write("\n")  # the partial or complete answer ends its line
    if answer is not None:
        answer.stopped = interrupted or refused is not None
    if rounds is None:
        for call in calls:
            report(f"tide: the model asked to call {describe(call)} but tools are off in tide ask")
    failure = refused if refused is not None else gen.error
    if options.json:
        if failure is not None:
            out.write(json.dumps({"type": "error", "error": type(failure).__name__,
                                  "message": failure.message, "exit_code": failure.exit_code},
                                 ensure_ascii=True) + "\n")  # fmt: skip
        out.write(json.dumps({"type": "stats", "state": gen.state.value, **gen.stats.as_dict()},
                             ensure_ascii=True) + "\n")  # fmt: skip
    if options.stats:
        from tokentide.ask.format import format_stats as _format_stats

        report(_format_stats(gen) + ("" if gen.state is State.DONE else f" · {gen.state.value}"))
    if out.broken:
        return EXIT_BROKEN_PIPE
    if refused is not None:
        report(f"tide: {refused}")
        return refused.exit_code
    if interrupted:
        report("stopped")
        return EXIT_INTERRUPTED
    if gen.error is not None:
        report(f"error: {gen.error}")
        return gen.error.exit_code
    return EXIT_TOOL_CALL if calls and rounds is None else EXIT_OK


def run_ask(
    backend: Backend,
    request: GenerationRequest,
    profile: Profile,
    options: AskOptions,
    *,
    stdout: IO[bytes] | None = None,
    stderr: IO[str] | None = None,
    answer: Answer | None = None,
    tools: ToolUse | None = None,
) -> int:
    """Run one generation (with ``tools``: round after round while the model calls
    them), writing to stdout/stderr; returns the exit code.  ``answer``, when given,
    receives what the history saves of it."""
    from tokentide.sanitize import sanitize

    out = Writer(stdout if stdout is not None else sys.stdout.buffer)
    err_stream = stderr if stderr is not None else sys.stderr

    def err(message: str) -> None:
        try:
            err_stream.write(sanitize(message) + "\n")
            err_stream.flush()
        except BrokenPipeError:
            pass

    spin_on = err_stream if is_terminal(err_stream) else None
    code = asyncio.run(_run(backend, request, profile, options, out, err, spin_on, answer, tools))
    if out.broken:
        # Keep Python from complaining about the closed pipe while it exits.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return code


def _fail(error: TideError, stderr: IO[str]) -> int:
    from tokentide.sanitize import sanitize

    stderr.write(f"tide: {sanitize(str(error))}\n")
    return error.exit_code


def main(
    args: AskArgs, *, config: str | None = None, stdin: IO[str] | None = None, exiting: bool = False
) -> int:
    """``tide ask`` from its command line; returns the exit code.  ``config`` is the file
    ``tide --config`` named (``args.config``, after ``ask``, wins); ``exiting``: the
    process ends with ``os._exit`` when this returns (the history is then left open)."""
    from tokentide.backends.registry import create_backend
    from tokentide.config.load import load_settings, profile_from_flags, resolve_profile

    stdin = sys.stdin if stdin is None else stdin
    if args.debug:
        from tokentide.config.paths import data_dir
        from tokentide.logsetup import setup_debug_log

        sys.stderr.write(f"debug log: {setup_debug_log(data_dir() / 'debug.log')}\n")
    try:
        # -a - makes stdin an attachment instead of the prompt's tail.
        text = build_prompt(list(args.prompt), None if "-" in args.attach else stdin)
        if not text.strip() and not args.attach:
            raise UsageError(
                "No prompt given.",
                hint='Usage: tide ask "your question"   or   cat file | tide ask "summarise"',
            )
        if args.approve is not None:  # a usage error even when no tools are configured
            from tokentide.tools.approval import parse_policy

            parse_policy(args.approve, where="--approve")
        settings = load_settings(args.config or config)
        for warning in settings.warnings:
            sys.stderr.write(warning + "\n")
        thread = None
        if args.continue_last or args.conversation is not None:
            from tokentide.ask.thread import check_continue, open_thread

            check_continue(args)
            thread = open_thread(args)
        template = None
        if args.template is not None:
            from tokentide.config.templates import resolve_template

            template = resolve_template(settings, args.template)
        # -P beats the template's profile; --api without -P is an ad-hoc profile.
        name = args.profile or (template.profile if template and not args.api else None)
        if name is None and thread is not None and not args.api and template is None:
            from tokentide.ask.thread import thread_profile

            name = thread_profile(thread, settings)  # the conversation's own, if it exists
        base = resolve_profile(settings, name) if (name or not args.api) else None
        profile = profile_from_flags(
            base, api=args.api, url=args.url, model=args.model, api_key_env=args.api_key_env,
            system=args.system, max_tokens=args.max_tokens, temperature=args.temperature,
            seed=args.seed, target=args.target, template=template,
        )  # fmt: skip
        if thread is not None and thread.settings is not None:
            from tokentide.ask.thread import with_own_settings

            profile = with_own_settings(profile, thread.settings, args)
        backend = create_backend(profile)
        tools = None
        if settings.tools.configured or profile.functions or args.mcp or args.functions:
            from tokentide.ask.tools import tools_for

            tools = tools_for(args, settings, profile, backend)
        user = Message("user", text)
        asked = text  # what the conversation is titled by (not an attached file's name)
        if args.attach:  # read and checked whole before anything is sent
            from tokentide.attach import attached_message

            source = getattr(stdin, "buffer", stdin)  # bytes: a picture may be piped in
            user, text, notes = attached_message(args.attach, text, source, backend, profile)
            sys.stderr.writelines(f"tide: {note}\n" for note in notes)
    except TideError as error:
        return _fail(error, sys.stderr)
    # -s and -t beat a continued conversation's own system prompt, which beats the profile's.
    chosen = args.system is not None or args.template is not None
    system = thread.system if thread and thread.system and not chosen else profile.system
    earlier = () if thread is None else thread.messages
    head = (Message("system", system),) if system else ()
    request = request_for(profile, (*head, *earlier, user))
    if tools is None and earlier:  # earlier calls and results as text: no tools offered
        from dataclasses import replace

        from tokentide.chat.parts import plain_messages

        request = replace(request, messages=plain_messages(request.messages))
    options = AskOptions(stream=not args.no_stream, json=args.json, stats=args.stats, raw=args.raw)
    answer = Answer() if settings.log and not args.no_log else None
    code = run_ask(backend, request, profile, options, answer=answer, tools=tools)
    if answer is not None:
        from tokentide.ask.save import save

        save(
            text, answer, profile, thread, system, base.system if base else None,
            keep_open=exiting, title=asked,
        )  # fmt: skip
    return code
