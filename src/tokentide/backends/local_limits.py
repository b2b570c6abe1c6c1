"""The size limits of a predictor's answer (``api = "local"``), checked piece by piece.

The same two limits as every other backend (``[profiles.X]`` ``max_event_bytes`` and
``max_answer_bytes``, :class:`~tokentide.config.model.Limits`), applied to each piece
*as it arrives*, before it is concatenated, compared or handed on:

* the text one piece adds (a yielded delta, or what a cumulative piece adds to the
  answer so far) must fit in ``max_event_bytes``, the local counterpart of one server
  event.  A piece that does not is refused whole, like an over-long SSE event;
* the whole answer must fit in ``max_answer_bytes``.  The piece that crosses it is cut
  to fit (streaming shows that much), then the answer ends with
  :class:`~tokentide.errors.LimitExceeded`.

Checking costs O(1) for ASCII text and a size-bounded copy otherwise: a 10 MB piece is
refused without being copied (``str.isascii`` and ``len`` are O(1) in CPython, and a
``str`` has at least as many UTF-8 bytes as characters).
"""

from __future__ import annotations

from tokentide.config.model import Limits
from tokentide.errors import LimitExceeded

__all__ = ["Budget", "clip", "utf8_size"]


def utf8_size(text: str, cap: int) -> int:
    """The UTF-8 size of ``text`` in bytes, or some number above ``cap`` when it is surely
    larger (without encoding a huge string to find out)."""
    n = len(text)
    if n > cap or text.isascii():
        return n
    return len(text.encode())


def clip(text: str, room: int) -> str:
    """The longest prefix of ``text`` that fits in ``room`` UTF-8 bytes."""
    if room <= 0:
        return ""
    return text[:room].encode()[:room].decode(errors="ignore")


class Budget:
    """What is left of one answer's limits.  One per answer, fed every piece in order."""

    __slots__ = ("max_answer", "max_event", "target", "used")

    def __init__(self, limits: Limits, target: str) -> None:
        self.max_event = limits.max_event_bytes
        self.max_answer = limits.max_answer_bytes
        self.target = target
        self.used = 0
        """Bytes of answer accepted so far."""

    def check_piece(self, text: str) -> None:
        """Refuse a piece (its new text) larger than ``max_event_bytes``."""
        if utf8_size(text, self.max_event) > self.max_event:
            raise self._piece_too_large()

    def check_whole(self, text: str) -> None:
        """Refuse a whole answer so far (a cumulative piece) larger than ``max_answer_bytes``,
        before anything compares or copies it."""
        if utf8_size(text, self.max_answer) > self.max_answer:
            raise self.too_long()

    def take(self, text: str) -> str:
        """Count ``text`` into the answer; the part that fits if it crosses the limit
        (then :attr:`exhausted` is true and the caller raises :meth:`too_long`)."""
        room = self.max_answer - self.used
        size = utf8_size(text, room)
        if size > room:
            self.used = self.max_answer + 1
            return clip(text, room)
        self.used += size
        return text

    def replace(self, text: str) -> None:
        """``text`` is the whole answer now (``create`` with cumulative pieces, which may
        revise): it must fit, and may not grow by more than one piece's worth."""
        size = utf8_size(text, self.max_answer)
        if size > self.max_answer:
            raise self.too_long()
        if size - self.used > self.max_event:
            raise self._piece_too_large()
        self.used = size

    def _piece_too_large(self) -> LimitExceeded:
        return LimitExceeded(
            f"{self.target} produced a piece of more than {self.max_event:,} bytes; stopped there.",
            server=self.target,
            hint="Raise max_event_bytes in the profile if pieces this large are expected, "
            "or yield the answer in smaller pieces.",
        )

    @property
    def exhausted(self) -> bool:
        return self.used > self.max_answer

    def too_long(self) -> LimitExceeded:
        return LimitExceeded(
            f"The answer from {self.target} passed {self.max_answer:,} bytes; stopped reading.",
            server=self.target,
            hint="Raise max_answer_bytes in the profile if this is expected.",
        )
