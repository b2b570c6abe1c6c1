"""The JSON export of a whole tree and ``tide history import``: round trips, collisions,
every older version, and bad files refused with where they are wrong, the database
unchanged."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.history.conftest import query
from tokentide.cli.history import history_app
from tokentide.history.export import EXPORT_VERSION, default_export_path, to_dict, to_json
from tokentide.history.importing import READ_VERSIONS, ExportFileError, parse_export
from tokentide.history.records import AnswerDetails
from tokentide.history.settings import ConversationSettings
from tokentide.history.store import HistoryStore

HOSTILE = "evil \x1b]52;c;cHduZWQ=\x07 \x1b[2J\x9b31m done"
SETTINGS = ConversationSettings(system_prompt="Be brief.", model="m2", temperature=0.2, seed=7)


def _tree(store: HistoryStore) -> str:
    """A conversation with two branches (a regenerated answer and an edited prompt),
    settings, reasoning, details, stats, an error and a stopped answer."""
    cid = store.create_conversation(title="Trip " + HOSTILE, profile="work")
    store.set_settings(cid, SETTINGS)
    store.add_message(cid, "system", "You plan trips.")
    q1 = store.add_message(cid, "user", "Plan Kyoto 日本 😀")
    a1 = store.begin_answer(cid, profile="work", model="m1")
    store.finish_answer(
        a1,
        "Day 1: temples\n\n**draft**\n\nalpha",
        status="complete",
        finish_reason="stop",
        stats={"tokens": 12, "ttft": 0.25, "note": "x", "gap": None},
        reasoning="Let me think " + HOSTILE,
        details={"tokens": [("Day", -0.5), (" 1", None)], "nodes": [("draft", "alpha")]},
    )
    a1b = store.begin_answer(cid, profile="work", model="m1", parent_id=q1)  # regenerated
    store.finish_answer(a1b, "Half", status="stopped", finish_reason="length")
    q2 = store.add_message(cid, "user", "And Osaka?", parent_id=a1)
    a2 = store.begin_answer(cid, profile="work")
    store.finish_answer(a2, "", status="error", error="HTTP 500 from server")
    store.add_message(cid, "user", "Osaka, then Nara?", parent_id=a1)  # edited prompt
    store.set_active_leaf(cid, a2)
    assert q2 < a2
    return cid


def _export(store: HistoryStore, cid: str) -> dict[str, Any]:
    document = json.loads(to_json(store.load(cid), messages=store.messages(cid)))
    assert isinstance(document, dict)
    return document


def _without_ids(document: dict[str, Any]) -> dict[str, Any]:
    """The export with every message id replaced by its position in the file (parents
    and the active leaf mapped the same way) and the conversation id left out."""
    position = {m["id"]: i for i, m in enumerate(document["messages"])}
    messages = [
        {**m, "id": position[m["id"]], "parent_id": position.get(m["parent_id"])}
        for m in document["messages"]
    ]
    rest = {k: v for k, v in document.items() if k not in ("id", "messages", "active_leaf")}
    return {**rest, "active_leaf": position[document["active_leaf"]], "messages": messages}


def _dump(path: Path) -> list[tuple[object, ...]]:
    """Everything the history file holds, to compare before and after."""
    if not path.exists():
        return []
    return [
        *query(path, "SELECT * FROM conversations ORDER BY id"),
        *query(path, "SELECT * FROM messages ORDER BY id"),
    ]


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TIDE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(history_app, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


# -- the export ----------------------------------------------------------------------------


def test_the_json_export_holds_every_branch_with_its_parts(store: HistoryStore) -> None:
    cid = _tree(store)
    document = _export(store, cid)
    assert (document["version"], EXPORT_VERSION, READ_VERSIONS[-1]) == (4, 4, 4)
    messages = document["messages"]
    assert len(messages) == 7 == len(store.messages(cid)) > len(store.load(cid).messages)
    assert [m["parts"] for m in messages] == [
        ["text"],
        ["text"],
        ["reasoning", "text", "tokens", "nodes"],
        ["text"],
        ["text"],
        [],  # an error with no text holds nothing
        ["text"],
    ]
    ids = [m["id"] for m in messages]
    assert [m["parent_id"] for m in messages] == [None, ids[0], ids[1], ids[1], ids[2], ids[4],
                                                  ids[2]]  # fmt: skip
    assert document["active_leaf"] == ids[5]
    assert document["settings"] == SETTINGS.as_dict()
    # Without the tree, to_dict is the branch the conversation was loaded with.
    branch = to_dict(store.load(cid))["messages"]
    assert [m["id"] for m in branch] == [ids[0], ids[1], ids[2], ids[4], ids[5]]


# -- round trips ---------------------------------------------------------------------------


def test_export_import_export_gives_the_same_conversation(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path / "a" / "history.sqlite3") as source:
        cid = _tree(source)
        first = _export(source, cid)
    with HistoryStore.open(tmp_path / "b" / "history.sqlite3") as target:
        imported = target.import_conversation(parse_export(json.dumps(first)))
        assert imported == cid  # a fresh history keeps the file's id
        again = _export(target, imported)
        assert target.load(imported).settings == SETTINGS
        branch = [m.content for m in target.load(imported).messages]
    assert _without_ids(again) == _without_ids(first)
    assert HOSTILE in again["messages"][2]["reasoning"]  # exact, escapes and all
    assert branch == ["You plan trips.", "Plan Kyoto 日本 😀",
                      "Day 1: temples\n\n**draft**\n\nalpha", "And Osaka?", ""]  # fmt: skip


def test_importing_the_same_file_twice_makes_two_conversations(data: Path) -> None:
    with HistoryStore.open(data / "history.sqlite3") as store:
        cid = _tree(store)
        document = _export(store, cid)
    file = data.parent / "chat.json"
    file.write_text(json.dumps(document), encoding="utf-8")
    ids = []
    for _ in range(2):
        code, out, err = run("import", str(file))
        assert code == 0, err
        ids.append(out.strip())
        assert "Imported" in err and "(7 messages)" in err and "\x1b" not in err
    assert len({cid, *ids}) == 3  # the file's id was taken: new ones
    with HistoryStore.open(data / "history.sqlite3") as store:
        assert len(store.list_conversations()) == 3
        exports = [_export(store, i) for i in ids]
        original_ids = {m.id for m in store.messages(cid)}
    for exported in exports:
        assert _without_ids(exported) == _without_ids(document)
        assert not original_ids & {m["id"] for m in exported["messages"]}  # new message ids


def test_import_reads_stdin_and_cleans_texts_as_the_store_does(data: Path) -> None:
    key = "sk-test-CANARY-0123456789abcdef"
    document = {
        "format": "tokentide-conversation",
        "version": 4,
        "title": "Keys",
        "messages": [
            {"id": 10, "parent_id": None, "role": "user", "content": f"my key {key}"},
            {"id": 11, "parent_id": 10, "role": "assistant", "content": "noted",
             "error": f"echo {key}", "parts": ["text"], "status": "incomplete"},
        ],
    }  # fmt: skip
    code, out, err = run("import", "-", input=json.dumps(document))
    assert code == 0, err
    with HistoryStore.open(data / "history.sqlite3") as store:
        conversation = store.load(out.strip())
    user, answer = conversation.messages
    assert key not in user.content and user.content.startswith("my key ")
    assert answer.error is not None and key not in answer.error
    assert (answer.parent_id, answer.status, conversation.active_leaf) == (
        user.id,
        "incomplete",
        answer.id,
    )
    assert conversation.title == "Keys" and conversation.settings is None
    assert key.encode() not in b"".join(p.read_bytes() for p in data.iterdir() if p.is_file())


# -- every version tokentide wrote ---------------------------------------------------------

_V1_MESSAGE = {
    "id": 5, "role": "user", "content": "Hello", "status": "complete", "finish_reason": None,
    "error": None, "stats": {}, "profile": None, "model": None,
    "created_at": "2025-01-01T10:00:01+00:00", "updated_at": "2025-01-01T10:00:01+00:00",
}  # fmt: skip
_V1_ANSWER = {
    **_V1_MESSAGE, "id": 6, "role": "assistant", "content": "Hi there", "finish_reason": "stop",
    "stats": {"tokens": 3}, "profile": "work", "model": "m1",
}  # fmt: skip


def _old_export(version: int) -> dict[str, Any]:
    """An export as the code of ``version`` wrote it (git log -p history/export.py)."""
    messages: list[dict[str, Any]] = [dict(_V1_MESSAGE), dict(_V1_ANSWER)]
    if version >= 2:
        messages[1].update(reasoning="hmm", details={"tokens": [["Hi", -0.1]]})
        messages[0].update(reasoning=None, details=None)
    if version >= 3:
        messages[0]["parent_id"], messages[1]["parent_id"] = None, 5
    document: dict[str, Any] = {
        "format": "tokentide-conversation", "version": version, "id": "01aaaaaaaaaaaaaa",
        "title": "Old chat", "profile": "work", "created_at": "2025-01-01T10:00:00+00:00",
        "updated_at": "2025-01-01T10:05:00+00:00", "messages": messages,
    }  # fmt: skip
    if version >= 3:
        document.update(active_leaf=6, settings={"seed": 3})
    return document


@pytest.mark.parametrize("version", [1, 2, 3])
def test_older_exports_are_imported(store: HistoryStore, version: int) -> None:
    cid = store.import_conversation(parse_export(json.dumps(_old_export(version))))
    assert cid == "01aaaaaaaaaaaaaa"
    conversation = store.load(cid)
    user, answer = conversation.messages
    assert (user.parent_id, answer.parent_id, conversation.active_leaf) == (None, user.id,
                                                                            answer.id)  # fmt: skip
    assert (answer.content, answer.stats, answer.model, answer.finish_reason) == (
        "Hi there",
        {"tokens": 3},
        "m1",
        "stop",
    )
    assert answer.created_at.isoformat() == "2025-01-01T10:00:01+00:00"  # times kept
    assert (answer.reasoning, answer.details) == (
        (None, None) if version == 1 else ("hmm", AnswerDetails(tokens=(("Hi", -0.1),)))
    )
    assert conversation.settings == (ConversationSettings(seed=3) if version == 3 else None)
    assert conversation.updated_at.isoformat() == "2025-01-01T10:05:00+00:00"


# -- bad files -----------------------------------------------------------------------------


def _valid() -> dict[str, Any]:
    document = _old_export(3)
    document["version"] = 4
    for m in document["messages"]:
        m["parts"] = ["text"]
    document["messages"].append(
        {"id": 7, "parent_id": 5, "role": "assistant", "content": "Hello again",
         "parts": ["text"]}
    )  # fmt: skip
    return document


def _set(path: tuple[str | int, ...], value: object) -> Callable[[], str]:
    def make() -> str:
        document: Any = _valid()
        target = document
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return json.dumps(document, indent=2)

    return make


BAD_FILES: dict[str, tuple[Callable[[], str], str, str]] = {
    "not JSON": (
        lambda: '{\n  "format": "tokentide-conversation",\n  "version": 4,\n  "messages": [}\n',
        "",
        "is not valid JSON: Expecting value at line 4, column 16.",
    ),
    "wrong type": (
        _set(("messages", 1, "parent_id"), "five"),
        "messages[1].parent_id",
        "messages[1].parent_id: expected a message id (a whole number) or null, found the"
        " text 'five'.",
    ),
    "dangling parent": (
        _set(("messages", 2, "parent_id"), 99),
        "messages[2].parent_id",
        "messages[2].parent_id: 99 is not the id of an earlier message of the file.",
    ),
    "parent later in the file": (
        _set(("messages", 1, "parent_id"), 7),
        "messages[1].parent_id",
        "messages[1].parent_id: 7 is not the id of an earlier message of the file.",
    ),
    "wrong format": (
        _set(("format",), "chatgpt-conversations"),
        "format",
        "is not a tokentide conversation export (format: the text 'chatgpt-conversations';"
        " expected 'tokentide-conversation').",
    ),
    "not an object": (lambda: "[1, 2]", "", "holds a list, not an object."),
    "NaN": (lambda: '{"format": NaN}', "", "is not valid JSON: NaN is not a JSON number."),
    "nested too deeply": (lambda: "[" * 100_000 + "]" * 100_000, "", "nests lists or objects"),
    "newer version": (
        _set(("version",), 9),
        "version",
        "is a version 9 export; this tokentide reads versions 1 to 4.",
    ),
    "unknown part": (
        _set(("messages", 2, "parts"), ["text", "tool_call"]),
        "messages[2].parts[1]",
        "messages[2].parts[1]: the text 'tool_call' is not a part this tokentide stores",
    ),
    "bad setting": (
        _set(("settings", "seed"), "x"),
        "settings.seed",
        "settings.seed: seed is a whole number, not 'x'.",
    ),
    "duplicate id": (
        _set(("messages", 2, "id"), 6),
        "messages[2].id",
        "messages[2].id: message 6 appears twice in the file.",
    ),
    "bad role": (
        _set(("messages", 0, "role"), "tool"),
        "messages[0].role",
        "messages[0].role: expected system, user or assistant, found the text 'tool'.",
    ),
    "bad details": (
        _set(("messages", 1, "details"), {"tokens": [["Hi", "x"]]}),
        "messages[1].details",
        "messages[1].details: 'tokens' is a list of [text, logprob or None].",
    ),
    "unknown field": (
        _set(("messages", 1, "colour"), "red"),
        "messages[1].colour",
        "messages[1].colour: not a field of a version 4 export.",
    ),
    "field newer than the version": (
        _set(("version",), 1),
        "active_leaf",
        "active_leaf: not a field of a version 1 export.",
    ),
    "leaf not in the file": (
        _set(("active_leaf",), 42),
        "active_leaf",
        "active_leaf: names message 42, which the file does not hold.",
    ),
    "bad time": (
        _set(("messages", 0, "created_at"), "yesterday"),
        "messages[0].created_at",
        "messages[0].created_at: expected a time (ISO 8601 text), found the text 'yesterday'.",
    ),
}


def test_the_valid_base_file_imports(store: HistoryStore) -> None:
    cid = store.import_conversation(parse_export(json.dumps(_valid())))
    assert len(store.messages(cid)) == 3 and store.load(cid).active_leaf is not None


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_refused_with_where_it_is_wrong(case: str) -> None:
    make, where, message = BAD_FILES[case]
    with pytest.raises(ExportFileError) as caught:
        parse_export(make(), source="chat.json")
    assert caught.value.exit_code == 2
    assert caught.value.where == where
    assert message in str(caught.value), str(caught.value)
    assert str(caught.value).startswith("chat.json")


@pytest.mark.parametrize("case", ["not JSON", "wrong type", "dangling parent", "wrong format"])
def test_a_bad_file_leaves_the_history_unchanged(data: Path, case: str) -> None:
    file = data.parent / "bad.json"
    file.write_text(BAD_FILES[case][0](), encoding="utf-8")
    code, out, err = run("import", str(file))  # no history yet: none is made
    assert (code, out) == (2, "") and f"tide: {file}" in err, err
    assert not data.exists()
    with HistoryStore.open(data / "history.sqlite3") as store:
        _tree(store)
    before = _dump(data / "history.sqlite3")
    code, out, err = run("import", str(file))
    assert (code, out) == (2, "")
    assert BAD_FILES[case][2] in err and "Traceback" not in err
    assert _dump(data / "history.sqlite3") == before


def test_a_write_that_fails_half_way_imports_nothing(data: Path) -> None:
    """The last message's insert fails in the database: the conversation and the
    messages before it are rolled back with it."""
    path = data / "history.sqlite3"
    with HistoryStore.open(path) as store:
        _tree(store)
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.content = 'Hello again'"
        " BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
    )
    db.commit()
    db.close()
    before = _dump(path)
    file = data.parent / "chat.json"
    file.write_text(json.dumps(_valid()), encoding="utf-8")
    code, out, err = run("import", str(file))
    assert code == 4 and out == "" and "poisoned row" in err
    assert _dump(path) == before


def test_a_missing_or_binary_file_is_a_usage_error(data: Path, tmp_path: Path) -> None:
    code, _, err = run("import", str(tmp_path / "nope.json"))
    assert code == 2 and "Cannot read" in err and "No such file" in err
    binary = tmp_path / "x.json"
    binary.write_bytes(b'{"a": "\xff"}')
    code, _, err = run("import", str(binary))
    assert code == 2 and "is not UTF-8 text (byte 7)" in err
    assert not data.exists()


# -- where the app exports -----------------------------------------------------------------


def test_default_export_path_is_under_the_data_dir(data: Path) -> None:
    cid = "01m8yftzvzq9dh87"
    assert default_export_path("Plan a trip to Kyōto!", cid, "md") == (
        data / "exports" / "plan-a-trip-to-kyoto-01m8yftz.md"
    )
    assert (
        default_export_path("日本語", cid, "json")
        == data / "exports" / "conversation-01m8yftz.json"
    )
    long = default_export_path("word " * 30, cid, "md").name
    assert long.endswith("-01m8yftz.md") and len(long) <= 40 + len("-01m8yftz.md")
    assert "/" not in default_export_path("../../etc/passwd", "../x", "md").name
    with pytest.raises(ValueError):
        default_export_path("t", cid, "pdf")


# -- any tree, any text --------------------------------------------------------------------

_texts = st.text(st.characters(codec="utf-8"), max_size=80)  # any Unicode scalar, NUL too


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HistoryStore, ...]]:
    folder = tmp_path_factory.mktemp("round-trip")
    stores = (HistoryStore.open(folder / "a.sqlite3"), HistoryStore.open(folder / "b.sqlite3"))
    try:
        yield stores
    finally:
        for s in stores:
            s.close()


@settings(max_examples=40, deadline=None)
@given(
    title=_texts,
    shape=st.lists(st.tuples(st.integers(0, 50), _texts, _texts), min_size=1, max_size=12),
    leaf=st.integers(0, 50),
)
def test_any_tree_round_trips(
    two_stores: tuple[HistoryStore, HistoryStore],
    title: str,
    shape: list[tuple[int, str, str]],
    leaf: int,
) -> None:
    """Each message follows a random earlier one (or starts a root): user prompts and
    answers with any text and reasoning."""
    source, target = two_stores
    cid = source.create_conversation(title=title)
    ids: list[int] = []
    for index, (parent, text, reasoning) in enumerate(shape):
        parent_id = ids[parent % len(ids)] if ids and parent else None
        if index % 2:
            answer = source.begin_answer(cid, parent_id=parent_id, model=text[:10] or None)
            source.finish_answer(answer, text, status="complete", reasoning=reasoning)
            ids.append(answer)
        else:
            ids.append(source.add_message(cid, "user", text, parent_id=parent_id))
    source.set_active_leaf(cid, ids[leaf % len(ids)])
    first = _export(source, cid)
    imported = target.import_conversation(parse_export(json.dumps(first)))
    again = _export(target, imported)
    assert _without_ids(again) == _without_ids(first)
    assert again["id"] == imported
