"""What an answer is titled with: the model that answers, named as well as tide can
before the server names it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokentide.config.model import Profile

__all__ = ["model_label", "recorded_model"]

BUILT_IN_MODEL = "SmolLM2-135M-Instruct (built in)"


def model_label(profile: Profile) -> str:
    """The model a profile answers with, for people."""
    if profile.model:
        return profile.model
    if profile.api == "llamacpp":
        path = profile.options.get("model_path")
        return str(path).rsplit("/", 1)[-1] if path else BUILT_IN_MODEL
    if profile.api == "local":
        return str(profile.options.get("target", "local function"))
    return "the server's default model"


def recorded_model(profile: Profile) -> str | None:
    """The model an answer is saved and titled with before the server names it: the
    profile's, or the in-process backend's own (a file, a function); None for a
    server's default model."""
    from tokentide.config.apis import in_process

    if profile.model or in_process(profile.api):
        return model_label(profile)
    return None
