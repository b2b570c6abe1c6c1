"""The terminal sanitiser: golden tests over the hostile corpus and property tests.

reliability.md §1: T1 (ESC sequences), T2 (C1/DEL), T3 (chunking), T4 (unterminated
strings), T6 (CR/BS), T7 (invisible Unicode), T8 (clipboard), T9 (titles), T11
(over-stripping), T12 (fuzz).
"""

from __future__ import annotations

import itertools
import os
import random
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile_payloads import (
    FORBIDDEN,
    HIDDEN,
    MESSAGE_END,
    PAYLOADS,
    Payload,
    combined_stream,
)
from tokentide.sanitize import (
    STRING_CAP,
    StreamSanitizer,
    sanitize,
    sanitize_for_clipboard,
    sanitize_title,
)

# Characters sanitize() changes although they are not Cc.
MARKED = {
    *range(0x202A, 0x202F),
    *range(0x2060, 0x2065),
    *range(0x2066, 0x2070),
    *range(0xFE00, 0xFE0E),
    *range(0xE0000, 0xE0080),
    *range(0xE0100, 0xE01F0),
}
STRIPPED = {0x200B, 0x200C, 0xFEFF}


def stream(chunks: list[str], cap: int = STRING_CAP) -> str:
    s = StreamSanitizer(cap=cap)
    return "".join(s.feed(c) for c in chunks) + s.flush()


def whole(text: str, cap: int = STRING_CAP) -> str:
    return stream([text], cap)


def split_at(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(max(c, 0), len(text)) for c in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def assert_clean(out: str) -> None:
    """The output invariants: nothing a terminal could act on."""
    for c in out:
        o = ord(c)
        assert unicodedata.category(c) != "Cc" or c in "\n\t", f"control {o:#x} in output"
        assert not 0xD800 <= o <= 0xDFFF, "lone surrogate in output"
        assert o not in MARKED and o not in STRIPPED, f"invisible {o:#x} in output"
    out.encode("utf-8")  # would raise on a surrogate


# --- golden tests over the corpus --------------------------------------------------------


def test_corpus_is_large_and_consistent() -> None:
    names = [p.name for p in PAYLOADS]
    assert len(PAYLOADS) >= 40
    assert len(names) == len(set(names))
    assert set(names) >= MESSAGE_END
    assert set(HIDDEN) <= set(names)
    by_name = {p.name: p for p in PAYLOADS}
    for name, hidden in HIDDEN.items():
        for h in hidden:
            assert h in by_name[name].payload, (name, h)
    # Every forbidden signature is actually carried by some payload.
    encoded = b"".join(p.payload.encode("utf-8", "surrogatepass") for p in PAYLOADS)
    for sig in FORBIDDEN:
        assert sig in encoded, sig


@pytest.mark.parametrize("p", PAYLOADS, ids=[p.name for p in PAYLOADS])
def test_payload_golden(p: Payload) -> None:
    out = sanitize(p.payload)
    assert out == p.visible
    encoded = out.encode("utf-8")
    for sig in FORBIDDEN:
        assert sig not in encoded
    for h in HIDDEN.get(p.name, ()):
        assert h not in out
    assert_clean(out)


@pytest.mark.parametrize("p", PAYLOADS, ids=[p.name for p in PAYLOADS])
def test_payload_streamed_one_char_at_a_time(p: Payload) -> None:
    assert stream(list(p.payload)) == p.visible


def test_combined_stream_every_split_size() -> None:
    text, visible = combined_stream()
    expected = "\n".join(visible)
    assert sanitize(text) == expected
    for size in (1, 2, 3, 5, 7, 16, 64, 4096):
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        assert stream(chunks) == expected, size


@pytest.mark.parametrize("name", sorted(MESSAGE_END))
def test_message_end_payload_does_not_leak_into_next_message(name: str) -> None:
    p = next(p for p in PAYLOADS if p.name == name)
    s = StreamSanitizer()
    first = s.feed(p.payload) + s.flush()
    assert first == p.visible
    assert s.feed("next message") == "next message"
    assert s.flush() == ""


def test_reference_string_via_clipboard_and_title() -> None:
    p = next(p for p in PAYLOADS if p.name == "reference-P")
    assert sanitize_for_clipboard(p.payload) == "AB LINK CD E F G"
    assert sanitize_title(p.payload) == "AB LINK CD E F G"


# --- specific rules ------------------------------------------------------------------


def test_printable_text_is_returned_as_the_same_object() -> None:
    text = "Hello, 世界 👩\u200d💻 مرحبا\tsnake_case\n"
    assert sanitize(text) is text
    assert StreamSanitizer().feed(text) is text


def test_cr_rules() -> None:
    assert sanitize("a\r\nb") == "a\nb"
    assert sanitize("a\rb") == "ab"
    assert sanitize("a\r\r\nb\r") == "a\nb"
    assert stream(["a\r", "\nb"]) == "a\nb"


def test_lf_and_tab_inside_csi_are_kept_like_a_terminal_executes_them() -> None:
    assert sanitize("x\x1b[1\n2mY") == "x\nY"
    assert sanitize("x\x1b\tcY") == "x\tY"


def test_osc_ends_at_esc_anything_and_that_esc_starts_a_new_sequence() -> None:
    assert sanitize("a\x1b]0;t\x1bcb") == "ab"  # ESC c is consumed as a reset
    assert sanitize("a\x1b]0;t\x1b[1mb") == "ab"


def test_bel_ends_osc_but_is_content_of_dcs() -> None:
    assert sanitize("a\x1b]0;t\x07b") == "ab"
    assert sanitize("a\x1bPx\x07y\x1b\\b") == "ab"


def test_unterminated_string_resyncs_after_cap() -> None:
    filler = "x" * (STRING_CAP + 10)
    out = sanitize("\x1b]0;" + filler)
    assert out == "x" * 12  # "0;" and 4094 x swallowed, the rest is text again
    assert stream(["\x1b]0;", filler[:3000], filler[3000:]]) == out


def test_csi_parameters_are_capped_too() -> None:
    digits = "1" * (STRING_CAP + 5)
    assert sanitize("\x1b[" + digits + "mZ") == "1" * 5 + "mZ"


def test_stream_shows_text_as_soon_as_possible() -> None:
    s = StreamSanitizer()
    assert s.feed("abc\x1b") == "abc"
    assert s.feed("[3") == ""
    assert s.feed("1mred") == "red"
    assert s.feed("\x1b]8;;http://x/") == ""
    assert s.feed("\x1b") == ""
    assert s.feed("\\link") == "link"
    assert s.flush() == ""


def test_surrogate_pairs_are_joined_and_lone_ones_replaced() -> None:
    assert sanitize("\ud83d\ude00") == "😀"
    assert stream(["a\ud83d", "\ude00b"]) == "a😀b"
    assert sanitize("\ud83dx") == "\ufffdx"
    assert sanitize("\ude00") == "\ufffd"
    assert stream(["\ud83d"]) == "\ufffd"


def test_invisible_unicode() -> None:
    assert sanitize("a\u202eb") == "a⟨U+202E⟩b"
    assert sanitize("a\u2066b\u2069") == "a⟨U+2066⟩b⟨U+2069⟩"
    assert sanitize("\U000e0041") == "⟨U+E0041⟩"
    assert sanitize("a\u200bb\u200cc\ufeff") == "abc"
    family = "👨\u200d👩\u200d👧"
    assert sanitize(family) is family
    rtl = "שלום \u200f עולם مرحبا"  # RLM is a mark, not an override: kept
    assert sanitize(rtl) is rtl


def test_more_invisibles_are_marked() -> None:
    # Word joiner, invisible operators, deprecated format controls, variation selectors
    # (both blocks) and tag characters can hide text or bytes: all are made visible.
    for cp in (0x2060, 0x2064, 0x206A, 0x206F, 0xFE00, 0xFE0D, 0xE0000, 0xE007F, 0xE0100, 0xE01EF):
        assert sanitize(f"a{chr(cp)}b") == f"a⟨U+{cp:04X}⟩b", hex(cp)
        s = StreamSanitizer()
        assert s.feed(f"a{chr(cp)}") + s.feed("b") + s.flush() == f"a⟨U+{cp:04X}⟩b"
    smuggled = "hi" + "".join(chr(0xE0100 + b) for b in b"rm -rf")
    assert "⟨U+E0172⟩" in sanitize(smuggled)  # "r"
    heart = "\u2764\ufe0f"  # VS16 picks the emoji style: kept
    assert sanitize(heart) is heart


def test_title() -> None:
    assert sanitize_title("  Fix\n\tthe \x1b]0;PWN\x07bug  ") == "Fix the bug"
    long = sanitize_title("word " * 40)
    assert len(long) == 80 and long.endswith("…")
    cjk = sanitize_title("漢" * 60)  # two cells each
    assert cjk == "漢" * 39 + "…"
    assert sanitize_title("short", limit=5) == "short"
    assert sanitize_title("shorter", limit=5) == "shor…"
    assert sanitize_title("abc", limit=0) == ""
    title = sanitize_title("x\x07;\x9c\x1b\\y" * 30)
    assert_clean(title)
    assert "\n" not in title and "\t" not in title
    assert sanitize_title(title) == title


def test_clipboard_never_carries_a_paste_end() -> None:
    for text in ("a\x1b[201~b", "\x9b201~", "x\x1b\x1b[201~", "\x03echo\r"):
        out = sanitize_for_clipboard(text)
        assert "\x1b" not in out and "201~" not in out.replace("[201~", "")
        assert "\x03" not in out and "\r" not in out
    assert sanitize_for_clipboard("code\r\n\tline") == "code\n\tline"


def test_bad_cap() -> None:
    with pytest.raises(ValueError):
        StreamSanitizer(cap=0)


# --- properties -------------------------------------------------------------------------

PIECES = [
    "\x1b",
    "[",
    "]",
    "\\",
    "P",
    "X",
    "^",
    "_",
    "c",
    "(",
    " ",
    "#",
    "0",
    "2",
    "5",
    "8",
    ";",
    "?",
    "m",
    "J",
    "~",
    "\x07",
    "\x18",
    "\x1a",
    "\x00",
    "\x08",
    "\x7f",
    "\r",
    "\n",
    "\t",
    "\x9b",
    "\x9c",
    "\x9d",
    "\x90",
    "\x98",
    "\x9e",
    "\x9f",
    "\x85",
    "\u202e",
    "\u2066",
    "\u200b",
    "\u200d",
    "\ufeff",
    "\U000e0041",
    "\ud83d",
    "\ude00",
    "😀",
    "👩",
    "漢",
    "é",
    "ש",
    "a",
    "\x1b]52;c;",
    "\x1b]8;;",
    "\x1b[201~",
    "\x1b\\",
]
hostile_text = st.lists(st.one_of(st.sampled_from(PIECES), st.characters()), max_size=120).map(
    "".join
)


@given(hostile_text, st.lists(st.integers(0, 200), max_size=12), st.sampled_from([4, 16, 4096]))
def test_chunking_invariance(text: str, cuts: list[int], cap: int) -> None:
    assert stream(split_at(text, cuts), cap) == whole(text, cap)


@given(hostile_text)
def test_chunking_invariance_one_char_chunks(text: str) -> None:
    assert stream(list(text)) == sanitize(text)


@given(hostile_text)
def test_idempotent_and_clean(text: str) -> None:
    out = sanitize(text)
    assert_clean(out)
    assert sanitize(out) == out


@given(hostile_text)
def test_output_is_a_subsequence_except_for_markers(text: str) -> None:
    """Nothing is invented: dropping the markers leaves a subsequence of the input."""
    out = sanitize(text)
    for marker_cp in MARKED:
        out = out.replace(f"⟨U+{marker_cp:04X}⟩", "")
    out = out.replace("\ufffd", "")
    it = iter(text)
    assert all(c in it for c in out)


@given(hostile_text)
def test_flush_always_resets(text: str) -> None:
    s = StreamSanitizer()
    s.feed(text)
    s.flush()
    assert s.feed("clean text") == "clean text"


plain = st.text(
    st.characters(
        exclude_categories=("Cc", "Cs"),
        exclude_characters=[chr(c) for c in (MARKED | STRIPPED) if c < 0xE0000],
    ).filter(lambda c: ord(c) not in MARKED),
)


@given(plain)
def test_text_without_specials_is_unchanged(text: str) -> None:
    assert sanitize(text) == text


@given(
    st.text(
        st.characters(exclude_categories=("Cc", "Cf", "Cs")).filter(lambda c: ord(c) not in MARKED)
    )
)
def test_text_without_cc_or_cf_is_unchanged(text: str) -> None:
    assert sanitize(text) == text


@given(st.text(st.characters(exclude_categories=("Cc", "Cs")) | st.sampled_from("\n\t")))
def test_stream_of_plain_text_is_passed_through_immediately(text: str) -> None:
    s = StreamSanitizer()
    assert "".join(s.feed(c) for c in text) == sanitize(text)
    assert s.flush() == ""


# --- fuzz: random bytes as a server could send them --------------------------------------


def fuzz_once(rng: random.Random) -> None:
    data = rng.randbytes(rng.randint(0, 512))
    if rng.random() < 0.5:  # make escape-rich input likely
        data = bytes(rng.choice(b"\x1b[]P\\;0\x07\x9b\x9c\xc2\r\n") if b < 80 else b for b in data)
    for encoding, errors in (
        ("utf-8", "replace"),
        ("utf-8", "surrogateescape"),
        ("latin-1", "strict"),
    ):
        text = data.decode(encoding, errors)
        out = sanitize(text)
        assert_clean(out)
        assert sanitize(out) == out
        cuts = [rng.randint(0, len(text)) for _ in range(rng.randint(0, 8))]
        assert stream(split_at(text, cuts)) == out


def test_fuzz_random_bytes() -> None:
    seed = int(os.environ.get("TIDE_FUZZ_SEED", "20240601"))
    rounds = int(os.environ.get("TIDE_FUZZ_ROUNDS", "2000"))
    rng = random.Random(seed)
    for _ in range(rounds):
        fuzz_once(rng)
