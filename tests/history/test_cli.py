"""``tide history``: list, show, export, delete against a real store in TIDE_DATA_DIR."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.history.conftest import python
from tokentide.cli.history import history_app
from tokentide.history.store import HistoryStore

HOSTILE = "evil \x1b]52;c;cHduZWQ=\x07 \x1b[2J\x9b31m done"


def shared_start(a: str, b: str) -> str:
    """The longest common start of two different ids."""
    return a[: next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)]


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TIDE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _fill(data: Path) -> tuple[str, str]:
    with HistoryStore.open(data / "history.sqlite3") as store:
        first = store.create_conversation(profile="work")
        store.add_message(first, "system", "Be brief.")
        store.add_message(first, "user", "Plan a trip to Kyoto\nwith details")
        answer = store.begin_answer(first, profile="work", model="m1")
        store.finish_answer(
            answer,
            "Day 1: temples ```code``` 日本 😀 " + HOSTILE,
            status="complete",
            finish_reason="stop",
            stats={"tokens": 12},
        )
        second = store.create_conversation(title="Second chat")
        store.add_message(second, "user", "hello")
        failed = store.begin_answer(second, profile=None, model=None)
        store.finish_answer(failed, "", status="error", error="HTTP 500 from server")
    return first, second


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(history_app, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_list_with_no_history_is_empty_and_creates_nothing(data: Path) -> None:
    assert run("list") == (0, "", "")
    assert run("list", "--json") == (0, "[]\n", "")
    assert not data.exists()


def test_list_shows_newest_first_and_searches(data: Path) -> None:
    first, second = _fill(data)
    code, out, _ = run("list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [second, first]
    assert lines[1].endswith("Plan a trip to Kyoto") and " 3 " in lines[1]
    code, out, _ = run("list", "--search", "KYOTO")
    assert [line.split()[0] for line in out.splitlines()] == [first]
    code, out, _ = run("list", "--limit", "1", "--json")
    rows = json.loads(out)
    assert [(r["id"], r["title"], r["messages"]) for r in rows] == [(second, "Second chat", 2)]


def test_show_is_sanitised_and_accepts_an_id_prefix(data: Path) -> None:
    first, second = _fill(data)
    unique = next(i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b) + 1
    code, out, err = run("show", first[:unique])
    assert (code, err) == (0, "")
    assert "Plan a trip to Kyoto" in out and "Day 1: temples" in out and "日本 😀" in out
    assert "── Assistant (m1)" in out and "── System" in out
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out
    assert out.rstrip().endswith("done")


def test_show_marks_errors_and_incomplete_answers(data: Path) -> None:
    _, second = _fill(data)
    code, out, _ = run("show", second)
    assert code == 0 and "[error]" in out and "(error: HTTP 500 from server)" in out


def test_json_export_keeps_the_exact_text(data: Path, tmp_path: Path) -> None:
    first, _ = _fill(data)
    target = tmp_path / "out" / "chat.json"
    target.parent.mkdir()
    code, out, err = run("export", first, "--format", "json", "--output", str(target))
    assert (code, out, err) == (0, "", "")
    exported = json.loads(target.read_text(encoding="utf-8"))
    with HistoryStore.open(data / "history.sqlite3") as store:
        original = store.load(first)
    assert exported["id"] == first and exported["format"] == "tokentide-conversation"
    assert [m["content"] for m in exported["messages"]] == [m.content for m in original.messages]
    assert HOSTILE in exported["messages"][-1]["content"]  # exact, escapes and all
    assert exported["messages"][-1]["stats"] == {"tokens": 12}
    assert os.listdir(target.parent) == ["chat.json"]  # no temporary file left
    # To a pipe: the same exact JSON.
    code, out, _ = run("export", first, "-f", "json")
    assert json.loads(out) == exported


def test_markdown_export_is_readable(data: Path, tmp_path: Path) -> None:
    first, _ = _fill(data)
    target = tmp_path / "chat.md"
    target.write_text("old export")
    assert run("export", first, "--output", str(target))[0] == 0
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Plan a trip to Kyoto\n")
    assert "## You\n\nPlan a trip to Kyoto\nwith details\n" in text
    assert "## Assistant (m1)\n\nDay 1: temples" in text
    assert "## System\n\n```\nBe brief.\n```" in text
    assert "- profile: work" in text


def test_exports_never_contain_keys(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "sk-test-CANARY-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    first, _ = _fill(data)
    for fmt in ("md", "json"):
        _, out, err = run("export", first, "-f", fmt)
        assert canary not in out + err
    raw = b"".join(p.read_bytes() for p in data.iterdir() if p.is_file())
    assert canary.encode() not in raw


def test_delete_with_yes(data: Path) -> None:
    first, second = _fill(data)
    code, out, err = run("delete", first, "--yes")
    assert code == 0 and f"Deleted {first}." in err
    _, out, _ = run("list")
    assert [line.split()[0] for line in out.splitlines()] == [second]


def test_delete_refuses_without_yes_when_not_on_a_terminal(data: Path) -> None:
    first, _ = _fill(data)
    code, _, err = run("delete", first, input="y\n")
    assert code == 2 and "--yes" in err
    assert len(run("list")[1].splitlines()) == 2


def _delete_on_a_terminal(data: Path, conversation_id: str, answer: bytes) -> tuple[int, bytes]:
    controller, terminal = pty.openpty()
    try:
        child = python(
            "-c",
            "from tokentide.cli.history import history_app; history_app()",
            "delete",
            conversation_id,
            stdin=terminal,
            stdout=terminal,
            stderr=subprocess.PIPE,
            env={**os.environ, "TIDE_DATA_DIR": str(data)},
        )
        os.close(terminal)
        terminal = -1
        seen = b""
        while b"?" not in seen:  # the question has been asked
            chunk = os.read(controller, 1024)
            assert chunk, seen
            seen += chunk
        os.write(controller, answer)
        _, err = child.communicate(timeout=30)
        return child.returncode, err
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)


def test_delete_asks_on_a_terminal(data: Path) -> None:
    first, second = _fill(data)
    code, err = _delete_on_a_terminal(data, first, b"n\n")
    assert code == 1 and b"Nothing deleted" in err
    assert len(run("list")[1].splitlines()) == 2
    code, err = _delete_on_a_terminal(data, first, b"y\n")
    assert code == 0 and b"Deleted" in err
    assert [line.split()[0] for line in run("list")[1].splitlines()] == [second]


@pytest.mark.parametrize("command", ["show", "export", "delete"])
def test_an_unknown_id_is_an_error_not_a_traceback(data: Path, command: str) -> None:
    _fill(data)
    code, _, err = (
        run(command, "nosuchid", "--yes") if command == "delete" else run(command, "nosuchid")
    )
    assert code == 2
    assert err.startswith("tide: No conversation 'nosuchid'") and "Traceback" not in err


def test_a_damaged_database_is_reported_with_the_exit_code(data: Path) -> None:
    data.mkdir()
    (data / "history.sqlite3").write_bytes(b"garbage" * 100)
    result = subprocess.run(
        [
            *python_args(),
            "list",
        ],
        capture_output=True,
        env={**os.environ, "TIDE_DATA_DIR": str(data)},
        timeout=30,
    )
    err = result.stderr.decode()
    assert result.returncode == 4
    assert "damaged or not a database" in err and "Traceback" not in err
    assert str(data / "history.sqlite3") in err


def test_a_newer_database_is_reported(data: Path) -> None:
    import sqlite3

    data.mkdir()
    db = sqlite3.connect(data / "history.sqlite3")
    db.execute("PRAGMA user_version = 999")
    db.close()
    code, _, err = run("list")
    assert code == 4 and "newer tokentide" in err


def python_args() -> list[str]:
    import sys

    return [sys.executable, "-c", "from tokentide.cli.history import history_app; history_app()"]


def _fill_with_reasoning(data: Path) -> str:
    with HistoryStore.open(data / "history.sqlite3") as store:
        cid = store.create_conversation(title="Thinking chat", profile="work")
        store.add_message(cid, "user", "Pick a colour")
        answer = store.begin_answer(cid, profile="work", model="m1")
        store.finish_answer(
            answer,
            "Blue.\n\n**draft**\n\nalpha",
            status="complete",
            reasoning="Let me think.\n\nThe user wants " + HOSTILE + "\n",
            details={"tokens": [("Blue", -0.01), (".", None)], "nodes": [("draft", "alpha")]},
        )
    return cid


def test_json_export_has_the_reasoning_and_details(data: Path) -> None:
    cid = _fill_with_reasoning(data)
    code, out, _ = run("export", cid, "-f", "json")
    assert code == 0
    exported = json.loads(out)
    assert exported["version"] == 4  # the whole tree, with parts
    user, answer = exported["messages"]
    assert (user["parent_id"], answer["parent_id"]) == (None, user["id"])
    assert (exported["active_leaf"], exported["settings"]) == (answer["id"], None)
    assert (user["reasoning"], user["details"]) == (None, None)
    assert answer["reasoning"] == "Let me think.\n\nThe user wants " + HOSTILE + "\n"  # exact
    assert answer["details"] == {
        "tokens": [["Blue", -0.01], [".", None]],
        "nodes": [["draft", "alpha"]],
    }
    assert answer["content"] == "Blue.\n\n**draft**\n\nalpha"


def test_markdown_export_quotes_the_reasoning_before_the_answer(data: Path) -> None:
    cid = _fill_with_reasoning(data)
    code, out, _ = run("export", cid)
    assert code == 0
    assert (
        "## Assistant (m1)\n\n"
        "> **Reasoning**\n>\n> Let me think.\n>\n> The user wants " + HOSTILE + "\n\n"
        "Blue.\n\n**draft**\n\nalpha\n"
    ) in out  # piped: the original text
    assert "## You\n\nPick a colour\n" in out  # no reasoning section without reasoning


def test_show_includes_the_reasoning_sanitised(data: Path) -> None:
    cid = _fill_with_reasoning(data)
    code, out, _ = run("show", cid)
    assert code == 0
    assert "Reasoning:\n  │ Let me think.\n  │ \n  │ The user wants evil" in out
    assert out.index("Reasoning:") < out.index("Blue.")
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out


def test_an_ambiguous_prefix_is_a_usage_error_listing_the_candidates(data: Path) -> None:
    first, second = _fill(data)
    shared = shared_start(first, second)  # time-ordered ids: a shared start
    assert shared
    for command in (["show", shared], ["export", shared], ["delete", "--yes", shared]):
        code, out, err = run(*command)
        assert code == 2, err
        assert out == ""
        assert f"2 conversation ids start with {shared!r}:" in err
        assert first in err and second in err and "Second chat" in err
    assert len(run("list")[1].splitlines()) == 2  # nothing deleted
    code, out, _ = run("show", first[: len(shared) + 1])  # one more character: unique
    assert code == 0 and "Kyoto" in out


def test_an_empty_id_is_a_usage_error(data: Path) -> None:
    _fill(data)
    code, _, err = run("show", " ")
    assert code == 2 and "No conversation id given." in err


def test_show_prints_the_conversation_settings_when_set(data: Path) -> None:
    from tokentide.history.settings import ConversationSettings

    first, second = _fill(data)
    with HistoryStore.open(data / "history.sqlite3") as store:
        store.set_settings(
            first,
            ConversationSettings(
                system_prompt="Answer in French.\n" + HOSTILE, model="m2", temperature=0.2, seed=7
            ),
        )
    code, out, _ = run("show", first)
    assert code == 0
    assert "Settings: model m2 · temperature 0.2 · seed 7\n" in out
    assert "System prompt:\n  │ Answer in French.\n" in out
    assert "\x1b" not in out  # sanitised like everything else shown
    code, out, _ = run("show", second)
    assert code == 0 and "Settings" not in out and "System prompt" not in out
    code, out, _ = run("export", first, "-f", "json")
    assert json.loads(out)["settings"]["seed"] == 7


# -- whole-tree export, import (issue 12, item 7) -------------------------------------------


def _fill_with_branches(data: Path) -> tuple[str, int, int]:
    """The Kyoto conversation with its answer regenerated (a sibling on screen)."""
    first, _ = _fill(data)
    with HistoryStore.open(data / "history.sqlite3") as store:
        prompt = store.load(first).messages[1].id
        again = store.begin_answer(first, profile="work", model="m1", parent_id=prompt)
        store.finish_answer(again, "Day 1: gardens", status="complete")
    return first, prompt, again


def test_json_export_holds_every_branch_and_markdown_the_one_on_screen(
    data: Path, tmp_path: Path
) -> None:
    first, prompt, again = _fill_with_branches(data)
    code, out, _ = run("export", first, "-f", "json")
    assert code == 0
    exported = json.loads(out)
    contents = [m["content"] for m in exported["messages"]]
    assert contents[2].startswith("Day 1: temples") and contents[3] == "Day 1: gardens"
    assert [m["parent_id"] for m in exported["messages"][2:]] == [prompt, prompt]
    assert exported["active_leaf"] == again
    assert [m["parts"] for m in exported["messages"]] == [["text"]] * 4
    target = tmp_path / "tree.json"
    assert run("export", first, "-f", "json", "-o", str(target))[0] == 0
    assert json.loads(target.read_text(encoding="utf-8")) == exported
    code, out, _ = run("export", first)  # Markdown: the branch on screen only
    assert "Day 1: gardens" in out and "Day 1: temples" not in out


def test_export_piped_into_import_in_real_processes(data: Path) -> None:
    first, _, _ = _fill_with_branches(data)
    environment = {**os.environ, "TIDE_DATA_DIR": str(data)}
    exported = subprocess.run(
        [*python_args(), "export", first, "-f", "json"],
        capture_output=True, env=environment, timeout=30, check=True,
    ).stdout  # fmt: skip
    result = subprocess.run(
        [*python_args(), "import", "-"],
        input=exported, capture_output=True, env=environment, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    new_id = result.stdout.decode().strip()
    assert new_id != first and len(new_id) == 16
    assert f"as {new_id}." in result.stderr.decode()
    code, out, _ = run("export", new_id, "-f", "json")
    assert code == 0
    again, original = json.loads(out), json.loads(exported)
    assert len(again["messages"]) == len(original["messages"]) == 4

    def same(document: dict[str, object]) -> list[object]:
        messages = document["messages"]
        assert isinstance(messages, list)
        return [{k: v for k, v in m.items() if k not in ("id", "parent_id")} for m in messages]

    assert same(again) == same(original)
    assert len(run("list")[1].splitlines()) == 3


def test_import_of_a_bad_file_says_where_and_exits_2(data: Path, tmp_path: Path) -> None:
    _fill(data)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "tokentide-conversation", "version": 4,\n "messages": [1,]}')
    code, out, err = run("import", str(bad))
    assert (code, out) == (2, "")
    assert err.startswith(f"tide: {bad} is not valid JSON: ") and "line 2, column" in err
    code, out, err = run("import", "-", input='{"format": "something else", "messages": []}')
    assert (code, out) == (2, "")
    assert "tide: stdin is not a tokentide conversation export" in err
    assert len(run("list")[1].splitlines()) == 2  # nothing imported


def test_show_prints_the_settings_in_the_real_tide(tmp_path: Path) -> None:
    from tests.tide_process import clean_env, tide_text
    from tokentide.history.settings import ConversationSettings

    environment = clean_env(tmp_path)
    first, _ = _fill(Path(environment["TIDE_DATA_DIR"]))
    with HistoryStore.open(Path(environment["TIDE_DATA_DIR"]) / "history.sqlite3") as store:
        store.set_settings(
            first, ConversationSettings(system_prompt="Short.", max_tokens=32, top_p=0.5)
        )
    result = tide_text("history", "show", first, env=environment)
    assert result.returncode == 0, result.stderr
    assert "Settings: max tokens 32 · top_p 0.5\nSystem prompt:\n  │ Short.\n" in result.stdout
