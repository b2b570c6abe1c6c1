"""``--functions FILE.py``: a Python file's public functions offered as tools.

What is offered: every top-level function defined in the file itself (not imported
into it) whose name does not start with ``_``, or, when the file has ``__all__``, the
functions it names.  Their schema and description come from their hints and docstring
(:mod:`tokentide.tools.function_schema`).

Running a call:

* the arguments are checked against the signature first; missing, unknown or
  mistyped arguments are an error result the model reads, never a traceback;
* an ``async def`` function is awaited on the event loop;
* any other runs in a new daemon thread: the loop never blocks, and when the deadline
  passes or the caller is cancelled (Esc) the thread is abandoned and its late result
  dropped (Python cannot stop a thread; a daemon thread at least never keeps tide from
  exiting, which a pool's worker would);
* an exception is an error result with its type and message.

Loading a file runs it, as ``python FILE.py`` would (it is the user's own code); a file
that fails to import is a :class:`~tokentide.errors.ConfigError` naming the file and the
error.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import inspect
import json
import logging
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tokentide.backends.tool_spec import ToolResult, ToolSpec
from tokentide.errors import ConfigError, excerpt
from tokentide.sanitize import sanitize
from tokentide.tools.function_schema import BadArguments, FunctionTool, describe_function
from tokentide.tools.mcp_results import truncate
from tokentide.tools.status import SourceStatus

__all__ = ["FunctionsFile", "load_functions"]

logger = logging.getLogger("tokentide.tools")


class FunctionsFile:
    """The tools of one functions file."""

    def __init__(self, path: Path, tools: Mapping[str, FunctionTool]) -> None:
        self.path = path
        self.name = path.stem
        self._tools = dict(tools)

    @property
    def tools(self) -> tuple[ToolSpec, ...]:
        return tuple(
            ToolSpec(name=t.name, description=t.description, parameters=t.parameters)
            for t in self._tools.values()
        )

    def status(self) -> SourceStatus:
        return SourceStatus(
            name=self.name,
            kind="functions",
            state="ready",
            where=str(self.path),
            tools=self.tools,
        )

    async def call(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        call_id: str | None,
        as_name: str | None = None,
        timeout: float,
    ) -> ToolResult:
        name = as_name or tool

        def error(text: str) -> ToolResult:
            return ToolResult(call_id=call_id, name=name, content=sanitize(text), is_error=True)

        spec = self._tools.get(tool)
        if spec is None:
            return error(f"{self.path.name} has no function {tool!r}")
        try:
            args, kwargs = spec.bind(arguments)
        except BadArguments as exc:
            return error(str(exc))
        try:
            async with asyncio.timeout(timeout):
                if spec.is_async:
                    value = await spec.function(*args, **kwargs)
                else:
                    value = await _in_thread(spec.function, args, kwargs, tool)
        except TimeoutError:
            return error(f"{tool} did not finish within {timeout:g} s; its result is dropped")
        except (Exception, SystemExit) as exc:  # sys.exit() in a tool must not end tide
            logger.debug("function %s in %s raised", tool, self.path, exc_info=True)
            return error(f"{tool} raised {type(exc).__name__}: {excerpt(str(exc), 2000)}")
        return ToolResult(call_id=call_id, name=name, content=_text(value))


def _text(value: Any) -> str:
    """A return value as the model reads it: a string as is, anything JSON can hold as
    JSON, anything else as its ``str``."""
    if isinstance(value, str):
        return truncate(value)
    if value is None:
        return ""
    try:
        return truncate(json.dumps(value, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        return truncate(str(value))


async def _in_thread(
    function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], name: str
) -> Any:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():
            return  # abandoned (deadline, cancel): the late result is dropped
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def run() -> None:
        try:
            value, error = function(*args, **kwargs), None
        except Exception as exc:
            value, error = None, exc
        except BaseException as exc:  # SystemExit & co. from the user's code: a failure
            value, error = None, RuntimeError(f"{type(exc).__name__}: {exc}")
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    threading.Thread(target=run, name=f"tide-function-{name}", daemon=True).start()
    return await future


def load_functions(path: Path) -> FunctionsFile:
    """Import ``path`` and describe its public functions (``--functions FILE.py``)."""
    path = path.expanduser()
    if not path.is_file():
        raise ConfigError(f"functions file {path} does not exist")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"tide_functions_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"functions file {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and typing resolve names through it
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise ConfigError(
            f"functions file {path}, line {exc.lineno}: syntax error: {exc.msg}"
        ) from None
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        frames = traceback.extract_tb(exc.__traceback__)
        line = next((f.lineno for f in reversed(frames) if f.filename == str(path)), None)
        where = f", line {line}" if line else ""
        raise ConfigError(
            f"functions file {path}{where} failed to load: {type(exc).__name__}: {exc}"
        ) from None
    exported = getattr(module, "__all__", None)
    tools: dict[str, FunctionTool] = {}
    for name, value in vars(module).items():
        if not inspect.isfunction(value):
            continue
        if exported is not None:
            if name not in exported:
                continue
        elif name.startswith("_") or value.__module__ != module_name:
            continue
        tools[name] = describe_function(name, value)
    if not tools:
        logger.warning("functions file %s defines no public function", path)
    return FunctionsFile(path, tools)
