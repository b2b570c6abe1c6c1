"""Composing a prompt in $VISUAL / $EDITOR (issue 11 item 7).

The editor itself runs only in a real terminal (Textual's headless test driver cannot
suspend): ``edit_text`` is tested with real editor programs here, the suspend-and-return
in tmux (tests/tui/test_tmux_e2e.py), and what the composer does around it with Pilot.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from tests.tui.fakes import ScriptedBackend, until
from tokentide.backends.events import Finish, TextDelta
from tokentide.config.model import Profile, Settings
from tokentide.tui.app import ChatApp
from tokentide.tui.external_editor import EditorError, edit_text, editor_command
from tokentide.tui.widgets.composer import Composer

SIZE = (100, 30)


def script(path: Path, body: str) -> Path:
    """An executable shell script; ``$1`` is the file to edit."""
    path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# -- choosing the editor -------------------------------------------------------------------


def test_visual_comes_before_editor_and_is_split_like_a_shell_would() -> None:
    env = {"VISUAL": "code --wait  -n", "EDITOR": "vi"}
    assert editor_command(env) == ["code", "--wait", "-n"]
    assert editor_command({"EDITOR": "'/opt/my editor/ed' -x"}) == ["/opt/my editor/ed", "-x"]
    assert editor_command({"VISUAL": "  ", "EDITOR": "nano"}) == ["nano"]


def test_no_editor_or_an_unreadable_one_is_explained() -> None:
    with pytest.raises(EditorError, match="export VISUAL or EDITOR"):
        editor_command({})
    with pytest.raises(EditorError, match=r"\$EDITOR cannot be read"):
        editor_command({"EDITOR": "vim 'unclosed"})


# -- running it ----------------------------------------------------------------------------


def test_the_editor_gets_the_draft_in_a_private_file_and_gives_back_what_it_saved(
    tmp_path: Path,
) -> None:
    seen = tmp_path / "seen"
    editor = script(
        tmp_path / "ed",
        f'{{ cat "$1"; echo; stat -c %a "$1"; echo "$1"; }} > {seen}; printf "\\nmore\\n" >> "$1"',
    )
    edited = edit_text("draft ✓", [str(editor)])
    assert edited == "draft ✓\nmore"  # the newline editors add at the end is not kept
    draft, mode, path = seen.read_text(encoding="utf-8").splitlines()
    assert draft == "draft ✓"
    assert mode == "600"
    assert path.endswith(".md")  # editors pick Markdown highlighting
    assert not Path(path).exists()


def test_the_temporary_file_is_removed_even_when_the_editor_fails(tmp_path: Path) -> None:
    record = tmp_path / "path"
    editor = script(tmp_path / "ed", f'echo "$1" > {record}; exit 3')
    with pytest.raises(EditorError, match="exited with status 3; the prompt was left"):
        edit_text("keep me", [str(editor)])
    assert not Path(record.read_text().strip()).exists()


def test_an_editor_that_does_not_exist_is_named() -> None:
    with pytest.raises(EditorError, match="Could not start the editor 'no-such-editor-x'"):
        edit_text("x", ["no-such-editor-x"])


# -- the composer around it ------------------------------------------------------------------


def make_app(tmp_path: Path, backend: Any = None) -> ChatApp:
    prof = Profile(name="main", api="openai", url="http://scripted.test/v1", model="m")
    settings = Settings(profiles={"main": prof}, default="main")
    return ChatApp(settings, prof, history_path=tmp_path / "h.sqlite3", backend=backend)


def messages(app: ChatApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def ctrl_g_on_a_draft(tmp_path: Path, said: str) -> str:
    """Press ctrl+g over the draft "my draft", wait for a notification saying ``said``;
    the composer's text then."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        composer = app.query_one(Composer)
        composer.focus()
        composer.set_prompt("my draft")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: any(said in m for m in messages(app)))
        return composer.text


async def test_ctrl_g_without_an_editor_says_how_to_set_one_and_keeps_the_draft(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    assert await ctrl_g_on_a_draft(tmp_path, "export VISUAL or EDITOR") == "my draft"


async def test_where_the_screen_cannot_be_handed_over_the_draft_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pilot's headless driver cannot suspend, like Textual Web: say so, change nothing.
    ran = tmp_path / "ran"
    monkeypatch.setenv("VISUAL", str(script(tmp_path / "ed", f"touch {ran}")))
    assert await ctrl_g_on_a_draft(tmp_path, "cannot hand the screen") == "my draft"
    assert not ran.exists()


async def test_the_editor_waits_while_an_answer_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VISUAL", "true")
    backend = ScriptedBackend([TextDelta("a"), TextDelta(" b"), Finish("stop")], pause_before=1)
    app = make_app(tmp_path, backend)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        composer = app.query_one(Composer)
        composer.focus()
        composer.set_prompt("go")
        await pilot.press("enter")
        await backend.paused.wait()
        composer.set_prompt("next one")
        await pilot.press("ctrl+g")
        await until(pilot, lambda: any("An answer is streaming" in m for m in messages(app)))
        assert composer.text == "next one"
        backend.resume.set()
        await until(pilot, lambda: not app.chat.generating)
        assert not composer.answer_streaming
