"""Backend options are declared with their types (config/apis.py) and checked when the
config file loads, with the file and line, before any backend is imported (issue 13
item 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.test_config_validation import error_of, profile
from tokentide.config.apis import API_NAMES, api_spec
from tokentide.config.load import load_settings


@pytest.mark.parametrize(
    ("api", "line", "message"),
    [
        ("llamacpp", "n_ctx = 8", "n_ctx must be a whole number of at least 16, not 8."),
        ("llamacpp", 'n_threads = "4"', "n_threads must be a whole number of at least 1"),
        ("llamacpp", "extra_buffers = 1", "extra_buffers must be true or false, not 1."),
        ("openai", 'continue_answers = "maybe"', "continue_answers must be one of 'flag'"),
        ("openai", "continue_answers = true", "continue_answers must be one of"),
        ("triton-grpc", 'yields = "auto"', "yields must be one of 'delta', 'cumulative'"),
        ("triton-grpc", 'metadata = "x"', "metadata must be a table, not 'x'."),
        ("ollama", "keep_alive = true", "keep_alive must be a string or a number, not True."),
        ("substrate", "node = 3", "node must be a string, not 3."),
        ("local", 'target = "  "', "target must be a string"),
    ],
)
def test_a_wrong_option_type_names_the_line(
    tmp_path: Path, api: str, line: str, message: str
) -> None:
    text = error_of(profile(tmp_path, line, api=api))
    assert f"config.toml:4: {message}" in text, text


@pytest.mark.parametrize(
    ("api", "line"),
    [
        ("llamacpp", "n_ctx = 2048"),
        ("openai", "continue_answers = false"),
        ("openai", 'continue_answers = "prefill"'),
        ("triton-http", "model_version = 2"),
        ("triton-grpc", 'metadata = { "x-key" = "v" }'),
        ("ollama", "keep_alive = 300"),
        ("ollama", 'keep_alive = "5m"'),
        ("substrate", "graph = { nodes = [] }"),
    ],
)
def test_right_option_types_load(tmp_path: Path, api: str, line: str) -> None:
    settings = load_settings(profile(tmp_path, line, api=api))
    key = line.split(" = ")[0]
    assert key in settings.profiles["p"].options


def test_every_api_declares_a_type_for_each_option() -> None:
    for name in API_NAMES:
        spec = api_spec(name)
        assert all(option.kinds and option.help for option in spec.declared), name


def test_loading_a_config_imports_no_backend(tmp_path: Path) -> None:
    path = profile(tmp_path, "n_ctx = 2048", api="llamacpp")
    code = (
        "import sys; from tokentide.config.load import load_settings;"
        f"load_settings({str(path)!r});"
        "print(sorted(m for m in sys.modules if m.startswith('tokentide.backends')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
