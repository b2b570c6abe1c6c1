"""The keys a screen's bindings answer to, as the app shows keys.

Textual applies the app's keymap (``[keys]`` in the config file) to the bindings of the
focused widget's chain; :attr:`Screen.active_bindings` is the public view of the result,
and :meth:`App.get_key_display` is how the app writes a key.  Widgets and screens name
their keys through these two, never through the app's private keymap.
"""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.screen import Screen

__all__ = ["active_binding", "key_display"]


def active_binding(screen: Screen[Any], binding_id: str) -> Binding | None:
    """The binding with id ``binding_id`` active on ``screen`` now (its keys as the
    keymap set them), or None when no widget in the focus chain declares it or its
    action is disabled now (``check_action`` returned False: Textual leaves it out)."""
    for active in screen.active_bindings.values():
        if active.binding.id == binding_id:
            return active.binding
    return None


def key_display(screen: Screen[Any], binding_id: str, default: str) -> str:
    """The key of ``binding_id`` as the app displays it (``App.get_key_display``), or
    ``default`` when the binding is not active on ``screen``."""
    binding = active_binding(screen, binding_id)
    return screen.app.get_key_display(binding) if binding is not None else default
