"""``tide ask -a`` as a real process against the loopback server: a file's text, a
folder's files and stdin arrive in the request (fenced, labelled with their paths);
piped stdin keeps working beside ``-a``; ``-a -`` makes stdin the attachment; a
picture goes to an OpenAI profile as a base64 ``data:`` URL; bad input and a picture
a backend cannot take exit 2 with nothing sent; the history keeps the fenced files and
the pictures' names."""

from __future__ import annotations

import base64
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.servers.llm_server import LLMServer
from tokentide.history.store import HistoryStore

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))


def tide(
    *args: str, env: dict[str, str], cwd: Path, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    # A session of its own: no controlling terminal, as in a pipeline.
    result = subprocess.run(
        [sys.executable, "-m", "tokentide", "ask", *args], cwd=cwd,
        input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True, env=env, timeout=120, check=False, start_new_session=True,
    )  # fmt: skip
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def openai(server: LLMServer, tag: str) -> tuple[str, ...]:
    return ("--api", "openai", "--url", server.url(tag=tag, echo=1) + "/v1", "--model", "m")


def user_content(server: LLMServer, tag: str) -> Any:
    body = server.record(tag).body
    assert isinstance(body, dict)
    return body["messages"][-1]["content"]


def saved_prompt(env: dict[str, str]) -> str:
    """The user text of the one conversation ``tide ask`` saved."""
    with HistoryStore.open(Path(env["TIDE_DATA_DIR"]) / "history.sqlite3") as store:
        [conversation] = store.list_conversations()
        return store.load(conversation.id).messages[0].content


def sent(server: LLMServer, tag: str) -> bool:
    return any(record.tag == tag for record in server.records)


def test_a_file_arrives_fenced_with_its_path(
    server: LLMServer, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "notes.md").write_text("```py\nx = 1\n```\n")
    result = tide(*openai(server, "att-file"), "-a", "notes.md", "summarise", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = "notes.md\n````\n```py\nx = 1\n```\n````\n\nsummarise"
    assert user_content(server, "att-file") == expected
    assert result.stdout == expected + "\n"  # the server echoes what it received


def test_a_folder_and_stdin_beside_it(
    server: LLMServer, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "proj" / "src").mkdir(parents=True)
    (tmp_path / "proj" / "src" / "a.py").write_text("print('a')\n")
    (tmp_path / "proj" / "b.txt").write_text("b\n")
    (tmp_path / "proj" / "out.log").write_text("ignored\n")
    (tmp_path / "proj" / ".gitignore").write_text("*.log\n")
    (tmp_path / "proj" / "blob.bin").write_bytes(b"\0\1")
    result = tide(
        *openai(server, "att-folder"), "--attach", "proj", "what is this?", env=env,
        cwd=tmp_path, stdin=b"piped text\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert user_content(server, "att-folder") == (
        "proj/b.txt\n```\nb\n```\n\nproj/src/a.py\n```\nprint('a')\n```\n\n"
        "what is this?\n\npiped text\n"
    )
    assert "tide: proj: 1 binary file skipped" in result.stderr


def test_a_dash_makes_stdin_the_attachment(
    server: LLMServer, env: dict[str, str], tmp_path: Path
) -> None:
    result = tide(
        *openai(server, "att-stdin"), "-a", "-", "review this", env=env, cwd=tmp_path,
        stdin=b"def f(): pass\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert user_content(server, "att-stdin") == "stdin\n```\ndef f(): pass\n```\n\nreview this"


def test_attachments_without_a_prompt(
    server: LLMServer, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "q.txt").write_text("What is 2+2?")
    result = tide(*openai(server, "att-noprompt"), "-a", "q.txt", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert user_content(server, "att-noprompt") == "q.txt\n```\nWhat is 2+2?\n```"


def test_a_picture_goes_to_openai_as_a_data_url_and_its_name_is_saved(
    server: LLMServer, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "cat.png").write_bytes(PNG)
    result = tide(
        *openai(server, "att-image"), "-a", "cat.png", "what is it?", env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    content = user_content(server, "att-image")
    urls = [part["image_url"]["url"] for part in content if part.get("type") == "image_url"]
    assert urls == ["data:image/png;base64," + base64.b64encode(PNG).decode()]
    assert [p["text"] for p in content if p.get("type") == "text"] == ["what is it?"]
    assert saved_prompt(env) == "what is it?\n\n[image: cat.png, 48 B]"


def test_the_history_keeps_the_fenced_files(
    server: LLMServer, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("alpha")
    result = tide(*openai(server, "att-saved"), "-a", "a.txt", "go", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert saved_prompt(env) == "a.txt\n```\nalpha\n```\n\ngo"


def test_refusals_exit_2_and_nothing_is_sent(
    server: LLMServer, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "data.bin").write_bytes(b"\0\1\2\3")
    (tmp_path / "cat.png").write_bytes(PNG)
    (tmp_path / "ok.txt").write_text("fine")
    cases = {
        "att-missing": (["-a", "ok.txt", "-a", "nope.txt"], "cannot attach nope.txt: no such file or folder."),
        "att-binary": (["-a", "data.bin"], "cannot attach data.bin: it is a binary file"),
        "att-empty": (["-a", "-"], "-a - attaches stdin, but stdin was empty."),
    }  # fmt: skip
    for tag, (args, message) in cases.items():
        result = tide(*openai(server, tag), *args, "go", env=env, cwd=tmp_path)
        assert result.returncode == 2, (tag, result.stderr)
        assert f"tide: {message}" in result.stderr, tag
        assert result.stdout == ""
        assert not sent(server, tag), tag
    primary, secondary = pty.openpty()  # stdin a terminal: nothing piped in
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tokentide", "ask", *openai(server, "att-tty"), "-a", "-", "go"],
            stdin=secondary, capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(secondary)
        os.close(primary)
    assert result.returncode == 2, result.stderr
    assert "tide: -a - attaches stdin, but nothing is piped in." in result.stderr
    assert not sent(server, "att-tty")
    url = server.url(tag="att-tgi", echo=1)
    result = tide("--api", "tgi", "--url", url, "-a", "cat.png", "go", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "cannot take pictures: cat.png not sent." in result.stderr
    assert not sent(server, "att-tgi")


def test_the_conversation_is_titled_by_the_prompt_not_the_file(
    server: LLMServer, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "notes.md").write_text("first line of the notes\n")
    result = tide(*openai(server, "att-title"), "-a", "notes.md", "summarise them", env=env,
                  cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    with HistoryStore.open(Path(env["TIDE_DATA_DIR"]) / "history.sqlite3") as store:
        [conversation] = store.list_conversations()
    assert conversation.title == "summarise them"
