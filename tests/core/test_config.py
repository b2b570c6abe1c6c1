"""Config files: profiles, defaults, and errors that name the file, the line and the fix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tokentide.config.load import (
    BUILTIN_LOCAL,
    load_settings,
    profile_from_flags,
    resolve_profile,
    write_example,
)
from tokentide.config.paths import config_path, data_dir
from tokentide.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_missing_file_means_builtin_local(tmp_path: Path) -> None:
    settings = load_settings(env={"TIDE_CONFIG": str(tmp_path / "nope.toml")})
    assert resolve_profile(settings) is BUILTIN_LOCAL


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_profiles_and_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
default = "tgi"
[profiles.tgi]
api = "tgi"
url = "http://127.0.0.1:8080"
first_token_timeout = 30
idle_timeout = false
params = { top_k = 5 }
[profiles.openai]
api = "openai"
url = "https://api.openai.com/v1"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
""",
    )
    settings = load_settings(path)
    tgi = resolve_profile(settings)
    assert tgi.api == "tgi" and tgi.deadlines.first_token == 30 and tgi.deadlines.idle is None
    assert tgi.params == {"top_k": 5}
    openai = resolve_profile(settings, "openai")
    assert openai.resolve_api_key({"OPENAI_API_KEY": "sk-x"}) == "sk-x"
    assert resolve_profile(settings, "local") is BUILTIN_LOCAL


def test_unknown_key_names_file_line_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, '[profiles.a]\napi = "openai"\nurl = "http://x/v1"\nmodle = "typo"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert f"{path}:4:" in str(caught.value)
    assert "'modle'. Did you mean 'model'?" in str(caught.value)
    assert "price_in" in (caught.value.hint or "")  # the hint lists the valid keys


def test_backend_specific_keys_are_checked_per_api(tmp_path: Path) -> None:
    ok = write(tmp_path, '[profiles.m]\napi = "local"\ntarget = "x.py:f"\nyields = "cumulative"\n')
    assert resolve_profile(load_settings(ok), "m").options == {
        "target": "x.py:f",
        "yields": "cumulative",
    }
    bad = write(tmp_path, '[profiles.m]\napi = "openai"\nurl = "http://x"\ntarget = "x.py:f"\n')
    with pytest.raises(ConfigError, match="unknown key 'target'"):
        load_settings(bad)


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[profiles.a]\napi = openai\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(path) in str(caught.value) and "line 2" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[profiles.a]\nurl = "http://x"\n', "has no api"),
        ('[profiles.a]\napi = "nope"\n', "unknown api 'nope'"),
        ('[profiles.a]\napi = "tgi"\ntemperature = "hot"\n', "temperature must be a number"),
        ('[profiles.a]\napi = "tgi"\nmax_tokens = 1.5\n', "max_tokens must be a whole number"),
        ('default = "b"\n[profiles.a]\napi = "tgi"\n', "no [profiles.b]"),
        ('colour = "red"\n', "unknown top-level key 'colour'"),
    ],
)
def test_errors_are_specific(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(write(tmp_path, text))


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[profiles.work]\napi = "tgi"\nurl = "http://x"\n'))
    with pytest.raises(ConfigError, match="Profiles: work, local"):
        resolve_profile(settings, "home")


def test_key_in_a_file_readable_by_others_warns(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[profiles.a]\napi = "openai"\nurl = "http://x"\napi_key = "sk-secret"\n'
    )
    assert load_settings(path).warnings == ()
    path.chmod(0o644)
    (warning,) = load_settings(path).warnings
    assert "chmod 600" in warning and "sk-secret" not in warning


@pytest.mark.parametrize(
    "secret",
    [
        'headers = { Authorization = "Bearer hunter2-token" }',
        'headers = { "x-api-key" = "hunter2-token" }',
        'headers = { "X-Custom" = "Bearer hunter2-token" }',
        'params = { api_key = "hunter2-token" }',
        'url = "http://user:hunter2-token@x/v1"',
    ],
)
def test_secrets_outside_api_key_in_a_file_readable_by_others_warn(
    tmp_path: Path, secret: str
) -> None:
    path = write(tmp_path, f'[profiles.a]\napi = "openai"\n{secret}\n')
    assert load_settings(path).warnings == ()
    path.chmod(0o644)
    (warning,) = load_settings(path).warnings
    assert "chmod 600" in warning and "profile 'a'" in warning and "hunter2" not in warning


def test_no_warning_without_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[profiles.a]\napi = "openai"\nurl = "http://x/v1"\n'
        'headers = { "X-Team" = "blue" }\nparams = { max_tokens = 5, top_k = 3 }\n',
    )
    path.chmod(0o644)
    assert load_settings(path).warnings == ()


def test_flags_override_or_build_a_profile() -> None:
    ad_hoc = profile_from_flags(None, api="openai", url="http://h/v1", model="m", temperature=0.0)
    assert (ad_hoc.api, ad_hoc.url, ad_hoc.model, ad_hoc.temperature) == (
        "openai",
        "http://h/v1",
        "m",
        0.0,
    )
    local = profile_from_flags(BUILTIN_LOCAL, max_tokens=5)
    assert local.api == "llamacpp" and local.max_tokens == 5
    with pytest.raises(ConfigError, match="--api"):
        profile_from_flags(None)


def test_init_writes_a_private_example_that_loads(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    write_example(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_profile(load_settings(path)).api == "llamacpp"
    with pytest.raises(ConfigError, match="already exists"):
        write_example(path)


def test_paths_follow_the_environment(tmp_path: Path) -> None:
    env = {"TIDE_CONFIG": str(tmp_path / "c.toml"), "TIDE_DATA_DIR": str(tmp_path / "d")}
    assert config_path(env=env) == tmp_path / "c.toml"
    assert data_dir(env) == tmp_path / "d"
    assert config_path(env={}).name == "config.toml"
    assert not (tmp_path / "d").exists()  # looking up a path creates nothing
    assert os.path.isabs(data_dir({}))
