"""``--functions FILE.py``: a sample file's public functions as tools, their schema from
hints and docstrings, and calls: arguments checked, exceptions and deadlines as error
results, a blocking function abandoned with its late result dropped."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from tokentide.errors import ConfigError
from tokentide.tools.functions import FunctionsFile, load_functions

SAMPLE = Path(__file__).parent / "sample_functions.py"


@pytest.fixture(scope="module")
def sample() -> FunctionsFile:
    return load_functions(SAMPLE)


def spec(functions: FunctionsFile, name: str) -> dict[str, Any]:
    tool = next(tool for tool in functions.tools if tool.name == name)
    return {"description": tool.description, **tool.parameters}


def test_only_public_functions_defined_in_the_file_are_offered(sample: FunctionsFile) -> None:
    assert [t.name for t in sample.tools] == [
        "add",
        "convert",
        "choose",
        "explode",
        "wait",
        "block",
        "leave",
    ]
    status = sample.status()
    assert (status.name, status.kind, status.state) == ("sample_functions", "functions", "ready")


def test_the_schema_comes_from_hints_and_the_google_docstring(sample: FunctionsFile) -> None:
    assert spec(sample, "add") == {
        "description": "Add two integers.",
        "type": "object",
        "properties": {
            "a": {"type": "integer", "description": "The first number."},
            "b": {
                "type": "integer",
                "description": "The second number, which may be left out.",
                "default": 0,
            },
        },
        "required": ["a"],
    }


def test_enums_optionals_and_the_numpy_docstring(sample: FunctionsFile) -> None:
    schema = spec(sample, "convert")
    assert schema["description"] == "Convert a temperature."
    assert schema["properties"] == {
        "value": {"type": "number", "description": "The temperature."},
        "unit": {
            "enum": ["C", "F"],
            "type": "string",
            "description": "What to convert to.",
            "default": "C",
        },
        "precision": {"type": "integer", "default": None},
    }
    assert schema["required"] == ["value"]


def test_literals_lists_and_dicts(sample: FunctionsFile) -> None:
    props = spec(sample, "choose")["properties"]
    assert props["colour"] == {"enum": ["red", "green"], "type": "string"}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["weights"] == {"type": "object", "additionalProperties": {"type": "number"}}


async def test_calls_convert_their_arguments(sample: FunctionsFile) -> None:
    result = await sample.call("add", {"a": 2, "b": 3}, call_id="1", timeout=10)
    assert (result.call_id, result.name, result.content, result.is_error) == (
        "1",
        "add",
        "5",
        False,
    )
    converted = await sample.call("convert", {"value": 100, "unit": "F"}, call_id="2", timeout=10)
    assert converted.content == "212.0F"
    chosen = await sample.call(
        "choose",
        {"colour": "red", "tags": ["a"], "weights": {"x": 1, "y": 2.5}},
        call_id="3",
        timeout=10,
    )
    assert chosen.content == '{"colour": "red", "tags": ["a"], "total": 3.5}'


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("add", {}, "missing argument 'a'"),
        ("add", {"a": 1, "c": 2}, "unknown argument 'c'"),
        ("add", {"a": "1"}, "argument 'a' must be an integer, got '1'"),
        ("convert", {"value": 1, "unit": "K"}, "must be one of 'C', 'F', got 'K'"),
        ("choose", {"colour": "blue", "tags": [], "weights": {}}, "must be one of 'red', 'green'"),
        ("choose", {"colour": "red", "tags": "a", "weights": {}}, "must be a list"),
    ],
)
async def test_arguments_that_do_not_fit_are_an_error_the_model_reads(
    sample: FunctionsFile, name: str, arguments: dict[str, Any], expected: str
) -> None:
    result = await sample.call(name, arguments, call_id="x", timeout=10)
    assert result.is_error
    assert expected in result.content
    assert "(it takes: " in result.content


async def test_an_exception_is_an_error_result_with_its_type(sample: FunctionsFile) -> None:
    result = await sample.call("explode", {"message": "\x1b[31mboom"}, call_id="e", timeout=10)
    assert result.is_error
    assert result.content == "explode raised ValueError: boom"  # sanitised


async def test_sys_exit_in_a_function_is_only_an_error(sample: FunctionsFile) -> None:
    result = await sample.call("leave", {"code": 3}, call_id="q", timeout=10)
    assert result.is_error and "SystemExit: 3" in result.content


async def test_async_functions_are_awaited_and_get_the_deadline(sample: FunctionsFile) -> None:
    assert (await sample.call("wait", {"seconds": 0}, call_id="w", timeout=10)).content == "waited"
    late = await sample.call("wait", {"seconds": 60}, call_id="w", timeout=0.2)
    assert late.is_error and "did not finish within 0.2 s" in late.content


async def test_a_blocking_function_is_abandoned_and_its_late_result_dropped(
    sample: FunctionsFile,
) -> None:
    module = next(m for n, m in sys.modules.items() if n.startswith("tide_functions_sample"))
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: problems.append(context))
    try:
        late = await sample.call("block", {}, call_id="b", timeout=0.2)
        assert late.is_error and "its result is dropped" in late.content
        # Cancelled by the caller (Esc): the same; the loop is never blocked meanwhile.
        task = asyncio.create_task(sample.call("block", {}, call_id="c", timeout=60))
        assert await asyncio.to_thread(module.STARTED.acquire, timeout=10)
        assert await asyncio.to_thread(module.STARTED.acquire, timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        module.RELEASE.set()
        for _ in range(2):  # both threads return; their results go nowhere
            assert await asyncio.to_thread(module.FINISHED.acquire, timeout=10)
        await asyncio.sleep(0)  # the threads' call_soon_threadsafe callbacks run
        await asyncio.sleep(0)
        assert problems == []
    finally:
        loop.set_exception_handler(None)


def test_a_broken_file_is_a_config_error_naming_the_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n    pass\n")
    with pytest.raises(ConfigError, match=r"broken\.py, line 1: syntax error"):
        load_functions(broken)
    raising = tmp_path / "raising.py"
    raising.write_text("import json\n\nraise RuntimeError('no config')\n")
    with pytest.raises(ConfigError, match=r"raising\.py, line 3 failed to load: RuntimeError"):
        load_functions(raising)
    with pytest.raises(ConfigError, match="does not exist"):
        load_functions(tmp_path / "missing.py")


def test_all_chooses_what_is_offered(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.py"
    chosen.write_text(
        "__all__ = ['b']\n\ndef a() -> str:\n    return 'a'\n\ndef b(x) -> str:\n    return x\n"
    )
    functions = load_functions(chosen)
    assert [t.name for t in functions.tools] == ["b"]
    assert functions.tools[0].parameters == {
        "type": "object",
        "properties": {"x": {}},
        "required": ["x"],
    }


def test_docstring_sections_end_where_the_next_begins() -> None:
    from tokentide.tools.function_schema import parse_docstring

    google = "Search the notes.\n\nArgs:\n    query: What to find.\n    limit (int, optional): At most\n        this many.\n\nReturns:\n    The matches.\n"
    assert parse_docstring(google) == (
        "Search the notes.",
        {"query": "What to find.", "limit": "At most this many."},
    )
    numpy = "Sum.\n\nParameters\n----------\nxs : list of float\n    The numbers.\n\nReturns\n-------\nfloat\n    Their sum.\n"
    assert parse_docstring(numpy) == ("Sum.", {"xs": "The numbers."})
    assert parse_docstring("") == ("", {})
    assert parse_docstring("Two lines\nof description.") == ("Two lines of description.", {})
