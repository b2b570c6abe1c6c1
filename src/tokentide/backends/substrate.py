"""Substrate-style graph streams (``api = "substrate"``), e.g.
``url = "https://api.substrate.run"``.

``POST {url}/compose`` with ``{"dag": <graph>}``, ``Accept: text/event-stream``,
``X-Substrate-Streaming: 1`` and a Bearer key.  ``create`` is the same POST with
``Accept: application/json``.

Options:

* ``graph``: the DAG to run, as a TOML table or a JSON string.  Every string in it that
  contains ``{prompt}`` has that replaced by the prompt.  Without ``graph`` a one-node
  graph is built (the shape is **illustrative**, modelled on the SDK's serialisation)::

      {"nodes": [{"id": "ComputeText_1", "node": "ComputeText",
                  "args": {"prompt": "<prompt>", "max_tokens": ..., "temperature": ...},
                  "_should_output_globally": true}],
       "edges": [], "initial_args": {}}

* ``node``: the node whose text is the answer.  Default: the built node when ``graph``
  is absent, else every node's text, each :class:`TextDelta` carrying its ``node_id``.

Messages (``protocols.md`` §6) are discriminated by ``object``: ``node.delta`` (partial
output: ``data.text``, or ``data.choices`` as an ``array.item`` whose ``item.text`` is
the chunk), ``node.result`` (the node's complete output: whatever was not streamed yet
is emitted), ``node.error`` (``data.type``/``data.message``: raised as a ServerError
naming the node; whether the server continues other nodes is unverified, so the answer
stops there and the text so far stays), and ``graph.result`` (the terminator; its
per-node outputs fill in any node that sent nothing before).  The node key is accepted
as ``node_id`` and ``nodeId``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tokentide.backends.base import GenerationRequest, Reply, prompt_text, sampling
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.backends.http import HTTPBackend, HTTPCall, StreamParser, event_object
from tokentide.backends.media import backend_label, refuse_images
from tokentide.backends.sse import SSEEvent
from tokentide.config.model import Profile
from tokentide.errors import ConfigError, IncompleteStream, ServerError, excerpt

__all__ = ["DEFAULT_NODE", "SubstrateBackend", "from_profile"]

DEFAULT_NODE = "ComputeText_1"


def _node_id(obj: Mapping[str, Any]) -> str | None:
    value = obj.get("node_id", obj.get("nodeId"))
    return value if isinstance(value, str) else None


def delta_text(data: Any) -> str:
    """The text chunk of a ``node.delta``'s data."""
    if not isinstance(data, dict):
        return ""
    text = data.get("text")
    if isinstance(text, str):
        return text
    choices = data.get("choices")
    items = choices if isinstance(choices, list) else [choices]
    parts = []
    for item in items:
        if isinstance(item, dict):
            inner = item.get("item", item)
            if (
                isinstance(inner, dict)
                and isinstance(inner.get("text"), str)
                and item.get("index", 0) == 0
            ):
                parts.append(inner["text"])
    return "".join(parts)


def result_text(data: Any) -> str | None:
    """The text of a node's complete output (``{"text"}`` or ``{"choices":[{"text"}]}``)."""
    if not isinstance(data, dict):
        return None
    text = data.get("text")
    if isinstance(text, str):
        return text
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0].get("text")
        return first if isinstance(first, str) else None
    return None


def _substitute(value: Any, prompt: str) -> Any:
    if isinstance(value, str):
        return value.replace("{prompt}", prompt)
    if isinstance(value, list):
        return [_substitute(v, prompt) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, prompt) for k, v in value.items()}
    return value


class SubstrateParser(StreamParser):
    def __init__(self, server: str, node: str | None) -> None:
        self.server = server
        self.node = node
        self.streamed: dict[str, str] = {}
        self.done = False

    def _wanted(self, node_id: str | None) -> bool:
        return self.node is None or node_id == self.node

    def _remainder(self, node_id: str, full: str | None) -> list[Event]:
        if full is None:
            return []
        so_far = self.streamed.get(node_id, "")
        if not full.startswith(so_far):
            return []  # cannot reconcile: keep what was shown
        self.streamed[node_id] = full
        rest = full[len(so_far) :]
        return [TextDelta(rest, node_id=node_id)] if rest else []

    def feed(self, item: SSEEvent) -> list[Event]:
        obj = event_object(item.data, self.server)
        kind = obj.get("object")
        node_id = _node_id(obj)
        data = obj.get("data")
        if kind == "node.delta":
            if node_id is None or not self._wanted(node_id):
                return []
            text = delta_text(data)
            if not text:
                return []
            self.streamed[node_id] = self.streamed.get(node_id, "") + text
            return [TextDelta(text, node_id=node_id)]
        if kind == "node.result":
            if node_id is None or not self._wanted(node_id):
                return []
            return self._remainder(node_id, result_text(data))
        if kind == "node.error":
            error = data if isinstance(data, dict) else {}
            etype = error.get("type")
            etype = etype if isinstance(etype, str) else None
            message = error.get("message") or "no message"
            raise ServerError(
                f"{self.server}: node {node_id or '(unnamed)'} failed"
                f"{f' ({etype})' if etype else ''}: {excerpt(str(message))}",
                kind=etype,
                server=self.server,
            )
        if kind == "graph.result":
            events: list[Event] = []
            if isinstance(data, dict):
                for nid, output in data.items():
                    if self._wanted(nid) and nid not in self.streamed:
                        events.extend(self._remainder(nid, result_text(output)))
            self.done = True
            events.append(Finish())
            return events
        if obj.get("error"):
            error = obj["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise ServerError(
                f"{self.server} reported an error: {excerpt(str(message))}", server=self.server
            )
        return []

    def end(self) -> list[Event]:
        raise IncompleteStream(
            f"The stream from {self.server} ended without graph.result: the answer may be "
            "cut short.",
            server=self.server,
        )


class SubstrateBackend(HTTPBackend):
    api = "substrate"
    continues_answers = False
    """A graph node (``ComputeText``) takes the prompt as an instruction, not as text to
    go on from, and a custom graph does what it does: a partial answer is not continued."""

    def __init__(self, profile: Profile, env: Mapping[str, str]) -> None:
        super().__init__(profile, env)
        graph = profile.options.get("graph")
        if isinstance(graph, str):
            try:
                graph = json.loads(graph)
            except ValueError as error:
                raise ConfigError(
                    f"Profile {profile.name!r}: graph is not valid JSON ({error})."
                ) from None
        if graph is not None and not isinstance(graph, Mapping):
            raise ConfigError(f"Profile {profile.name!r}: graph must be a table or a JSON object.")
        self.graph: Mapping[str, Any] | None = graph
        node = profile.options.get("node")
        if node is not None and not isinstance(node, str):
            raise ConfigError(f"Profile {profile.name!r}: node must be a node id (a string).")
        self.node: str | None = node if node is not None else (None if graph else DEFAULT_NODE)

    def _dag(self, request: GenerationRequest) -> Any:
        refuse_images(request, backend_label(self.profile, self.api), self.name)
        prompt = prompt_text(request)
        if self.graph is not None:
            return _substitute(dict(self.graph), prompt)
        profile = self.profile
        chosen = sampling(request, profile)
        args: dict[str, Any] = {"prompt": prompt}
        args.update({key: chosen[key] for key in ("max_tokens", "temperature") if key in chosen})
        if model := self.model_or(request):
            args["model"] = model
        args.update(profile.params)
        args.update(request.extra)
        return {
            "nodes": [
                {
                    "id": DEFAULT_NODE,
                    "node": "ComputeText",
                    "args": args,
                    "_should_output_globally": True,
                }
            ],
            "edges": [],
            "initial_args": {},
        }

    def stream_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall(
            "/compose",
            {"dag": self._dag(request)},
            {
                "Accept": "text/event-stream",
                "X-Substrate-Streaming": "1",
                "X-Substrate-Backend": "v1",
            },
        )

    def create_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall(
            "/compose",
            {"dag": self._dag(request)},
            {"Accept": "application/json", "X-Substrate-Backend": "v1"},
        )

    def new_parser(self, request: GenerationRequest) -> StreamParser:
        return SubstrateParser(self.base_url, self.node)

    def parse_reply(self, body: Any, request: GenerationRequest) -> Reply:
        outputs = body.get("data", body)
        if not isinstance(outputs, dict):
            raise TypeError("no node outputs")
        if self.node is not None:
            text = result_text(outputs[self.node])
            if text is None:
                raise KeyError(self.node)
            return Reply(text=text)
        texts = [t for output in outputs.values() if (t := result_text(output)) is not None]
        return Reply(text="".join(texts))


def from_profile(profile: Profile, env: Mapping[str, str]) -> SubstrateBackend:
    return SubstrateBackend(profile, env)
