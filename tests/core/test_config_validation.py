"""Config values are checked when the file loads: each bad value is a ConfigError (exit 2)
that names the file and the line, never a failure at request time or a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tokentide.config import lines as config_lines
from tokentide.config.lines import LineIndex
from tokentide.config.load import load_settings, profile_from_flags, resolve_profile
from tokentide.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def profile(tmp_path: Path, line: str, *, api: str = "openai") -> Path:
    """A config whose line 4 is ``line``, inside ``[profiles.p]``."""
    return write(tmp_path, f'# test\n[profiles.p]\napi = "{api}"\n{line}\nmodel = "m"\n')


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.exit_code == 2
    return str(caught.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('url = "file:///etc/passwd"', "http:// or https:// only, not file:"),
        ('url = "ftp://example.com/v1"', "http:// or https:// only, not ftp:"),
        ('url = "javascript:alert(1)"', "http:// or https:// only, not javascript:"),
        ('url = "localhost:8000/v1"', "must start with http:// or https://"),
        ('url = "http:///v1"', "has no host"),
        ('url = "http://[::1]:99999/v1"', "port must be a number from 1 to 65535"),
        ('url = "http://127.0.0.1:0/v1"', "from 1 to 65535, not 0"),
        ('url = "http://127.0.0.1:port/v1"', "port must be a number from 1 to 65535"),
        ('url = "http://[::1/v1"', "not a valid URL"),
        ('url = "http://h/v1\\n"', "control character"),
        ('url = "http://h/my model"', "a space"),
        ("temperature = nan", "finite"),
        ("temperature = inf", "finite"),
        ("temperature = -0.5", "at least 0"),
        ("top_p = 1.5", "at most 1"),
        ("max_tokens = 0", "at least 1"),
        ("max_tokens = -5", "at least 1"),
        ("connect_timeout = -1", "more than 0"),
        ("first_token_timeout = 0", "more than 0"),
        ("idle_timeout = inf", "more than 0"),
        ("idle_timeout = nan", "more than 0"),
        ("connect_timeout = 1e300", "at most"),
        ("max_retries = -1", "at least 0"),
        ("max_retries = 1000000", "at most 100"),
        ("max_event_bytes = -1", "at least 1"),
        ("max_answer_bytes = 0", "at least 1"),
        ("params = { temperature = nan }", "params.temperature must be a finite number"),
        ('headers = { "Bad Name" = "x" }', "header name 'Bad Name' is not valid"),
        ('headers = { "X-A" = "a\\r\\nX-Injected: 1" }', "line break"),
        ('api_key = "sk-a\\nb"', "line break"),
        ("price_in = -0.5", "price_in must be at least 0"),
        ("price_out = nan", "price_out must be a finite number"),
        ('price_out = "1.5"', "price_out must be a number"),
        ("context_window = 0", "context_window must be at least 1"),
        ("context_window = 4096.5", "context_window must be a whole number"),
        ("contxt_window = 4096", "unknown key 'contxt_window'. Did you mean 'context_window'?"),
    ],
)
def test_bad_values_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = profile(tmp_path, line)
    text = error_of(path)
    assert text.startswith(f"{path}:4: "), text
    assert message in text


def test_a_grpc_target_port_is_checked_too(tmp_path: Path) -> None:
    text = error_of(profile(tmp_path, 'url = "127.0.0.1:99999"', api="triton-grpc"))
    assert ":4: " in text and "1 to 65535" in text


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1]:8080/v1",
        "https://[2001:db8::1]/v1",
        "HTTPS://API.EXAMPLE.COM/v1",
        "https://example.openai.azure.com/openai/deployments/d?api-version=2024-06-01",
        "http://user:pass@127.0.0.1:8000/v1",
        "http://127.0.0.1:65535",
    ],
)
def test_good_urls_load(tmp_path: Path, url: str) -> None:
    settings = load_settings(profile(tmp_path, f'url = "{url}"'))
    assert resolve_profile(settings, "p").url == url


def test_good_numbers_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[profiles.p]\napi = "tgi"\nurl = "http://h"\ntemperature = 0\ntop_p = 1\n'
        "max_tokens = 1\nseed = -1\nconnect_timeout = 0.5\nidle_timeout = false\n"
        'max_retries = 0\nparams = { top_k = 5, stop = ["a"] }\n',
    )
    p = resolve_profile(load_settings(path), "p")
    assert (p.temperature, p.top_p, p.max_tokens, p.seed, p.max_retries) == (0, 1, 1, -1, 0)
    assert p.deadlines.connect == 0.5 and p.deadlines.idle is None
    assert (p.price_in, p.price_out, p.context_window) == (None, None, None)


def test_prices_and_context_window_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[profiles.p]\napi = "openai"\nurl = "http://h/v1"\nprice_in = 0\nprice_out = 2.5\n'
        "context_window = 131072\n",
    )
    p = resolve_profile(load_settings(path), "p")
    assert (p.price_in, p.price_out, p.context_window) == (0.0, 2.5, 131072)
    assert isinstance(p.price_in, float)


def test_top_level_errors_have_lines_too(tmp_path: Path) -> None:
    path = write(tmp_path, '[profiles.a]\napi = "tgi"\n\n[keys]\nstop = 5\n')
    assert error_of(path).startswith(f"{path}:5: ")


@pytest.mark.parametrize("opening", ["[", "{ b = "])
def test_deeply_nested_toml_is_a_config_error(tmp_path: Path, opening: str) -> None:
    path = write(tmp_path, "a = " + opening * 100_000 + "\n")
    text = error_of(path)
    assert "nested too deeply" in text


def test_deep_params_are_refused_before_they_reach_an_encoder(tmp_path: Path) -> None:
    deep = "params = " + "{ a = " * 40 + "1" + " }" * 40
    assert "nested more than 32" in error_of(profile(tmp_path, deep))


def test_flags_are_checked_like_the_file() -> None:
    with pytest.raises(ConfigError, match="http:// or https:// only"):
        profile_from_flags(None, api="openai", url="file:///etc/passwd")
    with pytest.raises(ConfigError, match="finite"):
        profile_from_flags(None, api="openai", url="http://h/v1", temperature=float("nan"))


def test_line_numbers_of_quoted_names_and_after_multiline_strings() -> None:
    text = (
        '[profiles."a.b"]\n'  # 1
        'system = """\n'  # 2
        "[profiles.fake]\n"  # 3
        "api = 1\n"  # 4
        '"""\n'  # 5
        'api = "tgi"\n'  # 6
    )
    lines = LineIndex(text)
    assert lines.line(("profiles", "a.b")) == 1
    assert lines.line(("profiles", "a.b"), "api") == 6
    assert lines.line(("profiles", "fake")) is None


def profiles_text(count: int) -> str:
    return "".join(
        f'[profiles.p{i}]\napi = "openai"\nurl = "http://10.0.0.{i % 250}:8000/v1"\n'
        f'model = "m"\ntemperature = 0.2\nmax_tokens = 64\nheaders = {{ "X-Team" = "t{i}" }}\n\n'
        for i in range(count)
    )


def test_loading_reads_the_text_once_whatever_the_number_of_profiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic linearity check: a valid file is never scanned for line numbers, and
    an error in its last profile costs one scan (it was one scan per key, error or not)."""
    built: list[LineIndex] = []

    class Counting(LineIndex):
        def __init__(self, text: str) -> None:
            super().__init__(text)
            built.append(self)

    monkeypatch.setattr(config_lines, "LineIndex", Counting)
    for count in (10, 400):
        built.clear()
        load_settings(write(tmp_path, profiles_text(count)))
        assert [index.scans for index in built] == [0]
        built.clear()
        bad = write(tmp_path, profiles_text(count) + "[profiles.last]\napi = 5\n")
        with pytest.raises(ConfigError, match=f":{8 * count + 2}: api must be a string"):
            load_settings(bad)
        assert [index.scans for index in built] == [1]


def _calls_to_load(path: Path) -> int:
    """Every Python and C function call made by one load_settings: a measure of work
    that, unlike a clock, does not depend on the machine's load."""
    calls = 0

    def profiler(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profiler)
    try:
        load_settings(path)
    finally:
        sys.setprofile(None)
    return calls


def test_loading_work_grows_linearly(tmp_path: Path) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir()
    large.mkdir()
    n = 60
    small_calls = _calls_to_load(write(small, profiles_text(n)))
    large_calls = _calls_to_load(write(large, profiles_text(4 * n)))
    # Linear work gives ~4x for 4x the profiles; the old per-key search gave ~16x.
    assert large_calls / small_calls < 6, (small_calls, large_calls)
