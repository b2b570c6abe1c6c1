"""Turning a stream of *cumulative* texts ("hello", "hello from", "hello from Muna") into
deltas ("hello", " from", " Muna"), shared by the HTTP dialects whose servers may send
either (Triton ``generate_stream`` models, Muna predictors).  ``protocols.md`` §9.

``yields`` is the profile option that says which style the server uses:

* ``"delta"``: every piece is appended as it is;
* ``"cumulative"``: every piece is the whole answer so far; a piece that does not extend
  the previous one is an error (:class:`~tokentide.errors.ProtocolError`), because
  guessing would silently garble the answer;
* ``"auto"``: treat pieces as cumulative while each extends the text so far, and fall
  back to delta mode for the rest of the stream at the first one that does not.  A delta
  stream can look cumulative by accident ("a", "ab"), so an explicit style is better.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from tokentide.errors import ConfigError, ProtocolError, excerpt

__all__ = ["YIELD_STYLES", "Accumulator", "Yields", "yields_option"]

Yields = Literal["delta", "cumulative", "auto"]
YIELD_STYLES: tuple[Yields, ...] = ("delta", "cumulative", "auto")


def yields_option(
    options: Mapping[str, Any],
    profile_name: str,
    default: Yields = "delta",
    styles: tuple[Yields, ...] = YIELD_STYLES,
) -> Yields:
    """The ``yields`` option of a profile, checked against the ``styles`` a backend takes."""
    value = options.get("yields", default)
    if value not in styles:
        raise ConfigError(
            f"Profile {profile_name!r}: yields = {value!r} is not one of "
            f"{', '.join(repr(s) for s in styles)}.",
            hint='"delta": each piece is appended; "cumulative": each piece is the whole '
            'answer so far; "auto": cumulative while each piece extends the last.',
        )
    return cast(Yields, value)


class Accumulator:
    """Feed pieces in the declared style, get the new text (the delta) back."""

    __slots__ = ("server", "style", "text")

    def __init__(self, style: Yields, server: str | None = None) -> None:
        self.style: Yields = style
        self.server = server
        self.text = ""
        """The whole answer so far."""

    def feed(self, piece: str) -> str:
        """The part of ``piece`` that is new; raises ProtocolError in cumulative mode
        when ``piece`` does not extend the answer so far."""
        if self.style == "delta":
            self.text += piece
            return piece
        if piece.startswith(self.text):
            delta = piece[len(self.text) :]
            self.text = piece
            return delta
        if self.style == "auto":
            self.style = "delta"
            self.text += piece
            return piece
        where = f"{self.server} " if self.server else "The server "
        raise ProtocolError(
            f"{where}sent a partial result that does not extend the previous one "
            f"(had {excerpt(self.text[-60:], 60)!r}, got {excerpt(piece[:60], 60)!r}).",
            server=self.server,
            hint='If the server sends pieces to append, set yields = "delta" in the profile.',
        )
