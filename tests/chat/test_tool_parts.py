"""An answer that called tools: its rounds (text, calls, results) as parts, stored in the
history and read back the same, and carried to the next request as each dialect needs
(assistant calls, one tool message per call, then the text)."""

from __future__ import annotations

from pathlib import Path

from tokentide.backends.base import Message
from tokentide.backends.events import TextDelta, ToolCallRequested
from tokentide.backends.tool_spec import ToolResult
from tokentide.chat.answer import AnswerBuilder
from tokentide.chat.parts import (
    TextPart,
    ToolCallPart,
    ToolResultPart,
    content_of,
    from_stored,
    stored_fields,
    wire_messages,
)
from tokentide.history.store import HistoryStore


def two_rounds() -> AnswerBuilder:
    builder = AnswerBuilder()
    builder.add([TextDelta("Let me add."), ToolCallRequested("add", '{"a": 2, "b": 3}', "c1")])
    builder.end_round([ToolResult("c1", "add", "5")])
    builder.add([ToolCallRequested("mul", '{"a": 5}', "c2"), ToolCallRequested("nope", "{}", "c3")])
    builder.end_round(
        [ToolResult("c2", "mul", "25"), ToolResult("c3", "nope", "no such tool", True)]
    )
    builder.add([TextDelta("It is "), TextDelta("25.")])
    return builder


def test_the_rounds_are_parts_in_order_and_the_text_reads_as_paragraphs() -> None:
    parts = two_rounds().parts()
    assert parts == (
        TextPart("Let me add."),
        ToolCallPart("add", '{"a": 2, "b": 3}', "c1"),
        ToolResultPart("c1", "5", False, "add"),
        TextPart(""),
        ToolCallPart("mul", '{"a": 5}', "c2"),
        ToolCallPart("nope", "{}", "c3"),
        ToolResultPart("c2", "25", False, "mul"),
        ToolResultPart("c3", "no such tool", True, "nope"),
        TextPart("It is 25."),
    )
    assert content_of(parts) == "Let me add.\n\nIt is 25."


def test_stored_and_read_back_the_same(tmp_path: Path) -> None:
    parts = two_rounds().parts()
    content, _, details = stored_fields(parts)
    store = HistoryStore.open(tmp_path / "h.sqlite3")
    conversation = store.create_conversation(profile="p")
    store.add_message(conversation, "user", "what is (2+3)*5?")
    answer = store.begin_answer(conversation, profile="p")
    store.finish_answer(answer, content, status="complete", details=details)
    loaded = next(m for m in store.load(conversation).messages if m.id == answer)
    assert loaded.details is not None
    back = from_stored(loaded.content, loaded.reasoning, loaded.details.as_dict())
    assert back == parts
    store.close()


def test_carried_as_calls_results_and_text() -> None:
    assert wire_messages(two_rounds().parts()) == [
        Message("assistant", "Let me add.", tool_calls=(ToolCallRequested("add", '{"a": 2, "b": 3}', "c1"),)),
        Message("tool", "5", tool_call_id="c1", name="add"),
        Message("assistant", "", tool_calls=(
            ToolCallRequested("mul", '{"a": 5}', "c2"), ToolCallRequested("nope", "{}", "c3"),
        )),
        Message("tool", "25", tool_call_id="c2", name="mul"),
        Message("tool", "no such tool", tool_call_id="c3", name="nope", is_error=True),
        Message("assistant", "It is 25."),
    ]  # fmt: skip


def test_a_call_stopped_before_its_result_is_carried_with_an_error_result() -> None:
    builder = AnswerBuilder()
    builder.add([ToolCallRequested("slow", "{}", "c9")])
    builder.end_round([])  # stopped while the tool ran
    messages = wire_messages(builder.parts())
    assert messages[1].role == "tool" and messages[1].is_error
    assert messages[1].tool_call_id == "c9" and "stopped" in messages[1].content


def test_a_stored_answer_whose_text_was_edited_by_hand_is_text_only() -> None:
    _, _, details = stored_fields(two_rounds().parts())
    parts = from_stored("something else entirely", None, details)
    assert parts == (TextPart("something else entirely"),)


def test_an_answer_without_tools_is_one_message() -> None:
    builder = AnswerBuilder()
    builder.add([TextDelta("hi")])
    assert wire_messages(builder.parts()) == [Message("assistant", "hi")]
    assert stored_fields(builder.parts())[2] is None


def test_the_markdown_export_shows_each_call_and_result(tmp_path: Path) -> None:
    from tokentide.history.export import to_markdown

    content, _, details = stored_fields(two_rounds().parts())
    store = HistoryStore.open(tmp_path / "h.sqlite3")
    conversation = store.create_conversation(profile="p")
    store.add_message(conversation, "user", "what is (2+3)*5?")
    answer = store.begin_answer(conversation, profile="p")
    store.finish_answer(answer, content, status="complete", details=details)
    text = to_markdown(store.load(conversation))
    store.close()
    body = text[text.index("Let me add.") :]
    assert (
        body.index("> **Tool call** add")
        < body.index("> result:")
        < body.index("> **Tool call** mul")
    )
    assert "> **Tool call** nope" in body and "> error:" in body and "no such tool" in body
    assert body.rstrip().endswith("It is 25.")


def test_a_round_without_text_adds_no_paragraph_break() -> None:
    builder = AnswerBuilder()
    builder.add([ToolCallRequested("add", "{}", "c1")])  # the model said nothing first
    builder.end_round([ToolResult("c1", "add", "5")])
    builder.add([TextDelta("It is 5")])
    content, _, details = stored_fields(builder.parts())
    assert content == "It is 5"
    # ... and read back and stored again, it stays so (no break is added per reload).
    again = from_stored(content, None, details)
    assert stored_fields(again)[0] == "It is 5"
    assert from_stored("\n\nIt is 5", None, details) == again  # as saved before the fix


def test_reused_call_ids_are_paired_round_by_round() -> None:
    from tokentide.chat.tree import Turn

    builder = AnswerBuilder()
    builder.add([ToolCallRequested("add", '{"a": 1}', "call_0")])
    builder.end_round([ToolResult("call_0", "add", "1")])
    builder.add([ToolCallRequested("add", '{"a": 2}', "call_0")])  # the same id again
    builder.end_round([ToolResult("call_0", "add", "2")])
    turn = Turn(1, None, "assistant", builder.parts(), "complete")
    assert [(c.arguments, r.content if r else None) for c, r in turn.tool_calls] == [
        ('{"a": 1}', "1"), ('{"a": 2}', "2"),
    ]  # fmt: skip


def test_without_tools_the_rounds_are_carried_as_text() -> None:
    from tokentide.chat.parts import plain_messages

    messages = [Message("user", "what is (2+3)*5?"), *wire_messages(two_rounds().parts())]
    plain = plain_messages(messages)
    assert [m.role for m in plain] == ["user", "assistant"]
    assert not any(m.tool_calls or m.role == "tool" for m in plain)
    text = plain[1].content
    assert text.startswith("Let me add.") and text.endswith("It is 25.")
    assert '[called add({"a": 2, "b": 3})]' in text and "[add gave this: 5]" in text
    assert "[nope gave an error: no such tool]" in text
    assert plain_messages(messages[:1]) == (messages[0],)  # nothing to flatten: as it was
