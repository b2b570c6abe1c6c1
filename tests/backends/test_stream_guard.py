"""The one stream guard of every transport (``backends/stream_guard.py``): limits, the
``yields`` style and incremental UTF-8, on the pieces as a transport receives them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokentide.backends._cumulative import Yields
from tokentide.backends.stream_guard import StreamGuard, Wording
from tokentide.config.model import Limits
from tokentide.errors import LimitExceeded, LocalFunctionError, ProtocolError

WORDING = Wording("Model 'm' at h:1", "h:1", piece="sent a response", whole="The answer from m")


def guard(style: Yields = "delta", **limits: int) -> StreamGuard:
    return StreamGuard(Limits(**limits), style, wording=WORDING)


def pieces_of(blob: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted(c % (len(blob) + 1) for c in cuts)
    return [blob[a:b] for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=True)]


# -- UTF-8 -------------------------------------------------------------------------------


@given(text=st.text(max_size=40), cuts=st.lists(st.integers(0, 200), max_size=8))
def test_bytes_split_anywhere_decode_to_the_same_text(text: str, cuts: list[int]) -> None:
    g = guard()
    out = "".join(g.data(piece) for piece in pieces_of(text.encode(), cuts)) + g.end()
    assert out == text


@given(text=st.text(min_size=1, max_size=30), cuts=st.lists(st.integers(0, 120), max_size=6))
def test_cumulative_bytes_may_end_inside_a_character(text: str, cuts: list[int]) -> None:
    blob = text.encode()
    ends = sorted({c % (len(blob) + 1) for c in cuts} | {len(blob)})
    g = guard("cumulative")
    out = "".join(g.data(blob[:end]) for end in ends) + g.end()
    assert out == text


def test_invalid_bytes_are_replaced_and_an_unfinished_character_ends_as_one() -> None:
    g = guard()
    assert g.data(b"a\xffb") == "a\ufffdb"
    assert g.data(b"\xe6\x97") == ""  # the start of a character: held back
    assert g.end() == "\ufffd"


# -- the yields style -------------------------------------------------------------------


def test_cumulative_text_becomes_deltas() -> None:
    g = guard("cumulative")
    assert [g.text(p) for p in ("hello", "hello from", "hello from Muna")] == [
        "hello",
        " from",
        " Muna",
    ]


@pytest.mark.parametrize("as_bytes", [False, True])
def test_cumulative_piece_that_does_not_extend_is_an_error(as_bytes: bool) -> None:
    g = guard("cumulative")
    feed = (lambda p: g.data(p.encode())) if as_bytes else g.text
    feed("hello")
    with pytest.raises(ProtocolError) as caught:
        feed("goodbye")
    message = str(caught.value)
    assert "Model 'm' at h:1 sent a partial result" in message
    assert "'hello'" in message and "'goodbye'" in message
    assert 'yields = "delta"' in (caught.value.hint or "")


def test_the_revision_error_is_the_wordings() -> None:
    wording = Wording("mod:fn", "mod:fn", revision_error=LocalFunctionError)
    g = StreamGuard(Limits(), "cumulative", wording=wording)
    g.text("ab")
    with pytest.raises(LocalFunctionError):
        g.text("x")


@pytest.mark.parametrize("as_bytes", [False, True])
def test_auto_is_cumulative_until_a_piece_does_not_extend(as_bytes: bool) -> None:
    g = guard("auto")
    feed = (lambda p: g.data(p.encode())) if as_bytes else g.text
    styles = []
    for piece, new in (("a", "a"), ("ab", "b"), ("x", "x")):
        assert feed(piece) == new
        styles.append(g.style)
    assert styles == ["auto", "auto", "delta"]
    assert feed("x") == "x"  # a delta stream from now on


# -- limits -----------------------------------------------------------------------------


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_piece_over_max_event_is_refused_whole(as_bytes: bool) -> None:
    g = guard(max_event_bytes=4)
    feed = (lambda p: g.data(p.encode())) if as_bytes else g.text
    assert feed("abcd") == "abcd"
    with pytest.raises(LimitExceeded) as caught:
        feed("éé€")  # 3 characters, 7 bytes
    assert str(caught.value).startswith("Model 'm' at h:1 sent a response of more than 4 bytes")
    assert caught.value.server == "h:1"
    assert "max_event_bytes" in (caught.value.hint or "")


@pytest.mark.parametrize("as_bytes", [False, True])
def test_the_piece_that_crosses_max_answer_is_cut_to_fit(as_bytes: bool) -> None:
    g = guard(max_answer_bytes=10)
    feed = (lambda p: g.data(p.encode())) if as_bytes else g.text
    states = []
    for piece, kept in (("abcdefgh", "abcdefgh"), ("éé", "é")):  # room for one "é" only
        assert feed(piece) == kept
        states.append(g.exhausted)
    assert states == [False, True]
    assert feed("more") == ""
    error = g.too_long()
    assert str(error).startswith("The answer from m passed 10 bytes; stopped reading.")
    assert "max_answer_bytes" in (error.hint or "")


def test_a_cumulative_piece_is_the_answer_and_is_checked_before_comparing() -> None:
    g = guard("cumulative", max_event_bytes=4, max_answer_bytes=100)
    g.text("abcd")
    assert g.text("abcdefgh") == "efgh"  # a piece's own size is what it adds
    with pytest.raises(LimitExceeded, match="passed 100 bytes"):
        g.text("x" * 101)  # not even compared with the answer so far


def test_whole_answers_and_revisions() -> None:
    g = guard(max_event_bytes=4, max_answer_bytes=10)
    assert g.whole("abcdefghijkl") == "abcdefghij" and g.exhausted
    r = guard(max_event_bytes=4, max_answer_bytes=10)
    r.revise("abcd")
    r.revise("xy")  # a revision may shrink the answer
    with pytest.raises(LimitExceeded, match="more than 4 bytes"):
        r.revise("xyz12345")  # but grow by one piece's worth at most
    with pytest.raises(LimitExceeded, match="passed 10 bytes"):
        guard(max_answer_bytes=10).revise("x" * 11)


def test_the_answer_from_the_source_by_default() -> None:
    g = StreamGuard(Limits(max_answer_bytes=1), wording=Wording("http://h:1", "http://h:1"))
    assert g.text("ab") == "a"
    assert str(g.too_long()).startswith("The answer from http://h:1 passed 1 bytes")
