"""``tide ask`` remembers (issue 12 item 6): each exchange saved after the answer is
printed, ``-c``/``--continue`` and ``--conversation`` carrying the active branch,
stopped and failed answers saved and marked, ``--no-log``/``log = false``, a history
that cannot be written never costing the answer.  Real ``tide`` processes against the
loopback server; the saved rows read back with :class:`HistoryStore`."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from tests.servers.llm_server import LLMServer
from tests.tide_process import tide_text
from tokentide.history.settings import ConversationSettings
from tokentide.history.store import HistoryStore, StoredMessage


def flags(server: LLMServer, **knobs: object) -> list[str]:
    return ["--api", "openai", "--url", server.url(**knobs) + "/v1", "--model", "m"]


def ask(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return tide_text("ask", *args, env=env)


def db(env: dict[str, str]) -> Path:
    return Path(env["TIDE_DATA_DIR"]) / "history.sqlite3"


def saved(env: dict[str, str]) -> list[tuple[str, tuple[StoredMessage, ...]]]:
    """Every conversation, oldest first, with its active branch."""
    with HistoryStore.open(db(env)) as store:
        ids = [c.id for c in reversed(store.list_conversations())]
        return [(cid, store.load(cid).messages) for cid in ids]


def test_an_exchange_is_saved_after_the_answer(server: LLMServer, env: dict[str, str]) -> None:
    result = ask("why is the sky blue?", *flags(server, tokens=3), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "w0 w1 w2\n" and result.stderr == ""
    [(cid, (prompt, answer))] = saved(env)
    with HistoryStore.open(db(env)) as store:
        conversation = store.load(cid)
    assert conversation.title == "why is the sky blue?"
    assert conversation.profile == "command line"
    assert conversation.active_leaf == answer.id
    assert (prompt.role, prompt.content, prompt.parent_id) == ("user", "why is the sky blue?", None)
    assert (answer.role, answer.content, answer.status) == ("assistant", "w0 w1 w2", "complete")
    assert answer.parent_id == prompt.id
    assert answer.model == "m" and answer.profile == "command line"
    assert answer.finish_reason == "stop"
    assert answer.stats["mode"] == "stream" and answer.stats["chars"] == len("w0 w1 w2")


def test_json_output_is_unchanged_and_saved(server: LLMServer, env: dict[str, str]) -> None:
    result = ask("hi", "--json", *flags(server, tokens=2), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('{"type": "delta", "text": "w0"}')
    [(_, (_, answer))] = saved(env)
    assert answer.content == "w0 w1"


def test_no_log_and_log_false_save_nothing(server: LLMServer, env: dict[str, str]) -> None:
    result = ask("hi", "--no-log", *flags(server), env=env)
    assert result.returncode == 0, result.stderr
    assert not db(env).exists()
    Path(env["TIDE_CONFIG"]).write_text("log = false\n")
    result = ask("hi", *flags(server), env=env)
    assert result.returncode == 0, result.stderr
    assert not db(env).exists()
    Path(env["TIDE_CONFIG"]).write_text('log = "no"\n')
    refused = ask("hi", *flags(server), env=env)
    assert refused.returncode == 2 and "log must be true or false" in refused.stderr


def test_continue_carries_the_active_branch_and_appends_to_it(
    server: LLMServer, env: dict[str, str]
) -> None:
    assert ask("first", *flags(server, echo=1), env=env).returncode == 0
    [(cid, (p1, a1))] = saved(env)
    # Another branch: a second answer to the first prompt, put on screen (as the chat's
    # regenerate does); -c must carry it, not the first answer.
    with HistoryStore.open(db(env)) as store:
        recorder = store.record_answer(cid, parent_id=p1.id)
        recorder.finish("complete", text="the other answer")
        other = recorder.message_id
    result = ask("-c", "second", *flags(server, echo=1, tag="continue"), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "second\n"
    assert server.record("continue").body["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "the other answer"},
        {"role": "user", "content": "second"},
    ]
    [(same, branch)] = saved(env)
    assert same == cid
    assert [(m.role, m.content) for m in branch] == [
        ("user", "first"), ("assistant", "the other answer"),
        ("user", "second"), ("assistant", "second"),
    ]  # fmt: skip
    assert branch[2].parent_id == other and branch[3].parent_id == branch[2].id
    with HistoryStore.open(db(env)) as store:
        assert [m.id for m in store.children(p1.id)] == [a1.id, other]
        assert store.load(cid).title == "first"
    # --continue is -c
    assert ask("--continue", "third", *flags(server, echo=1), env=env).returncode == 0
    assert [m.content for m in saved(env)[0][1]][-2:] == ["third", "third"]


def test_continue_with_no_history_starts_a_conversation(
    server: LLMServer, env: dict[str, str]
) -> None:
    result = ask("-c", "hello", *flags(server, echo=1, tag="fresh"), env=env)
    assert result.returncode == 0, result.stderr
    assert server.record("fresh").body["messages"] == [{"role": "user", "content": "hello"}]
    [(_, messages)] = saved(env)
    assert [m.content for m in messages] == ["hello", "hello"]


def test_a_continued_conversation_keeps_its_system_prompt(
    server: LLMServer, env: dict[str, str]
) -> None:
    assert ask("-s", "Be brief.", "one", *flags(server, echo=1), env=env).returncode == 0
    assert ask("-c", "two", *flags(server, echo=1, tag="sys"), env=env).returncode == 0
    messages = server.record("sys").body["messages"]
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[-1] == {"role": "user", "content": "two"}
    assert (
        ask("-c", "-s", "Be long.", "3", *flags(server, echo=1, tag="s2"), env=env).returncode == 0
    )
    assert server.record("s2").body["messages"][0] == {"role": "system", "content": "Be long."}


def test_conversation_by_prefix(server: LLMServer, env: dict[str, str]) -> None:
    assert ask("older", *flags(server, echo=1), env=env).returncode == 0
    assert ask("newer", *flags(server, echo=1), env=env).returncode == 0
    [(old, _), (new, _)] = saved(env)
    common = next((old[:i] for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b), old)
    unique = old[: len(common) + 1]
    result = ask("--conversation", unique, "again", *flags(server, echo=1, tag="pre"), env=env)
    assert result.returncode == 0, result.stderr
    assert [m["content"] for m in server.record("pre").body["messages"]] == [
        "older", "older", "again",
    ]  # fmt: skip
    assert [m.content for m in dict(saved(env))[old]] == ["older", "older", "again", "again"]
    assert len(dict(saved(env))[new]) == 2
    # the same errors (exit 2) as tide history
    unknown = ask("--conversation", "zzzz", "x", *flags(server), env=env)
    history = tide_text("history", "show", "zzzz", env=env)
    assert unknown.returncode == history.returncode == 2
    assert unknown.stderr == history.stderr and "No conversation 'zzzz'" in unknown.stderr
    # ids begin with their creation time: two made seconds apart share a prefix
    assert common
    ambiguous = ask("--conversation", common, "x", *flags(server), env=env)
    assert ambiguous.returncode == 2
    assert "2 conversation ids start with" in ambiguous.stderr
    assert ambiguous.stderr == tide_text("history", "show", common, env=env).stderr
    both = ask("-c", "--conversation", unique, "x", *flags(server), env=env)
    assert both.returncode == 2 and "not both" in both.stderr


async def test_ctrl_c_saves_the_partial_answer_marked_stopped(
    server: LLMServer, env: dict[str, str]
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tokentide", "ask", "count",
        *flags(server, tokens=400, delay=0.02, tag="sigint-log"),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    first = await asyncio.wait_for(process.stdout.read(2), 30)  # the answer has started
    process.send_signal(signal.SIGINT)
    rest = await process.stdout.read()
    stderr = await process.stderr.read()
    assert await process.wait() == 130
    printed = (first + rest).decode()
    assert "w399" not in printed and stderr.decode().strip() == "stopped"
    [(_, (prompt, answer))] = saved(env)
    assert prompt.content == "count"
    assert answer.status == "stopped" and answer.content == printed.removesuffix("\n")


def test_a_failed_answer_is_saved_marked_error(server: LLMServer, env: dict[str, str]) -> None:
    result = ask("fail please", *flags(server, tokens=5, error_at=2), env=env)
    assert result.returncode == 4
    assert result.stdout == "w0 w1\n" and "boom at token 2" in result.stderr
    [(_, (prompt, answer))] = saved(env)
    assert prompt.content == "fail please"
    assert (answer.status, answer.content) == ("error", "w0 w1")
    assert answer.error is not None and "boom at token 2" in answer.error
    # failing before any text: the prompt and an empty answer marked error
    Path(env["TIDE_CONFIG"]).write_text(
        f'[profiles.t]\napi = "openai"\nurl = "{server.url(status=500)}/v1"\nmax_retries = 0\n'
    )
    result = ask("-P", "t", "again", env=env)
    assert result.returncode == 4
    (prompt, answer) = saved(env)[-1][1]
    assert prompt.content == "again" and (answer.status, answer.content) == ("error", "")
    assert answer.error is not None and "500" in answer.error


def test_an_unwritable_history_still_prints_the_answer(
    server: LLMServer, env: dict[str, str], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    env = {**env, "TIDE_DATA_DIR": str(blocker / "data")}  # cannot be made, even as root
    result = ask("hi", *flags(server, tokens=2), env=env)
    assert result.returncode == 0
    assert result.stdout == "w0 w1\n"
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("tide: this exchange was not saved in the history:")
    assert str(blocker) in result.stderr
    failed = ask("hi", *flags(server, tokens=2, error_at=1), env=env)
    assert failed.returncode == 4 and failed.stdout == "w0\n"
    assert "not saved in the history" in failed.stderr


def test_a_locked_history_goes_to_the_rescue_file(server: LLMServer, env: dict[str, str]) -> None:
    assert ask("first", *flags(server, tokens=1), env=env).returncode == 0
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db(env))], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline() == b"locked\n"
        result = ask("second", *flags(server, tokens=2), env=env)
    finally:
        locker.communicate(b"go\n", timeout=30)
    assert result.returncode == 0 and result.stdout == "w0 w1\n"
    assert result.stderr.count("\n") == 1 and "saved to" in result.stderr
    [rescue] = db(env).parent.glob("history.sqlite3.unsaved-*.json")
    assert str(rescue) in result.stderr
    text = rescue.read_text()
    assert '"prompt": "second"' in text and '"answer": "w0 w1"' in text
    assert len(saved(env)) == 1


LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


def test_c_is_continue_now_not_the_config_file(server: LLMServer, env: dict[str, str]) -> None:
    config = Path(env["TIDE_CONFIG"])
    config.write_text(f'[profiles.t]\napi = "openai"\nurl = "{server.url(echo=1)}/v1"\n')
    old = ask("-c", str(config), "-P", "t", "hi", env=env)
    assert old.returncode == 2
    assert "-c means --continue now" in old.stderr and f"--config {config}" in old.stderr
    assert not db(env).exists()  # nothing sent, nothing saved
    # Not a root option any more: with stdin not a terminal, `tide -c ...` is `tide ask
    # -c ...`, and the old use is caught the same way.
    for command in ("ask", "chat"):
        root = tide_text("-c", str(config), command, "-P", "t", "hi", env=env)
        assert root.returncode == 2 and "-c means --continue now" in root.stderr
    assert not db(env).exists()
    for args in (["--config", str(config), "ask"], ["ask", "--config", str(config)]):
        result = tide_text(*args, "-P", "t", "hi", env={**env, "TIDE_CONFIG": "/nonexistent"})
        assert result.returncode == 0, result.stderr
        assert result.stdout == "hi\n"


def test_saving_imports_only_the_writing_side_of_the_store(
    server: LLMServer, env: dict[str, str]
) -> None:
    result = tide_text("ask", "hi", *flags(server, tokens=2), env=env, python=("-X", "importtime"))
    assert result.returncode == 0 and result.stdout == "w0 w1\n"
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "tokentide.history.exchange" in imported and db(env).exists()
    for module in ("tokentide.history.store", "tokentide.history.tree", "textual", "typer"):
        assert module not in imported, module


def test_a_continued_conversation_keeps_its_profile(server: LLMServer, env: dict[str, str]) -> None:
    Path(env["TIDE_CONFIG"]).write_text(
        'default = "b"\n'
        f'[profiles.a]\napi = "openai"\nurl = "{server.url(echo=1, tag="prof-a")}/v1"\n'
        f'[profiles.b]\napi = "openai"\nurl = "{server.url(echo=1, tag="prof-b")}/v1"\n'
    )
    empty = ask("--conversation", "0", "x", env=env)
    assert empty.returncode == 2 and "No conversation '0'" in empty.stderr
    assert not db(env).exists()
    assert ask("-P", "a", "one", env=env).returncode == 0
    assert ask("-c", "two", env=env).returncode == 0
    assert [m["content"] for m in server.record("prof-a").body["messages"]] == [
        "one", "one", "two",
    ]  # fmt: skip
    assert ask("-c", "-P", "b", "three", env=env).returncode == 0
    assert len(server.record("prof-b").body["messages"]) == 5
    [(_, messages)] = saved(env)
    assert [m.profile for m in messages if m.role == "assistant"] == ["a", "a", "b"]


def test_a_continued_conversation_answers_with_its_own_settings(
    server: LLMServer, env: dict[str, str]
) -> None:
    """Settings given in the app (model, sampling) hold for ``tide ask -c`` too; a flag
    on the command line still beats them, and another profile (-P, --api) does not get
    the conversation's model."""
    Path(env["TIDE_CONFIG"]).write_text(
        f'[profiles.loop]\napi = "openai"\nurl = "{server.url(echo=1, tag="own")}/v1"\n'
        'model = "m"\n'
    )
    assert ask("-P", "loop", "one", env=env).returncode == 0
    [(cid, _)] = saved(env)
    with HistoryStore.open(db(env)) as store:
        store.set_settings(cid, ConversationSettings(model="own", temperature=0.3, seed=9))
    assert ask("-c", "two", env=env).returncode == 0
    body = server.record("own").body
    assert (body["model"], body["temperature"], body["seed"]) == ("own", 0.3, 9)
    assert ask("-c", "3", "--temperature", "0.9", "--model", "flag", env=env).returncode == 0
    body = server.record("own").body
    assert (body["model"], body["temperature"], body["seed"]) == ("flag", 0.9, 9)
    assert ask("-c", "4", *flags(server, echo=1, tag="other"), env=env).returncode == 0
    assert server.record("other").body["model"] == "m"  # --api: not the conversation's model
