"""Continuing a partial answer with the in-process llama.cpp model.

llama-cpp-python's ``create_chat_completion`` always renders the conversation with the
generation prompt, so a final assistant message becomes a finished turn followed by a
new, empty one: the model would start a new answer.  To continue instead, the model's own
chat template (the Jinja template stored in the GGUF, as ``create_chat_completion`` uses
it) is rendered here *without* the generation prompt, with a marker appended to the
partial answer; the prompt is cut at the marker, so whatever the template writes after a
finished assistant turn (``<|im_end|>``, a newline) is gone and the prompt ends with the
partial answer's last character.  ``create_completion`` then goes on from there, with the
template's end-of-turn token as its stop, exactly as the chat handler sets it.

This is what Hugging Face transformers (``continue_final_message``) and vLLM do, with a
marker instead of searching for the partial answer's text, which a short answer ("a")
could match inside the template's own words.

Only the GGUF's template can be rendered this way: a ``chat_format`` named in the profile
is one of llama-cpp-python's built-in formatters, which it keeps inside its completion
handler (no way to render it without the generation prompt), so such a profile declares
that it cannot continue (:attr:`LlamaCppBackend.continues_answers`).
"""

from __future__ import annotations

import inspect
from collections.abc import Generator, Mapping
from typing import Any

from tokentide.errors import BackendError

__all__ = ["continue_chunks", "continue_prompt"]

MARKER = "\ue000tokentide-continues-here\ue000"
"""Private-use characters no template writes and no answer contains."""


def continue_prompt(llama: Any, messages: list[Mapping[str, Any]], name: str) -> tuple[Any, ...]:
    """(prompt tokens, stop strings, stopping criteria) that continue ``messages[-1]``."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise BackendError(
            f"{name}: this model cannot continue an answer: its GGUF file has no chat "
            "template to render the partial answer with.",
            server=name,
            hint="Regenerate the answer instead, or use a model whose GGUF has a template.",
        )
    eos_id, bos_id = llama.token_eos(), llama.token_bos()

    def text(token: int) -> str:
        if token == -1:
            return ""
        return bytes(llama.detokenize([token], special=True)).decode("utf-8", "replace")

    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=text(eos_id),
        bos_token=text(bos_id),
        add_generation_prompt=False,
        stop_token_ids=[eos_id],
    )
    *earlier, last = messages
    marked: Any = [*earlier, {**last, "content": f"{last.get('content') or ''}{MARKER}"}]
    try:
        result = formatter(messages=marked)
    except Exception as error:
        raise BackendError(
            f"{name}: the model's chat template failed on the partial answer: "
            f"{type(error).__name__}: {error}",
            server=name,
        ) from error
    cut = result.prompt.rfind(MARKER)
    if cut < 0:
        raise BackendError(
            f"{name}: this model cannot continue an answer: its chat template leaves out "
            "the partial answer.",
            server=name,
            hint="Regenerate the answer instead.",
        )
    tokens = llama.tokenize(
        result.prompt[:cut].encode("utf-8"), add_bos=not result.added_special, special=True
    )
    stop = result.stop if isinstance(result.stop, list) else [result.stop]
    return tokens, [s for s in stop if s], result.stopping_criteria


def continue_chunks(
    llama: Any, arguments: Mapping[str, Any], name: str
) -> Generator[Any, None, None]:
    """``create_completion`` chunks for the continuation, shaped as the chat chunks
    ``create_chat_completion`` streams (``choices[0].delta.content``, ``finish_reason``).
    Runs in the worker thread that holds the model."""
    from llama_cpp import Llama

    accepted = inspect.signature(Llama.create_completion).parameters
    rest = {k: v for k, v in arguments.items() if k != "messages"}
    unknown = sorted(set(rest) - set(accepted))
    if unknown:
        raise BackendError(
            f"{name}: an answer cannot be continued with {', '.join(map(repr, unknown))}.",
            server=name,
            hint="Remove them from the profile's params to continue answers.",
        )
    tokens, stop, criteria = continue_prompt(llama, list(arguments["messages"]), name)
    rest["stop"] = [*(rest.get("stop") or []), *stop]
    if criteria is not None:
        rest["stopping_criteria"] = criteria
    chunks = llama.create_completion(prompt=tokens, stream=True, **rest)
    try:
        for chunk in chunks:
            choice = chunk["choices"][0]
            yield {
                "choices": [
                    {"delta": {"content": choice["text"]}, "finish_reason": choice["finish_reason"]}
                ]
            }
    finally:
        chunks.close()
