"""A conversation's own settings applied: the profile answers come from, and the
sampling each request carries (a value the conversation sets beats its profile's)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokentide.config.model import Profile, Settings
    from tokentide.history.settings import ConversationSettings

__all__ = ["apply_settings", "request_sampling"]


def apply_settings(config: Settings, base: Profile, own: ConversationSettings | None) -> Profile:
    """The profile for a conversation with settings ``own``, built from ``base`` (the
    profile the chat started with): the profile they name (when the config has it),
    with their model.  No settings: ``base`` itself, so nothing one conversation set
    leaks into another."""
    profile = base
    if own is not None and own.profile is not None and own.profile != base.name:
        from tokentide.config.load import resolve_profile
        from tokentide.errors import TideError

        try:
            profile = resolve_profile(config, own.profile)
        except TideError:
            profile = base  # a profile since removed from the config: the chat's own
    if own is not None and own.model is not None and own.model != profile.model:
        profile = replace(profile, model=own.model)
    return profile


def request_sampling(own: ConversationSettings | None) -> dict[str, Any]:
    """The sampling fields a request carries for a conversation's settings (unset ones
    are left to the profile)."""
    if own is None:
        return {}
    values = {
        "temperature": own.temperature,
        "max_tokens": own.max_tokens,
        "top_p": own.top_p,
        "seed": own.seed,
    }
    return {key: value for key, value in values.items() if value is not None}
