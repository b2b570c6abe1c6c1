"""The one terminal sanitiser: every piece of model or server text passes here before a terminal.

Model output, reasoning, tool output, server error bodies, model names and generated
conversation titles are untrusted.  Neither Rich nor Textual removes escape sequences
(reliability.md §1, finding 1), so tokentide removes them itself, at every display or
egress boundary (widgets, stdout/stderr of ``tide ask``, window titles, clipboard, logs).
Stored conversations keep the original text; ``--raw`` / ``--json`` bypass this module.

What :func:`sanitize` does, character by character (a VT500-style parser, so a sequence
is removed *with its payload*):

* ``ESC [`` / U+009B (CSI): dropped up to and including the final byte 0x40–0x7E.
* ``ESC ]`` / U+009D (OSC): dropped up to BEL, ST (``ESC \\`` or U+009C), or any other
  ``ESC x`` (which ends the string, as xterm and VTE do, and then starts a new sequence).
* ``ESC P``/U+0090 (DCS), ``ESC X``/U+0098 (SOS), ``ESC ^``/U+009E (PM), ``ESC _``/U+009F
  (APC): dropped up to ST or another ``ESC x``; BEL is string content here, as in xterm.
* ``ESC`` + intermediates 0x20–0x2F + final (nF), and every two-character ``ESC x``
  (``ESC c`` reset, ``ESC 7``, ``ESC M`` …): dropped.
* CAN (0x18) and SUB (0x1A) abort any sequence; a C0 control inside a CSI or ESC sequence
  is acted on as it would be outside it (i.e. dropped, except LF and TAB).
* A string sequence (OSC/DCS/SOS/PM/APC) without terminator swallows at most
  :data:`STRING_CAP` characters; after that the parser resyncs and text shows again.
  A CSI or nF sequence is capped the same way.  :meth:`StreamSanitizer.flush` drops any
  unfinished sequence, so nothing leaks into the next message.
* Every other C0 control except LF and TAB (NUL, BEL, BS, VT, FF, lone ESC …), DEL and
  every C1 control U+0080–U+009F: dropped.  CR is dropped (CRLF becomes LF and a lone CR
  can no longer overwrite a line).
* Bidi embeddings/overrides/isolates U+202A–U+202E, U+2066–U+2069, the word joiner and
  invisible operators U+2060–U+2064, the deprecated format controls U+206A–U+206F, tag
  characters U+E0000–U+E007F ("ASCII smuggling") and the variation selectors U+FE00–U+FE0D
  and U+E0100–U+E01EF (which can carry hidden bytes) become a visible marker such as
  ``⟨U+202E⟩``.  VS15/VS16 (U+FE0E/U+FE0F) are kept: emoji need them (❤️).
* Zero-width space U+200B, ZWNJ U+200C and BOM/ZWNBSP U+FEFF: dropped.  ZWJ U+200D is
  kept (emoji sequences need it).
* A UTF-16 surrogate pair (as ``json.loads`` can produce from ``"\\ud83d\\ude00"`` split
  or not) is joined into its character; a lone surrogate, which would make ``print`` raise
  ``UnicodeEncodeError``, becomes U+FFFD.

Everything else — CJK, emoji, Arabic and Hebrew text, tabs, newlines — is unchanged.

Properties (tested in ``tests/test_sanitize.py`` with Hypothesis):

* chunking invariance: for every split of ``s`` into chunks,
  ``"".join(map(ss.feed, chunks)) + ss.flush() == sanitize(s)``;
* idempotence: ``sanitize(sanitize(s)) == sanitize(s)``;
* text without special characters is returned unchanged (and it is the same object);
* the output has no character of category Cc except ``\\n`` and ``\\t``, no ESC, no C1.

Cost: a chunk without special characters costs one ``re.search``; see ``docs/security.md``
for measured numbers.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = [
    "STRING_CAP",
    "StreamSanitizer",
    "sanitize",
    "sanitize_for_clipboard",
    "sanitize_title",
]

STRING_CAP: Final = 4096
"""How many characters an unterminated sequence may swallow before the parser resyncs."""

# Every character that needs more than "copy it through".  CR, LF and TAB are in C0 here
# except LF/TAB; CR is special (dropped).
_SPECIAL: Final = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200c\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufe00-\ufe0d"
    "\ufeff\ud800-\udfff\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
# The same without CR: a chunk whose only special characters are CRs needs just a replace.
_SPECIAL_NOT_CR: Final = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200c\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufe00-\ufe0d"
    "\ufeff\ud800-\udfff\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
# What ends (or aborts) a string sequence: BEL (OSC only), ESC, ST (U+009C), CAN, SUB.
_STRING_STOP: Final = re.compile("[\x07\x1b\x9c\x18\x1a]")
_STRING_STOP_NO_BEL: Final = re.compile("[\x1b\x9c\x18\x1a]")
# Characters that continue a CSI (parameters 0x30–0x3F, intermediates 0x20–0x2F).
_CSI_BODY: Final = re.compile("[\x20-\x3f]+")

_GROUND: Final = 0
_ESC: Final = 1  # after ESC
_ESC_INTER: Final = 2  # ESC + intermediates (nF), waiting for the final byte
_CSI: Final = 3  # inside CSI
_STRING: Final = 4  # inside OSC/DCS/SOS/PM/APC
_STRING_ESC: Final = 5  # ESC seen inside a string
_HIGH_SURROGATE: Final = 6  # ground, a high surrogate is held back

_MARKED: Final = frozenset(
    [
        *range(0x202A, 0x202F),  # bidi embeddings, overrides
        *range(0x2060, 0x2065),  # word joiner, invisible operators
        *range(0x2066, 0x2070),  # bidi isolates, deprecated format controls
        *range(0xFE00, 0xFE0E),  # variation selectors 1-14 (15/16 pick text/emoji style)
        *range(0xE0000, 0xE0080),  # tag characters ("ASCII smuggling")
        *range(0xE0100, 0xE01F0),  # variation selectors 17-256
    ]
)
_STRIPPED: Final = frozenset([0x200B, 0x200C, 0xFEFF])
# C1 introducers of string sequences, and whether BEL ends them (only OSC).
_C1_STRING: Final = {0x9D: True, 0x90: False, 0x98: False, 0x9E: False, 0x9F: False}
_ESC_STRING: Final = {"]": True, "P": False, "X": False, "^": False, "_": False}


class StreamSanitizer:
    """Sanitise a stream chunk by chunk; one instance per message (or per stream).

    ``feed`` returns the text that is safe to show now; it holds back only what could
    still be part of an escape sequence (or the first half of a surrogate pair).
    ``flush`` ends the message: held text is released or dropped and the state resets,
    so the instance can be reused for the next message.
    """

    __slots__ = ("_bel_ends", "_cap", "_count", "_held", "_state")

    def __init__(self, *, cap: int = STRING_CAP) -> None:
        if cap < 1:
            raise ValueError("cap must be at least 1")
        self._cap = cap  # characters an unterminated sequence may swallow
        self._state = _GROUND
        self._count = 0  # characters swallowed by the current sequence
        self._bel_ends = False  # the current string sequence is an OSC
        self._held = ""  # a held high surrogate

    def feed(self, text: str) -> str:
        """Sanitise the next chunk; returns what can be displayed now."""
        if self._state == _GROUND:
            m = _SPECIAL.search(text)
            if m is None:
                return text
            if text[m.start()] == "\r" and _SPECIAL_NOT_CR.search(text, m.start()) is None:
                return text.replace("\r", "")  # CRLF text: CR is dropped in the ground state
        return self._run(text)

    def flush(self) -> str:
        """End of message: an unfinished sequence is dropped, a lone surrogate shown as U+FFFD."""
        out = "\ufffd" if self._state == _HIGH_SURROGATE else ""
        self._state = _GROUND
        self._count = 0
        self._bel_ends = False
        self._held = ""
        return out

    # -- the parser -------------------------------------------------------------------

    def _run(self, text: str) -> str:
        out: list[str] = []
        pos = 0
        end = len(text)
        while pos < end:
            state = self._state
            if state == _GROUND:
                m = _SPECIAL.search(text, pos)
                if m is None:
                    out.append(text[pos:])
                    break
                start = m.start()
                if start > pos:
                    out.append(text[pos:start])
                self._special(text[start], out)
                pos = start + 1
            elif state == _STRING:
                stop = (_STRING_STOP if self._bel_ends else _STRING_STOP_NO_BEL).search(text, pos)
                room = self._cap - self._count
                limit = end if stop is None else stop.start()
                if limit - pos > room:
                    # Unterminated for too long: resync, the rest is text again.
                    pos += room
                    self._to_ground()
                    continue
                self._count += limit - pos
                pos = limit
                if stop is None:
                    break
                c = text[pos]
                pos += 1
                if c == "\x1b":
                    self._state = _STRING_ESC
                else:  # BEL (OSC), ST, CAN, SUB
                    self._to_ground()
            elif state == _CSI:
                m = _CSI_BODY.match(text, pos)
                if m is not None:
                    n = m.end() - pos
                    room = self._cap - self._count
                    if n > room:
                        pos += room
                        self._to_ground()
                        continue
                    self._count += n
                    pos = m.end()
                    if pos == end:
                        break
                c = text[pos]
                if "\x40" <= c <= "\x7e":  # final byte
                    pos += 1
                    self._to_ground()
                elif self._in_sequence_other(c, out):
                    pos += 1
            elif state == _STRING_ESC:
                c = text[pos]
                if c == "\\":  # ST
                    pos += 1
                    self._to_ground()
                else:
                    # ESC + anything else ends the string and starts a new sequence.
                    self._state = _ESC
                    self._count = 0
            elif state == _HIGH_SURROGATE:
                c = text[pos]
                if "\udc00" <= c <= "\udfff":
                    pair = (ord(self._held) - 0xD800) * 0x400 + (ord(c) - 0xDC00) + 0x10000
                    out.append(chr(pair))
                    pos += 1
                else:
                    out.append("\ufffd")
                self._held = ""
                self._state = _GROUND
            else:  # _ESC or _ESC_INTER
                c = text[pos]
                if "\x20" <= c <= "\x2f":
                    self._count += 1
                    if self._count > self._cap:
                        self._to_ground()
                        continue
                    self._state = _ESC_INTER
                    pos += 1
                elif state == _ESC and c == "[":
                    self._state = _CSI
                    self._count = 0
                    pos += 1
                elif state == _ESC and c in _ESC_STRING:
                    self._start_string(_ESC_STRING[c])
                    pos += 1
                elif "\x30" <= c <= "\x7e":  # final byte: ESC c, ESC 7, ESC \, nF final …
                    pos += 1
                    self._to_ground()
                elif self._in_sequence_other(c, out):
                    pos += 1
        return "".join(out)

    def _to_ground(self) -> None:
        self._state = _GROUND
        self._count = 0
        self._bel_ends = False

    def _start_string(self, bel_ends: bool) -> None:
        self._state = _STRING
        self._count = 0
        self._bel_ends = bel_ends

    def _in_sequence_other(self, c: str, out: list[str]) -> bool:
        """A character that neither continues nor ends the current CSI/ESC sequence.

        Returns True when ``c`` was consumed; False when the sequence was abandoned and
        ``c`` must be processed again in the ground state.
        """
        o = ord(c)
        if o == 0x1B:
            self._state = _ESC  # restart
            self._count = 0
            return True
        if o in (0x18, 0x1A):  # CAN, SUB abort
            self._to_ground()
            return True
        if o < 0x20:  # other C0: executed inside the sequence, so LF/TAB still show
            if c in "\n\t":
                out.append(c)
            return True
        if o == 0x7F:  # DEL is ignored inside sequences
            return True
        if 0x80 <= o <= 0x9F:
            self._to_ground()
            self._special(c, out)
            return True
        # Printable non-ASCII: the sequence is abandoned, the character is text.
        self._to_ground()
        return False

    def _special(self, c: str, out: list[str]) -> None:
        """Handle one character of ``_SPECIAL`` met in the ground state."""
        o = ord(c)
        if o == 0x1B:
            self._state = _ESC
            self._count = 0
        elif o == 0x9B:
            self._state = _CSI
            self._count = 0
        elif o in _C1_STRING:
            self._start_string(_C1_STRING[o])
        elif o in _MARKED:
            out.append(f"⟨U+{o:04X}⟩")
        elif 0xD800 <= o <= 0xDBFF:
            self._held = c
            self._state = _HIGH_SURROGATE
        elif 0xDC00 <= o <= 0xDFFF:
            out.append("\ufffd")
        # Everything else in _SPECIAL (C0, CR, DEL, other C1, U+200B/200C/FEFF) is dropped.


def sanitize(text: str) -> str:
    """``text`` made safe to display on a terminal (see the module docstring for the rules)."""
    if _SPECIAL.search(text) is None:
        return text
    s = StreamSanitizer()
    return s.feed(text) + s.flush()


def _cells(c: str) -> int:
    if unicodedata.combining(c) or c == "\u200d" or "\ufe00" <= c <= "\ufe0f":
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def sanitize_title(text: str, limit: int = 80) -> str:
    """A one-line title (window, tab, conversation list) at most ``limit`` cells wide.

    Sanitised, whitespace runs (including newlines and tabs) collapsed to one space,
    stripped, and cut with ``…`` when too wide.  Safe to interpolate into an OSC 0/2
    title sequence: it contains no control character at all.
    """
    line = " ".join(sanitize(text).split())
    if limit <= 0:
        return ""
    width = 0
    for i, c in enumerate(line):
        width += _cells(c)
        if width > limit:
            # Cut so that the text plus "…" fits in ``limit`` cells.
            cut = i
            while cut > 0 and sum(_cells(x) for x in line[:cut]) + 1 > limit:
                cut -= 1
            return line[:cut].rstrip() + "…"
    return line


def sanitize_for_clipboard(text: str) -> str:
    """Text for a clipboard copy: exactly what the user saw on screen.

    Same rules as :func:`sanitize`: escape sequences (with payloads), ESC, C1, ``^C`` and
    every other C0 except LF and TAB, and lone CR are removed, so the result can never
    contain ``ESC[201~`` (bracketed-paste end) and cannot break out of a paste
    (reliability.md T8).  Bidi controls are copied as their visible markers, as shown —
    pasting hidden bidi overrides into code would be a "Trojan Source" attack.
    """
    return sanitize(text)
