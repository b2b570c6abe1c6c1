"""``[templates.NAME]``: a named starting point for a prompt or a conversation.

    [templates.review]
    profile = "vllm"                  # else the default profile
    model = "qwen2.5-coder-7b"        # overrides the profile's model
    system = "You review code. Be brief."
    temperature = 0.2                 # and max_tokens, top_p, seed

``tide ask -t review``, ``tide compare -t review`` and "New conversation from template"
in the chat app start from it.  Command-line flags beat the template, and the template
beats the profile: ``tide ask -t review --temperature 0`` sends temperature 0, the
template's system prompt and the profile's url.

The app needs two things from here: ``Settings.templates`` (name -> :class:`Template`,
in file order) and :func:`start_from_template`, which turns a template's name into the
profile a conversation talks to, with the template applied.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from tokentide.config.model import Profile, Settings, Template
from tokentide.errors import ConfigError

__all__ = [
    "TEMPLATE_KEYS",
    "TemplateStart",
    "apply_template",
    "parse_template",
    "resolve_template",
    "start_from_template",
]

TEMPLATE_KEYS: Final = frozenset(
    {"profile", "model", "system", "temperature", "max_tokens", "top_p", "seed"}
)
_APPLIED: Final = ("model", "system", "temperature", "max_tokens", "top_p", "seed")
"""What a template changes in its profile (``profile`` chooses the profile instead)."""
_SAMPLING: Final = ("model", "max_tokens", "temperature", "top_p", "seed")


@dataclass(frozen=True, slots=True)
class TemplateStart:
    """What a conversation started from a template begins with."""

    template: Template
    profile: Profile
    """The template's profile (or the default one) with the template's model, system
    prompt and sampling applied: build the backend from it.  Its ``system`` is the
    conversation's system prompt; its model and sampling are the request defaults."""

    @property
    def system(self) -> str | None:
        return self.profile.system

    def request_defaults(self) -> dict[str, Any]:
        """``model``, ``max_tokens``, ``temperature``, ``top_p``, ``seed`` that are set,
        as keyword arguments of ``GenerationRequest`` (the system prompt is a message)."""
        values = ((key, getattr(self.profile, key)) for key in _SAMPLING)
        return {key: value for key, value in values if value is not None}


def parse_template(
    name: str,
    table: Mapping[str, Any],
    *,
    profiles: Collection[str],
    here: Callable[[str | None], str],
) -> Template:
    """Check one ``[templates.NAME]`` table.  ``profiles`` are the names a template may
    use (the built-in ``local`` among them); ``here(key)`` is the ``"path:line: "`` of
    the table or of one of its keys."""
    from tokentide.config import validate as v

    def where(key: str) -> Callable[[], str]:
        return lambda: here(key)

    for key in table:
        if key not in TEMPLATE_KEYS:
            raise ConfigError(
                f"{here(key)}template {name!r}: unknown key {key!r}."
                + v.did_you_mean(key, TEMPLATE_KEYS),
                hint="A template takes: " + ", ".join(sorted(TEMPLATE_KEYS)) + ".",
            )

    def text(key: str) -> str | None:
        return v.string(table[key], key, where(key)) if key in table else None

    def number(key: str, maximum: float | None = None) -> float | None:
        if key not in table:
            return None
        return v.number(table[key], key, where(key), minimum=0, maximum=maximum)

    def count(key: str, minimum: int) -> int | None:
        return v.count(table[key], key, where(key), minimum=minimum) if key in table else None

    profile = text("profile")
    if profile is not None and profile not in profiles:
        raise ConfigError(
            f"{here('profile')}template {name!r}: profile = {profile!r}, but there is no "
            "such profile." + v.did_you_mean(profile, profiles),
            hint=f"Profiles: {', '.join(map(repr, profiles))}.",
        )
    return Template(
        name=name,
        profile=profile,
        model=text("model"),
        system=text("system"),
        temperature=number("temperature"),
        max_tokens=count("max_tokens", 1),
        top_p=number("top_p", maximum=1),
        seed=count("seed", -(1 << 63)),
    )


def resolve_template(settings: Settings, name: str) -> Template:
    """The template named, or a :class:`ConfigError` (exit 2) listing the known ones."""
    if name in settings.templates:
        return settings.templates[name]
    where = f" in {settings.path}" if settings.path else " (no config file yet: tide config init)"
    if settings.templates:
        hint = f"Templates: {', '.join(map(repr, settings.templates))}."
    else:
        hint = "There are none yet: add a [templates.NAME] table to the config file."
    if _is_number(name):
        hint = f"-t names a template now; for a temperature write --temperature {name}. {hint}"
    raise ConfigError(f"No template named {name!r}{where}.", hint=hint)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def apply_template(profile: Profile, template: Template) -> Profile:
    """``profile`` with the values ``template`` sets (model, system prompt, sampling)."""
    changes = {key: value for key in _APPLIED if (value := getattr(template, key)) is not None}
    return replace(profile, **changes) if changes else profile


def start_from_template(settings: Settings, name: str) -> TemplateStart:
    """What a new conversation from template ``name`` talks to and starts with.

    The template's ``profile`` (else the file's default, else the built-in ``local``)
    with the template applied.  An unknown template is a :class:`ConfigError` naming
    the known ones; so is an unknown profile (the file's checks make that rare).
    """
    from tokentide.config.load import resolve_profile

    template = resolve_template(settings, name)
    profile = resolve_profile(settings, template.profile)
    return TemplateStart(template=template, profile=apply_template(profile, template))
