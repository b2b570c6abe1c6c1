"""Hugging Face text-generation-inference, native API (``api = "tgi"``).

``url`` is the server root, e.g. ``http://127.0.0.1:8080``; streaming uses
``POST /generate_stream`` and ``create`` uses ``POST /generate``, both with
``parameters.details = true`` so every token carries its id, logprob and special flag.

TGI's native routes take raw ``inputs``: no chat template is applied, so a conversation
is flattened with :func:`~tokentide.backends.base.prompt_text`.  For chat models use
``api = "openai"`` with ``url = "http://host:8080/v1"`` (TGI's ``/v1/chat/completions``
applies the model's chat template).

Wire facts (``protocols.md`` §2.1): ``data:`` events only (with or without the space),
no ``[DONE]``: the event whose ``generated_text`` is not null is the last one, and a
stream that ends before it is cut short.  ``logprob`` may be null (NaN in the server).
Every error on ``/generate_stream``, even ``overloaded`` before the first token, is an
in-band ``{"error", "error_type"}`` event under HTTP 200; ``/generate`` maps overload to
HTTP 429.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokentide.backends.base import GenerationRequest, Reply, prompt_text, sampling
from tokentide.backends.events import Event, Finish, TextDelta, Usage
from tokentide.backends.http import HTTPBackend, HTTPCall, StreamParser, event_object
from tokentide.backends.media import backend_label, refuse_images
from tokentide.backends.sse import SSEEvent
from tokentide.config.model import Profile
from tokentide.errors import IncompleteStream, ServerError, excerpt

__all__ = ["TGIBackend", "from_profile"]

FINISH_REASONS = {"eos_token": "stop", "length": "length", "stop_sequence": "stop_sequence"}


def finish_reason(value: Any) -> str | None:
    """TGI's finish reason in tokentide's words (``eos_token`` is ``stop``)."""
    if not isinstance(value, str):
        return None
    return FINISH_REASONS.get(value, value)


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def token_delta(token: Any) -> TextDelta | None:
    """A TGI ``Token`` object as a TextDelta (None if it is not one)."""
    if not isinstance(token, dict):
        return None
    text = token.get("text")
    if not isinstance(text, str):
        return None
    return TextDelta(
        text,
        token_id=_int_or_none(token.get("id")),
        logprob=_float_or_none(token.get("logprob")),
        special=token.get("special") is True,
    )


def _usage(details: Mapping[str, Any]) -> Usage | None:
    prompt = _int_or_none(details.get("input_length"))
    completion = _int_or_none(details.get("generated_tokens"))
    if prompt is None and completion is None:
        return None
    return Usage(prompt, completion)


def raise_in_band(obj: Mapping[str, Any], server: str) -> None:
    """Raise the ServerError for a TGI ``{"error", "error_type"}`` object, if it is one."""
    error = obj.get("error")
    if not error:
        return
    kind = obj.get("error_type")
    kind = kind if isinstance(kind, str) else None
    message = error if isinstance(error, str) else str(error)
    hint = None
    if kind == "overloaded":
        hint = "The server is at its max_concurrent_requests; try again in a moment."
    elif kind == "validation":
        hint = "The server rejected the request's parameters (see the message)."
    raise ServerError(
        f"{server} reported an error{f' ({kind})' if kind else ''}: {excerpt(message)}",
        kind=kind,
        server=server,
        hint=hint,
    )


class TGIParser(StreamParser):
    def __init__(self, server: str) -> None:
        self.server = server
        self.done = False

    def feed(self, item: SSEEvent) -> list[Event]:
        obj = event_object(item.data, self.server)
        raise_in_band(obj, self.server)
        events: list[Event] = []
        if (delta := token_delta(obj.get("token"))) is not None:
            events.append(delta)
        generated = obj.get("generated_text")
        if generated is not None:
            details = obj.get("details")
            details = details if isinstance(details, dict) else {}
            self.done = True
            events.append(
                Finish(
                    reason=finish_reason(details.get("finish_reason")),
                    usage=_usage(details),
                    seed=_int_or_none(details.get("seed")),
                    text=generated if isinstance(generated, str) else None,
                )
            )
        return events

    def end(self) -> list[Event]:
        raise IncompleteStream(
            f"The stream from {self.server} ended before its final event (the one with "
            "generated_text): the answer may be cut short.",
            server=self.server,
            hint="The server may have crashed or been restarted; check its log.",
        )


class TGIBackend(HTTPBackend):
    api = "tgi"
    continues_answers = True
    """``inputs`` is raw text: the transcript ends with the partial answer
    (:func:`~tokentide.backends.base.prompt_text`)."""

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        refuse_images(request, backend_label(self.profile, self.api), self.name)
        profile = self.profile
        params: dict[str, Any] = {"details": True}
        chosen = sampling(request, profile)
        if (max_tokens := chosen.get("max_tokens")) is not None:
            params["max_new_tokens"] = max_tokens
        if (temperature := chosen.get("temperature")) is not None:
            if temperature > 0:
                params["temperature"] = temperature
                params["do_sample"] = True
            else:
                # TGI rejects temperature 0 ("must be strictly positive"): greedy instead.
                params["do_sample"] = False
        top_p = chosen.get("top_p")
        if top_p is not None and 0 < top_p < 1:  # TGI requires 0 < top_p < 1
            params["top_p"] = top_p
        if (seed := chosen.get("seed")) is not None:
            params["seed"] = seed
        if request.stop:
            params["stop"] = list(request.stop)
        params.update(profile.params)
        params.update(request.extra)
        return {"inputs": prompt_text(request), "parameters": params}

    def stream_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall("/generate_stream", self._body(request), {"Accept": "text/event-stream"})

    def create_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall("/generate", self._body(request))

    def new_parser(self, request: GenerationRequest) -> StreamParser:
        return TGIParser(self.base_url)

    def parse_reply(self, body: Any, request: GenerationRequest) -> Reply:
        if isinstance(body, list):  # TGI's compat route "/" answers a one-element list
            body = body[0]
        details = body.get("details")
        details = details if isinstance(details, dict) else {}
        tokens = [d for t in details.get("tokens") or () if (d := token_delta(t)) is not None]
        text = body["generated_text"]
        if not isinstance(text, str):
            raise TypeError("generated_text is not a string")
        return Reply(
            text=text,
            finish_reason=finish_reason(details.get("finish_reason")),
            usage=_usage(details),
            seed=_int_or_none(details.get("seed")),
            tokens=tuple(tokens),
        )


def from_profile(profile: Profile, env: Mapping[str, str]) -> TGIBackend:
    return TGIBackend(profile, env)
