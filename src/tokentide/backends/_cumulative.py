"""The ``yields`` option: whether a server sends *cumulative* texts ("hello", "hello
from", "hello from Muna") or deltas ("hello", " from", " Muna").  Triton models (HTTP
and gRPC), Muna predictors and local predictors may send either.  ``protocols.md`` §9.
Turning the pieces into deltas is the stream guard's work
(:class:`~tokentide.backends.stream_guard.StreamGuard`), with the size limits and the
UTF-8 decoding, for every transport alike.

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

from tokentide.errors import ConfigError

__all__ = ["YIELD_STYLES", "Yields", "yields_option"]

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
