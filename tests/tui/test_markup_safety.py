"""Text from a server or from config is data: Textual must never parse it as markup
(issue 10).  "[/]" used to crash, [link=...] planted an OSC 8 link, [@click=...] ran actions."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from textual.content import Content

from tests.tui.fakes import ScriptedBackend, answer, until
from tests.tui.test_chat import SIZE, make_app, profile, send
from tokentide.tui.widgets.messages import AssistantMessage

HOSTILE = ["[/]", '[link="https://evil"]x[/link]', "[@click=app.quit]x[/]"]
TUI = Path(__file__).parents[2] / "src" / "tokentide" / "tui"


@pytest.mark.parametrize("reason", HOSTILE)
async def test_a_hostile_finish_reason_is_shown_literally(db: Path, reason: str) -> None:
    backend = ScriptedBackend(answer("Hello.", reason=reason))
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hi")
        await until(pilot, lambda: reason in _painted(app))  # on the answer's border
        assert app.is_running
        assert _links(app) == []
        assert app.query(AssistantMessage)


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


def _painted(app: Any) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def _flat(app: Any) -> str:
    """What is painted, each line stripped and joined, for text a toast wraps."""
    return "".join(line.strip(" ▌▐│") for line in _painted(app).splitlines())


def _links(app: Any) -> list[str]:
    return [
        str(segment.style.link)
        for strip in app.screen._compositor.render_strips()
        for segment in strip
        if segment.style is not None and segment.style.link
    ]


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_a_hostile_model_name_labels_answers_literally_and_survives_continue(
    db: Path, hostile: str
) -> None:
    prof = profile(model=hostile)
    app = make_app(db, ScriptedBackend(answer("Hello.")), prof=prof)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hi")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: hostile in _painted(app))
        assert _links(app) == []
    # The label is stored with the answer: the next start shows it from history.
    again = make_app(db, ScriptedBackend(answer("Again.")), prof=profile(), continue_last=True)
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Hello." in _painted(again))
        assert again.is_running
        assert hostile in _painted(again)
        assert _links(again) == []


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_a_hostile_notification_is_shown_literally(db: Path, hostile: str) -> None:
    app = make_app(db, ScriptedBackend(answer("ok")))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        app.chat.notify(f"server said {hostile}", title=hostile, severity="error")
        # A toast wraps its text: compare with the line breaks taken out.
        await until(pilot, lambda: f"server said {hostile}" in _flat(app))
        assert _links(app) == []


async def test_an_unknown_conversation_id_is_reported_literally(db: Path) -> None:
    app = make_app(db, ScriptedBackend(answer("ok")), conversation_id="[/]")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: "No conversation '[/]'" in _flat(app))
        assert app.is_running


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_profiles_in_the_command_palette_are_shown_literally(
    db: Path, hostile: str
) -> None:
    from tokentide.config.model import Settings

    main = profile()
    other = profile(name=hostile, model=hostile, url="http://[::1]:9/v1")
    settings = Settings(profiles={main.name: main, hostile: other}, default=main.name)
    app = make_app(db, ScriptedBackend(answer("ok")), prof=main, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"switch")
        await until(pilot, lambda: f"Switch profile: {hostile}" in _painted(app))
        assert app.is_running
        assert _links(app) == []


@pytest.mark.parametrize("key", ["[/]bad", "[@click=app.quit]x"])
async def test_a_hostile_key_binding_in_the_config_does_not_hang_the_app(
    db: Path, key: str
) -> None:
    from tokentide.config.model import Settings

    main = profile()
    settings = Settings(profiles={main.name: main}, default=main.name, keys={"stop": key})
    app = make_app(db, ScriptedBackend(answer("ok")), prof=main, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "tokentide" in _painted(app))
        await send(pilot, "hi")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: "ok" in _painted(app))


# Textual widgets and palette commands whose first argument is parsed as markup when it
# is a ``str``.  Each call in tui/ must pass a literal, a Text/Content built from plain
# text, an f-string whose every value is markup-escaped, or ``markup=False``.
_MARKUP_CALLS = {"Label", "Static", "Button", "Option", "SystemCommand", "DiscoveryHit", "Hit"}
_PLAIN_WRAPPERS = {"plain", "Text", "Content"}
_ESCAPERS = {"escape"}


def _call_name(node: ast.expr) -> str:
    if not isinstance(node, ast.Call):
        return ""
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _is_plain(
    node: ast.expr, wrappers: set[str], names: set[str], escapers: frozenset[str] = frozenset()
) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and "[" not in node.value
    if isinstance(node, ast.Name):
        return node.id in names
    if isinstance(node, ast.Call):
        return _call_name(node) in wrappers
    if isinstance(node, ast.JoinedStr):  # f"... {escape(key)} ...": markup, but escaped
        return all(
            _is_plain(part, wrappers, names)
            if isinstance(part, ast.Constant)
            else isinstance(part, ast.FormattedValue) and _call_name(part.value) in escapers
            for part in node.values
        )
    return False


def _escapers(tree: ast.AST) -> frozenset[str]:
    """Textual's ``escape``, and the functions of a module whose every return is a call
    to it (``key(binding_id)`` in the palette's commands)."""
    found = set(_ESCAPERS)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            returns = [n for n in ast.walk(node) if isinstance(n, ast.Return)]
            if returns and all(
                r.value is not None and _call_name(r.value) in _ESCAPERS for r in returns
            ):
                found.add(node.name)
    return frozenset(found)


def _markup_offenders(source: str, where: str) -> list[str]:
    tree = ast.parse(source)
    # Functions of this module that return Content or Text count as wrappers, and a
    # variable only ever assigned from a wrapper counts as plain.
    wrappers = set(_PLAIN_WRAPPERS) | {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and isinstance(node.returns, ast.Name | ast.Constant)
        and getattr(node.returns, "id", getattr(node.returns, "value", "")) in ("Content", "Text")
    }
    assigned: dict[str, bool] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    plain = _is_plain(node.value, wrappers, set())
                    assigned[target.id] = assigned.get(target.id, True) and plain
    names = {name for name, plain in assigned.items() if plain}
    escapers = _escapers(tree)
    offenders = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        if node.func.id not in _MARKUP_CALLS or not node.args:
            continue
        if any(k.arg == "markup" and _false(k.value) for k in node.keywords):
            continue
        # SystemCommand(title, help, callback): both texts are markup.
        texts = node.args[:2] if node.func.id == "SystemCommand" else node.args[:1]
        if node.func.id == "Hit":  # Hit(score, match_display, ...)
            texts = node.args[1:2]
        if not all(_is_plain(arg, wrappers, names, escapers) for arg in texts):
            offenders.append(f"{where}:{node.lineno} {node.func.id}")
    return offenders


def _false(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def test_markup_parsing_widgets_in_tui_source_get_plain_text() -> None:
    offenders = []
    for path in TUI.rglob("*.py"):
        offenders += _markup_offenders(path.read_text(), path.name)
    assert offenders == []


def test_the_markup_scan_catches_a_bare_string() -> None:
    """The scan above is only worth something if it fails on the bug it guards against."""
    bad = 'Label(name)\nStatic(f"{x}")\nSystemCommand("ok", detail, cb)\nButton("[b]x")\n'
    bad += "label = Text(x)\nlabel = x\nOption(label)\n"  # once assigned a str: not plain
    bad += 'SystemCommand("a", f"b {x}", cb)\nSystemCommand("a", f"[b] {escape(x)}", cb)\n'
    good = 'Label(Text(name))\nStatic(x, markup=False)\nSystemCommand("a", "b", cb)\n'
    good += "def f() -> Content: ...\nHit(1, f(), cb)\nt = Text(x)\nOption(t)\n"
    good += "def k(x: str) -> str:\n    return escape(x)\n"
    good += 'SystemCommand("a", f"b ({escape(x)}) c ({k(y)})", cb)\n'
    assert len(_markup_offenders(bad, "bad")) == 7
    assert _markup_offenders(good, "good") == []


def test_every_tide_app_shows_notifications_as_plain_text() -> None:
    from tokentide.tui.app import ChatApp
    from tokentide.tui.compare_screen import CompareApp
    from tokentide.tui.plain import PlainNotifications

    for app in (ChatApp, CompareApp):
        assert issubclass(app, PlainNotifications)
        assert app.__mro__.index(PlainNotifications) < [c.__name__ for c in app.__mro__].index(
            "App"
        )
