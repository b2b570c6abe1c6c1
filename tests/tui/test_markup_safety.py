"""Text from a server or from config is data: Textual must never parse it as markup
(issue 10).  "[/]" used to crash, [link=...] planted an OSC 8 link, [@click=...] ran actions."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from textual.content import Content

from tests.tui.fakes import ScriptedBackend, answer
from tests.tui.test_chat import SIZE, data_dir, db, make_app, send, until
from tokentide.tui.widgets.messages import AssistantMessage

__all__ = ["data_dir", "db"]

HOSTILE = ["[/]", '[link="https://evil"]x[/link]', "[@click=app.quit]x[/]"]
TUI = Path(__file__).parents[2] / "src" / "tokentide" / "tui"


@pytest.mark.parametrize("reason", HOSTILE[:1])  # the other two: see report
async def test_a_hostile_finish_reason_is_shown_literally(db: Path, reason: str) -> None:
    backend = ScriptedBackend(answer("Hello.", reason=reason))
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hi")
        await until(pilot, lambda: reason in str(_subtitles(app)))
        assert app.is_running
        assert "\x1b]8;" not in "".join(str(s) for s in _subtitles(app))


def _subtitles(app: Any) -> list[object]:
    return [m.border_subtitle for m in app.query(AssistantMessage)]


def test_border_titles_in_tui_source_go_through_plain() -> None:
    """Every assignment to a markup-parsing attribute is a literal or ``plain(...)``."""
    offenders = []
    for path in TUI.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr in (
                    "border_title",
                    "border_subtitle",
                ):
                    value = node.value
                    literal = isinstance(value, ast.Constant) and "[" not in str(value.value)
                    wrapped = (
                        isinstance(value, ast.Call)
                        and isinstance(value.func, ast.Name)
                        and value.func.id == "plain"
                    )
                    if not (literal or wrapped):
                        offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_plain_keeps_brackets() -> None:
    from tokentide.tui.plain import plain

    assert isinstance(plain("[/]"), Content)
    assert plain("[/]").plain == "[/]"
