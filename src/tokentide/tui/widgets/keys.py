"""The keys a screen's bindings answer to, as the app shows keys.

Textual applies the app's keymap (``[keys]`` in the config file) to the bindings of the
focused widget's chain; :attr:`Screen.active_bindings` is the public view of the result,
and :meth:`App.get_key_display` is how the app writes a key.  Widgets and screens name
their keys through these, never through the app's private keymap.  A key named in a
text (the first screen, an error's "ctrl+r retries") must be named whether or not its
binding is active at that moment, so :func:`declared_key_display` applies the user's
keymap to the declared bindings with Textual's own :meth:`BindingsMap.apply_keymap`:
the key shown is the one the app binds, written as the footer writes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from textual.app import App
from textual.binding import Binding, BindingsMap, BindingType
from textual.screen import Screen

__all__ = [
    "action_key_display",
    "active_binding",
    "app_key_display",
    "declared_key_display",
    "key_display",
]


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


def declared_key_display(
    app: App[Any], bindings: Iterable[BindingType], keymap: Mapping[str, str], binding_id: str
) -> str | None:
    """The first key of the binding ``binding_id`` among ``bindings``, remapped by
    ``keymap`` (binding id to keys, as ``[keys]`` in the config file and
    :meth:`App.set_keymap` take it) and written by ``app.get_key_display``; None when
    no binding has that id.  Active or not: the text naming it may show while the
    binding is disabled (an error note written while an answer streams)."""
    # Only this id's bindings, so its keys keep their declared order ("end,ctrl+end":
    # end) whatever other bindings share a key.
    declared = BindingsMap(b for b in Binding.make_bindings(bindings) if b.id == binding_id)
    declared.apply_keymap(dict(keymap))
    for found in declared.key_to_bindings.values():
        for binding in found:
            if binding.id == binding_id:
                return app.get_key_display(binding)
    return None


def action_key_display(app: App[Any], bindings: Iterable[BindingType], action: str) -> str:
    """The first key bound to ``action`` in ``bindings`` (a dialog's own, which have no
    id for a keymap to move), as the app displays keys; ``action`` when none is."""
    for found in BindingsMap(bindings).key_to_bindings.values():
        for binding in found:
            if binding.action == action:
                return app.get_key_display(binding)
    return action


def app_key_display(app: App[Any], action: str) -> str:
    """The key of one of Textual's own app bindings (``"quit"``, ``"command_palette"``:
    they have no id, so no keymap moves them) as the app displays keys; ``action`` when
    the app has none for it."""
    bindings: list[BindingType] = [*app.BINDINGS]
    if app.ENABLE_COMMAND_PALETTE:
        bindings.append(
            Binding(
                app.COMMAND_PALETTE_BINDING,
                "command_palette",
                key_display=app.COMMAND_PALETTE_DISPLAY,
            )
        )
    return action_key_display(app, bindings, action)
