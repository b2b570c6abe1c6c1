"""One guard per answer stream: size limits, the ``yields`` style and UTF-8, for every
transport.

Every backend receives an answer in pieces: the output tensor of each Triton gRPC
response (bytes), the text of each Triton HTTP or Muna event, each value a local
predictor yields (str).  What must be true of those pieces is the same whatever carried
them, so it is checked here, once, by :class:`StreamGuard`:

* **limits** (``[profiles.X]`` ``max_event_bytes`` / ``max_answer_bytes``,
  :class:`~tokentide.config.model.Limits`): the text one piece adds must fit in
  ``max_event_bytes`` and is refused whole otherwise; the whole answer must fit in
  ``max_answer_bytes``: the piece that crosses it is cut to fit (:meth:`StreamGuard.text`
  returns that much, so the partial answer shows all that was allowed) and
  :attr:`StreamGuard.exhausted` turns true, after which the caller raises
  :meth:`StreamGuard.too_long`.  A piece that claims to be the whole answer so far
  (``cumulative``) is checked against ``max_answer_bytes`` before anything compares or
  copies it; sizes of ``str`` pieces cost O(1) for ASCII (:func:`utf8_size`);
* **the yields style** (``protocols.md`` §9, :mod:`~tokentide.backends._cumulative`):
  ``delta`` pieces are appended as they are; ``cumulative`` pieces are each the whole
  answer so far, and one that does not extend the previous one is an error (guessing
  would garble the answer); ``auto`` is cumulative while each piece extends the last and
  delta from the first that does not.  For bytes the prefix is compared on bytes, so a
  cumulative piece may end inside a multi-byte character;
* **UTF-8, incrementally**: bytes are decoded as they come, a character split across two
  pieces is held back until its end arrives (never garbled), invalid bytes become U+FFFD.

Where a transport has a stage before the pieces, that stage bounds memory with the same
limits and the guard's words: an HTTP body is cut at ``max_answer_bytes`` *before it is
inflated* (:func:`~tokentide.backends.http_body.aiter_bounded`, raising the guard's
:meth:`~StreamGuard.too_long`), and the SSE/NDJSON framing refuses a line or event over
``max_event_bytes`` while it is still being assembled, decoding only complete lines
(:mod:`~tokentide.backends.sse`), which is the same UTF-8 guarantee.

The per-piece path is one method call: the style is chosen once, at construction, by
binding :meth:`StreamGuard.data` and :meth:`StreamGuard.text` to the right
implementation, and UTF-8 is decoded with ``codecs.utf_8_decode`` directly rather than
through the pure-Python ``codecs.BufferedIncrementalDecoder``.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass

from tokentide.backends._cumulative import Yields
from tokentide.config.model import Limits
from tokentide.errors import BackendError, LimitExceeded, ProtocolError, excerpt

__all__ = ["StreamGuard", "Wording", "answer_too_long", "clip", "utf8_size"]

_ANSWER_HINT = "Raise max_answer_bytes in the profile if this is expected."
_PIECE_HINT = "Raise max_event_bytes in the profile if pieces this large are expected."
_REVISION_HINT = 'If the server sends pieces to append, set yields = "delta" in the profile.'

_utf_8_decode = codecs.utf_8_decode


def utf8_size(text: str, cap: int) -> int:
    """The UTF-8 size of ``text`` in bytes, or some number above ``cap`` when it is surely
    larger (without encoding a huge string to find out: a ``str`` has at least as many
    UTF-8 bytes as characters, and ``len`` and ``isascii`` are O(1) in CPython)."""
    n = len(text)
    if n > cap or text.isascii():
        return n
    return len(text.encode())


def clip(text: str, room: int) -> str:
    """The longest prefix of ``text`` that fits in ``room`` UTF-8 bytes."""
    if room <= 0:
        return ""
    return text[:room].encode()[:room].decode(errors="ignore")


def answer_too_long(answer: str, limit: int, server: str | None) -> LimitExceeded:
    """The one wording of "the answer passed ``max_answer_bytes``": ``answer`` names it
    ("The answer from http://…", "The result at …")."""
    return LimitExceeded(
        f"{answer} passed {limit:,} bytes; stopped reading.", server=server, hint=_ANSWER_HINT
    )


@dataclass(frozen=True, slots=True)
class Wording:
    """How the guard's errors name the stream, for a person."""

    source: str
    """Who sends the pieces: ``http://host:8000``, ``Model 'm' at host:8001``, ``mod:fn``."""
    server: str | None
    """The errors' ``server``."""
    piece: str = "sent a piece"
    """What one piece is, after :attr:`source` ("produced a piece", "sent a response")."""
    piece_hint: str = _PIECE_HINT
    revision_error: Callable[..., BackendError] = ProtocolError
    """The error type of a cumulative piece that does not extend the answer so far
    (a local predictor's own error is a :class:`~tokentide.errors.LocalFunctionError`)."""
    whole: str = ""
    """The answer as a subject, when "The answer from <source>" does not read well
    ("The answer from model 'm' at host:8001")."""

    @property
    def answer(self) -> str:
        return self.whole or f"The answer from {self.source}"


class StreamGuard:
    """One answer stream's limits, yields style and UTF-8 decoding (module docstring).

    Feed every piece in order to :meth:`text` (``str``) or :meth:`data` (``bytes``); each
    returns the new text to show (possibly ``""``), raises :class:`LimitExceeded` for a
    piece over ``max_event_bytes`` or a cumulative piece over ``max_answer_bytes``, and
    the revision error of :class:`Wording` for a cumulative piece that does not extend
    the answer.  After each piece, if :attr:`exhausted`, show what was returned and raise
    :meth:`too_long`.  At the end of a byte stream, :meth:`end` gives what the decoder
    still holds.
    """

    __slots__ = (
        "_pending",
        "_prefix",
        "_prefix_bytes",
        "data",
        "exhausted",
        "max_answer",
        "max_event",
        "style",
        "text",
        "used",
        "wording",
    )

    data: Callable[[bytes], str]
    """The new text of a piece of bytes."""
    text: Callable[[str], str]
    """The new text of a piece of text."""

    def __init__(self, limits: Limits, style: Yields = "delta", *, wording: Wording) -> None:
        self.max_event = limits.max_event_bytes
        self.max_answer = limits.max_answer_bytes
        self.wording = wording
        self.style: Yields = style
        """``auto`` becomes ``delta`` at the first piece that does not extend the last."""
        self.used = 0
        """Bytes of answer accepted so far."""
        self.exhausted = False
        """The answer reached ``max_answer_bytes`` (a piece was cut to fit): show what
        the guard returned, then raise :meth:`too_long`.  An attribute, not a property:
        it is read after every piece."""
        self._pending = b""  # the start of a character split across pieces
        self._prefix = ""  # cumulative text pieces: the whole answer so far
        self._prefix_bytes = b""  # cumulative byte pieces: the same, undecoded
        self._bind()

    def _bind(self) -> None:
        if self.style == "delta":
            self.data = self._delta_data
            self.text = self._delta_text
        else:
            self.data = self._cumulative_data
            self.text = self._cumulative_text

    # -- delta: the per-token path ------------------------------------------------------

    def _delta_data(self, data: bytes) -> str:
        size = len(data)
        if size > self.max_event:
            raise self.piece_too_large()
        used = self.used + size
        if used > self.max_answer:
            return self._clip_data(data)
        self.used = used
        if self._pending:
            return self._decode_after(data)
        text, consumed = _utf_8_decode(data, "replace")  # not final: a split end waits
        if consumed < size:
            self._pending = data[consumed:]
        return text

    def _decode_after(self, data: bytes) -> str:
        """The rare path: the last piece ended inside a character."""
        data = self._pending + data
        text, consumed = _utf_8_decode(data, "replace")
        self._pending = data[consumed:]
        return text

    def _delta_text(self, piece: str) -> str:
        size = utf8_size(piece, self.max_event)
        if size > self.max_event:
            raise self.piece_too_large()
        room = self.max_answer - self.used
        if size > room:
            self._exhaust()
            return clip(piece, room)
        self.used += size
        return piece

    # -- cumulative (and auto) ----------------------------------------------------------

    def _cumulative_data(self, data: bytes) -> str:
        if len(data) > self.max_answer:
            raise self.too_long()
        prefix = self._prefix_bytes
        if data.startswith(prefix):
            self._prefix_bytes = data
            return self._delta_data(data[len(prefix) :])
        if self.style == "cumulative":
            raise self._not_extending(
                prefix.decode("utf-8", "replace"), data.decode("utf-8", "replace")
            )
        self._to_delta()
        return self._delta_data(data)

    def _cumulative_text(self, piece: str) -> str:
        if utf8_size(piece, self.max_answer) > self.max_answer:
            raise self.too_long()
        prefix = self._prefix
        if piece.startswith(prefix):
            self._prefix = piece
            return self._delta_text(piece[len(prefix) :])
        if self.style == "cumulative":
            raise self._not_extending(prefix, piece)
        self._to_delta()
        return self._delta_text(piece)

    def _to_delta(self) -> None:
        """``auto`` met a piece that does not extend the last: deltas from now on."""
        self.style = "delta"
        self._prefix = ""
        self._prefix_bytes = b""
        self._bind()

    @property
    def cumulative(self) -> bool:
        """Pieces are (still) read as the whole answer so far."""
        return self.style != "delta"

    # -- whole answers and the end ------------------------------------------------------

    def whole(self, text: str) -> str:
        """A whole answer in one piece (an eager function's): only the answer limit
        applies; the part that fits, :attr:`exhausted` if it did not."""
        room = self.max_answer - self.used
        size = utf8_size(text, room)
        if size > room:
            self._exhaust()
            return clip(text, room)
        self.used += size
        return text

    def revise(self, text: str) -> None:
        """``text`` is the whole answer now, revisions allowed (a local predictor's
        ``create`` keeps only the last cumulative piece): it must fit, and may not grow
        by more than one piece's worth."""
        size = utf8_size(text, self.max_answer)
        if size > self.max_answer:
            raise self.too_long()
        if size - self.used > self.max_event:
            raise self.piece_too_large()
        self.used = size

    def end(self) -> str:
        """What the decoder still holds at the end of a byte stream (an unfinished
        character becomes U+FFFD)."""
        pending, self._pending = self._pending, b""
        return pending.decode("utf-8", "replace") if pending else ""

    def _exhaust(self) -> None:
        """Nothing more fits: every later piece adds nothing."""
        self.used = self.max_answer + 1
        self.exhausted = True

    # -- the errors ---------------------------------------------------------------------

    def _clip_data(self, data: bytes) -> str:
        room = self.max_answer - self.used
        self._exhaust()
        if room <= 0:
            return ""
        kept = self._pending + data[:room]
        self._pending = b""
        return kept.decode("utf-8", "ignore")

    def too_long(self) -> LimitExceeded:
        wording = self.wording
        return answer_too_long(wording.answer, self.max_answer, wording.server)

    def piece_too_large(self) -> LimitExceeded:
        wording = self.wording
        return LimitExceeded(
            f"{wording.source} {wording.piece} of more than {self.max_event:,} bytes; "
            "stopped there.",
            server=wording.server,
            hint=wording.piece_hint,
        )

    def _not_extending(self, had: str, got: str) -> BackendError:
        wording = self.wording
        return wording.revision_error(
            f"{wording.source} sent a partial result that does not extend the previous one "
            f"(had {excerpt(had[-60:], 60)!r}, got {excerpt(got[:60], 60)!r}).",
            server=wording.server,
            hint=_REVISION_HINT,
        )
