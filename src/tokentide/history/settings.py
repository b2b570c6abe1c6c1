"""A conversation's own settings, and how they are stored (JSON text in
``conversations.settings``; NULL means "the profile's")."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from tokentide.history.columns import json_object

__all__ = ["ConversationSettings"]


@dataclass(frozen=True, slots=True)
class ConversationSettings:
    """What a conversation sets for itself; every field None means "as the profile says".

    ``profile`` and ``model`` name what the conversation uses; ``system_prompt`` replaces
    the profile's; the sampling fields go into each request."""

    system_prompt: str | None = None
    profile: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("system_prompt", "profile", "model"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"conversation settings: {name} is text, not {value!r}")
        for name in ("temperature", "top_p"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ValueError(f"conversation settings: {name} is a finite number, not {value!r}")
        for name in ("max_tokens", "seed"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"conversation settings: {name} is a whole number, not {value!r}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(
                f"conversation settings: max_tokens is at least 1, not {self.max_tokens}"
            )

    def cleaned(self, clean: Callable[[str], str]) -> ConversationSettings:
        """A copy with ``clean`` applied to every text field."""
        return replace(
            self,
            system_prompt=None if self.system_prompt is None else clean(self.system_prompt),
            profile=None if self.profile is None else clean(self.profile),
            model=None if self.model is None else clean(self.model),
        )

    @property
    def is_empty(self) -> bool:
        """True when nothing is set (stored as NULL)."""
        return all(getattr(self, f.name) is None for f in fields(self))

    def as_dict(self) -> dict[str, Any]:
        """The fields that are set (JSON-ready)."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def _settings_json(settings: ConversationSettings | None) -> str | None:
    if settings is None or settings.is_empty:
        return None
    return json.dumps(settings.as_dict(), ensure_ascii=False, sort_keys=True, allow_nan=False)


def _settings_value(text: str | None) -> ConversationSettings | None:
    """Stored settings read back.  Damage (not JSON, not an object, a field of the wrong
    type, an unknown key) is left out field by field rather than failing the load; None
    when nothing usable remains."""
    value = json_object(text)
    if value is None:
        return None
    kept: dict[str, Any] = {}
    for f in fields(ConversationSettings):
        if f.name not in value:
            continue
        try:
            ConversationSettings(**{f.name: value[f.name]})
        except (TypeError, ValueError):
            continue
        kept[f.name] = value[f.name]
    settings = ConversationSettings(**kept)
    return None if settings.is_empty else settings
