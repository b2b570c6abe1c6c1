"""``[templates.NAME]`` (issue 11 item 8): checked when the file loads, applied as
"flags beat the template, the template beats the profile", and what reaches the server
(a real ``tide ask -t`` against the loopback test server)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer
from tests.tide_process import tide_text as tide
from tokentide.config.load import BUILTIN_LOCAL, load_settings, profile_from_flags
from tokentide.config.model import Template
from tokentide.config.templates import resolve_template, start_from_template
from tokentide.errors import ConfigError

PROFILES = (
    'default = "main"\n'
    '[profiles.main]\napi = "openai"\nurl = "http://127.0.0.1:9/v1"\nmodel = "big"\n'
    "temperature = 0.9\nmax_tokens = 100\n"
    '[profiles.other]\napi = "tgi"\nurl = "http://127.0.0.1:9"\n'
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.exit_code == 2
    return f"{caught.value} {caught.value.hint}"


def test_templates_load_in_file_order_with_every_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        PROFILES + '[templates.review]\nprofile = "other"\nmodel = "coder"\nsystem = "Be brief."\n'
        "temperature = 0.2\nmax_tokens = 800\ntop_p = 0.5\nseed = 7\n"
        "[templates.plain]\n",
    )
    settings = load_settings(path)
    assert list(settings.templates) == ["review", "plain"]
    assert settings.templates["review"] == Template(
        name="review", profile="other", model="coder", system="Be brief.",
        temperature=0.2, max_tokens=800, top_p=0.5, seed=7,
    )  # fmt: skip
    assert settings.templates["plain"] == Template(name="plain")


def test_a_conversation_from_a_template_starts_from_its_profile_with_it_applied(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        write(tmp_path, PROFILES + '[templates.t]\nmodel = "small"\nsystem = "S"\ntop_p = 0.3\n')
    )
    start = start_from_template(settings, "t")
    # No profile named: the default one; the template beats it where it says something.
    assert start.profile.name == "main" and start.profile.url == "http://127.0.0.1:9/v1"
    assert (start.profile.model, start.system, start.profile.top_p) == ("small", "S", 0.3)
    assert start.profile.temperature == 0.9  # the profile's, the template is silent
    assert start.request_defaults() == {
        "model": "small", "max_tokens": 100, "temperature": 0.9, "top_p": 0.3,
    }  # fmt: skip


def test_a_template_may_name_the_builtin_local_profile(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[templates.l]\nprofile = "local"\nseed = 1\n'))
    start = start_from_template(settings, "l")
    assert start.profile.api == BUILTIN_LOCAL.api and start.profile.seed == 1


def test_an_unknown_template_names_the_known_ones(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, PROFILES + "[templates.a]\n[templates.b]\n"))
    with pytest.raises(ConfigError) as caught:
        start_from_template(settings, "c")
    assert caught.value.exit_code == 2
    assert "No template named 'c'" in str(caught.value) and str(tmp_path) in str(caught.value)
    assert caught.value.hint == "Templates: 'a', 'b'."


def test_a_number_where_a_template_goes_says_that_temperature_moved(tmp_path: Path) -> None:
    # tide ask -t 0.7 used to be a temperature (a breaking change, README "Changes").
    with pytest.raises(ConfigError) as caught:
        resolve_template(load_settings(write(tmp_path, PROFILES)), "0.7")
    assert "--temperature 0.7" in (caught.value.hint or "")
    assert "There are none yet" in (caught.value.hint or "")  # no templates at all


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("temprature = 0.2", "unknown key 'temprature'. Did you mean 'temperature'?"),
        ("url = 'http://h/v1'", "unknown key 'url'"),
        ("temperature = -1", "temperature must be at least 0"),
        ("temperature = nan", "finite"),
        ("top_p = 2", "top_p must be at most 1"),
        ("max_tokens = 0", "max_tokens must be at least 1"),
        ("seed = 1.5", "seed must be a whole number"),
        ("system = 3", "system must be a string"),
        (
            'profile = "mian"',
            "profile = 'mian', but there is no such profile. Did you mean 'main'?",
        ),
    ],
)
def test_bad_template_values_name_the_file_and_line(
    tmp_path: Path, lines: str, message: str
) -> None:
    path = write(tmp_path, PROFILES + f'[templates.t]\nmodel = "m"\n{lines}\n')
    text = error_of(path)
    line = PROFILES.count("\n") + 3
    assert text.startswith(f"{path}:{line}: "), text
    assert message in text
    if "unknown key" in message:
        assert "A template takes: max_tokens, model, profile, seed, system" in text


def test_a_template_that_is_not_a_table_is_a_config_error(tmp_path: Path) -> None:
    assert "must be a table" in error_of(write(tmp_path, 'templates = { t = "x" }\n'))
    assert "must be a table" in error_of(write(tmp_path, 'templates = "x"\n'))


def test_flags_beat_the_template_and_the_template_beats_the_profile(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, PROFILES))
    template = Template(name="t", model="small", system="S", temperature=0.2, max_tokens=5)
    base = settings.profiles["main"]
    profile = profile_from_flags(base, template=template, temperature=0.0, system=None)
    assert (profile.model, profile.system, profile.temperature, profile.max_tokens) == (
        "small", "S", 0.0, 5,
    )  # fmt: skip
    # An ad-hoc profile from flags takes the template too.
    ad_hoc = profile_from_flags(None, api="openai", url="http://h/v1", template=template)
    assert (ad_hoc.model, ad_hoc.temperature) == ("small", 0.2)
    assert profile_from_flags(None, api="openai", template=template, model="x").model == "x"


# -- what reaches the server ------------------------------------------------------------


def served_config(server: LLMServer, tag: str) -> str:
    return (
        f'default = "main"\n[profiles.main]\napi = "openai"\nurl = "{server.url(tag=tag)}/v1"\n'
        'model = "profile-model"\ntemperature = 0.9\nmax_retries = 0\n'
        '[profiles.spare]\napi = "openai"\nurl = "http://127.0.0.1:9/v1"\n'
        '[templates.terse]\nsystem = "Answer in one word."\ntemperature = 0.1\n'
        'model = "template-model"\nmax_tokens = 7\ntop_p = 0.5\nseed = 3\n'
    )


def test_tide_ask_with_a_template_sends_its_system_prompt_and_sampling(
    server: LLMServer, env: dict[str, str]
) -> None:
    tag = f"tpl-{uuid.uuid4().hex[:8]}"
    Path(env["TIDE_CONFIG"]).write_text(served_config(server, tag))
    result = tide("ask", "-t", "terse", "hello", env=env)
    assert result.returncode == 0, result.stderr
    body = server.record(tag).body
    assert body["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "hello"},
    ]
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("template-model", 0.1, 7)
    assert (body["top_p"], body["seed"]) == (0.5, 3)


def test_command_line_flags_beat_the_template(server: LLMServer, env: dict[str, str]) -> None:
    tag = f"tpl-{uuid.uuid4().hex[:8]}"
    Path(env["TIDE_CONFIG"]).write_text(served_config(server, tag))
    result = tide(
        "ask", "hello", "--template", "terse", "--temperature", "0", "-m", "flag-model",
        "-s", "Be loud.", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = server.record(tag).body
    assert body["messages"][0] == {"role": "system", "content": "Be loud."}
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("flag-model", 0, 7)


def test_an_unknown_template_on_the_command_line_exits_2(env: dict[str, str]) -> None:
    Path(env["TIDE_CONFIG"]).write_text("[templates.terse]\n[templates.long]\n")
    result = tide("ask", "-t", "0.7", "hello", env=env)
    assert result.returncode == 2
    assert "No template named '0.7'" in result.stderr
    assert "'terse', 'long'" in result.stderr and "--temperature 0.7" in result.stderr


def test_config_show_lists_templates_and_prices(env: dict[str, str]) -> None:
    Path(env["TIDE_CONFIG"]).write_text(
        '[profiles.p]\napi = "openai"\nurl = "http://127.0.0.1:9/v1"\nprice_in = 0.15\n'
        "price_out = 0.6\ncontext_window = 8192\n"
        '[templates."t\\u001b]0;x\\u0007"]\nprofile = "p"\nsystem = "S\\u001b[2J"\n'
    )
    result = tide("config", "show", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for line in ("price_in = 0.15", "price_out = 0.6", "context_window = 8192"):
        assert line in lines
    at = lines.index("[templates.'t\\x1b]0;x\\x07']")
    assert lines[at + 1 : at + 3] == ["profile = 'p'", "system = 'S\\x1b[2J'"]
    assert "\x1b" not in result.stdout


def test_the_examples_in_tide_config_init_load_when_uncommented(tmp_path: Path) -> None:
    from tokentide.config.example import EXAMPLE_CONFIG

    text = re.sub(r"(?m)^# (\[|[a-z_]+ = )", r"\1", EXAMPLE_CONFIG)
    settings = load_settings(write(tmp_path, text))
    assert settings.templates["review"].profile == "vllm"
    assert settings.profiles["openai"].price_out == 0.6
    assert settings.profiles["vllm"].context_window == 8192
    assert start_from_template(settings, "review").profile.url == "http://127.0.0.1:8000/v1"


def test_the_readme_config_with_a_template_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[templates." in b]
    settings = load_settings(write(tmp_path, block))
    start = start_from_template(settings, "review")
    assert start.profile.name == "vllm" and start.profile.temperature == 0.2
    assert settings.profiles["openai"].price_in == 0.15
