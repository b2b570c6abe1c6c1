"""Garbage collection paced for a streaming Textual app (see docs/performance.md,
"Live Markdown rendering"): :func:`settle_gc` at rest, and full collections held back
while any message streams (:data:`full_collections_deferred`)."""

from __future__ import annotations

import gc
from typing import ClassVar

__all__ = ["full_collections_deferred", "settle_gc"]


def settle_gc() -> None:
    """Collect garbage once, then exclude every surviving object from future collections.

    Call it where a pause of one full collection (10–60 ms measured) is harmless and a
    lot of long-lived objects were just created: once the app's first screen is up
    (``App.on_ready``), after a saved conversation has been mounted and painted (opening
    or switching conversations: ``self.call_after_refresh(settle_gc)`` right after the
    ``mount_all``, so the collection does not delay the first paint), and after an
    answer has finished streaming.

    Why: CPython's cyclic GC periodically walks every tracked object (a *full*
    collection).  During a 20,000-token stream with 50 earlier answers on screen these
    collections took 50–110 ms each — event-loop stalls — because they walked Textual's
    and the conversation's ~100k long-lived objects again and again.  After
    ``gc.freeze()`` they only walk what was allocated since (7–30 ms measured; see
    ``docs/performance.md``, "Live Markdown rendering").

    ``gc.unfreeze()`` first, so that objects frozen by an earlier call that have become
    cyclic garbage since (the widgets of a closed conversation) are collected now
    instead of leaking.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class _FullCollectionsDeferred:
    """While any message streams, CPython's automatic *full* collections wait.

    A full (generation 2) collection walks every tracked object allocated since the last
    :func:`settle_gc`; during a stream it ran ~20 times per 20,000 tokens and took
    13–29 ms each, and every worst event-loop stall measured with 50 earlier answers on
    screen was one of them landing inside a layout (``docs/performance.md``).  Young
    collections (generations 0 and 1) go on as usual, so short-lived cycles are still
    freed at once; what survives them waits for the :func:`settle_gc` the app runs when
    the answer ends.  Reference-counted objects (almost everything) are freed as always.

    Counted: several messages may stream at once (comparison panes, multi-node answers).
    A message that is unmounted while streaming releases its hold.
    """

    DEFERRED_THRESHOLD2: ClassVar[int] = 1_000_000

    def __init__(self) -> None:
        self.holders = 0
        self._saved: tuple[int, int, int] | None = None

    def hold(self) -> None:
        self.holders += 1
        if self.holders == 1:
            self._saved = gc.get_threshold()
            first, second, _ = self._saved
            gc.set_threshold(first, second, self.DEFERRED_THRESHOLD2)

    def release(self) -> None:
        if self.holders <= 0:
            return
        self.holders -= 1
        if self.holders == 0 and self._saved is not None:
            # Restoring the threshold alone would let the next young collection start
            # the full one held back, over everything the stream left: 40-90 ms inside
            # the paint of the answer's last tokens (issue 17).  Freezing the survivors
            # first is O(1); the app's settle_gc() at rest unfreezes and collects them.
            gc.freeze()
            gc.set_threshold(*self._saved)
            self._saved = None


full_collections_deferred = _FullCollectionsDeferred()
