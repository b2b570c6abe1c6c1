"""The chat session: one conversation as a tree, and everything done to it, with no UI.

The chat screen renders a :class:`ChatSession` and sends it commands; tests drive it
directly.  It owns the conversation's tree (:mod:`.tree`), its own settings, the
backend's lifecycle (built lazily, replaced when the profile or model changes), the
requests (always built from the branch on screen), and the recording to history:

* :meth:`ChatSession.send` adds a prompt after the active leaf; :meth:`~ChatSession.edit`
  adds an edited prompt beside the one it replaces (a sibling: nothing is deleted);
* :meth:`~ChatSession.answer`, :meth:`~ChatSession.regenerate` (a sibling answer) and
  :meth:`~ChatSession.continue_answer` (a sibling holding the stopped answer and what
  follows it) start a :class:`~tokentide.chat.live.LiveAnswer`;
* :meth:`~ChatSession.switch` moves between siblings, :meth:`~ChatSession.delete_branch`
  removes a message and all below it, :meth:`~ChatSession.fork` copies a branch into a
  new conversation.

History failures never stop the chat: they go to ``report`` (the screen shows them) and
the conversation carries on in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from tokentide.backends.base import GenerationRequest, Message, calls_tools, request_for
from tokentide.chat.live import LiveAnswer
from tokentide.chat.parts import TextPart, plain_messages
from tokentide.chat.settings import apply_settings, request_sampling
from tokentide.chat.tree import ConversationTree, Turn, carried_messages, is_local
from tokentide.errors import TideError, UsageError
from tokentide.generation import Generation, RetryPolicy
from tokentide.meter import AnswerUse, Meter

if TYPE_CHECKING:
    from tokentide.backends.base import Backend
    from tokentide.chat.tool_use import ToolUse
    from tokentide.config.model import Profile, Settings
    from tokentide.history.settings import ConversationSettings
    from tokentide.history.store import HistoryStore

__all__ = ["ChatSession"]


def _ignore(_error: TideError) -> None:
    pass


class ChatSession:
    """See the module docstring.  ``backend``: use this one instead of building it from
    the profile (tests, an embedded model already loaded)."""

    def __init__(
        self,
        config: Settings,
        profile: Profile,
        store: HistoryStore | None,
        *,
        backend: Backend | None = None,
        clock: Callable[[], float] = time.perf_counter,
        report: Callable[[TideError], None] = _ignore,
    ) -> None:
        self.config = config
        self.base = profile
        """The profile the conversation starts from (before its own settings)."""
        self.profile = profile
        """The profile answers come from now (the base with the conversation's settings)."""
        self.store = store
        self.backend = backend
        self.clock = clock
        self.report = report
        self.conversation_id: str | None = None
        self.tree = ConversationTree()
        self.own: ConversationSettings | None = None
        self.meter = Meter()
        self.live: LiveAnswer | None = None
        self.tools: ToolUse | None = None
        """The conversation's tools (set by the view that has them configured); offered
        to backends that can call tools (:func:`tools_note` says when one cannot)."""
        self._before: int | None = None
        """The active leaf before the answer being generated started."""

    # -- reading ---------------------------------------------------------------------------

    @property
    def branch(self) -> list[Turn]:
        """The turns on screen, root first."""
        return self.tree.branch()

    def request(self, turns: list[Turn] | None = None) -> GenerationRequest:
        """The request for the next answer after ``turns`` (default: the branch)."""
        messages: list[Message] = []
        system = self.system_prompt
        if system:
            messages.append(Message("system", system))
        messages.extend(carried_messages(self.branch if turns is None else turns))
        return request_for(self.profile, messages, request_sampling(self.own))

    @property
    def system_prompt(self) -> str | None:
        if self.own is not None and self.own.system_prompt is not None:
            return self.own.system_prompt or None
        return self.profile.system

    @property
    def tools_note(self) -> str | None:
        """Why the tools configured are not offered to this profile, if they are not."""
        if self.tools is None or self.backend is None or calls_tools(self.backend):
            return None
        return (
            f"{self.profile.name} ({self.profile.api}) cannot call tools, so they are not "
            "offered to it; use a profile whose server can (an OpenAI-compatible chat "
            "server, Anthropic or Ollama)."
        )

    def recorded_model(self) -> str | None:
        """The model an answer is saved with before the server names it."""
        from tokentide.chat.labels import recorded_model

        return recorded_model(self.profile)

    # -- the backend -----------------------------------------------------------------------

    def ensure_backend(self) -> Backend:
        if self.backend is None:
            from tokentide.backends.registry import create_backend

            self.backend = create_backend(self.profile)
        return self.backend

    def use_profile(self, profile: Profile) -> Backend | None:
        """Answer with ``profile`` from now on; return the old backend, for the caller
        to close once the current answer has ended.  TideError if it cannot be built."""
        from tokentide.backends.registry import create_backend

        backend = create_backend(profile)
        old, self.backend, self.profile = self.backend, backend, profile
        return old

    async def close(self) -> None:
        """Stop any answer, wait for its stream to close, save where it ended (if its
        view did not get to), then close the backend and the tools (every MCP server
        process is gone when this returns)."""
        live = self.live
        if live is not None:
            live.cancel()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(live.generation.wait()), 2.0)
            if self.live is live:
                self.finish(live)
        backend, self.backend = self.backend, None
        if backend is not None:
            await backend.aclose()
        tools, self.tools = self.tools, None
        if tools is not None:
            await tools.toolbox.aclose()

    # -- conversations ---------------------------------------------------------------------

    def new_conversation(self, own: ConversationSettings | None = None) -> Profile | None:
        """An empty conversation (nothing is stored until the first prompt), with
        settings ``own`` (a template's); return the profile it answers with when that
        differs from the current one (the caller switches to it)."""
        self.conversation_id = None
        self.tree = ConversationTree()
        self.own = None if own is None or own.is_empty else own
        self.meter.reset()
        self._forget_approvals()
        return self._wanted()

    def _wanted(self) -> Profile | None:
        """The profile the conversation's settings ask for, if it is not the current."""
        wanted = apply_settings(self.config, self.base, self.own)
        return None if wanted == self.profile else wanted

    def open(self, conversation_id: str) -> Profile | None:
        """Load a saved conversation (every branch).  Return the profile its settings
        ask for when that differs from the current one (the caller switches to it)."""
        if self.store is None:
            raise UsageError("There is no history to open conversations from.")
        conversation = self.store.load(conversation_id, branch=False)
        everything = self.store.messages(conversation_id)
        self.conversation_id = conversation.id
        self.tree = ConversationTree(
            (Turn.saved(m) for m in everything), active_leaf=conversation.active_leaf
        )
        self.own = conversation.settings
        self.recount()
        self._forget_approvals()
        return self._wanted()

    def _forget_approvals(self) -> None:
        """A tool allowed "always" is allowed in its conversation only."""
        if self.tools is not None:
            self.tools.forget_choices()

    def recount(self) -> None:
        """The meter from the answers on the branch on screen."""
        self.meter.reset()
        for turn in self.branch:
            if turn.role == "assistant":
                self.meter.add(AnswerUse.from_saved(turn.stats))

    def set_settings(self, own: ConversationSettings | None) -> Profile | None:
        """Give the conversation its own settings (saved); return the profile they ask
        for when it differs from the current one."""
        self.own = None if own is None or own.is_empty else own
        if self.store is not None and self.conversation_id is not None:
            try:
                self.store.set_settings(self.conversation_id, self.own)
            except TideError as error:
                self.report(error)
        return self._wanted()

    # -- prompts ---------------------------------------------------------------------------

    def submit(self, text: str, *, editing: int | None = None) -> Callable[[], LiveAnswer]:
        """Take a prompt the user submitted and return the command that starts its
        answer: ``editing`` (a prompt's id) makes ``text`` a new version of that prompt;
        the prompt that failed (or got no answer at all) sent again is answered again
        rather than repeated; anything else is a new prompt after the active leaf."""
        if editing is not None and editing in self.tree:
            self.edit(editing, text)
            return self.answer
        branch = self.branch
        last = branch[-1] if branch else None
        if last is not None and last.failed_empty and len(branch) > 1:
            if branch[-2].content == text:
                return self.retry
        elif last is not None and last.role == "user" and last.content == text:
            return self.answer
        self.send(text)
        return self.answer

    def send(self, text: str) -> Turn:
        """Add a prompt after the active leaf (stored before any request is sent)."""
        return self._prompt(text, self.tree.leaf)

    def edit(self, turn_id: int, text: str) -> Turn:
        """Add ``text`` as a new version of prompt ``turn_id`` (its sibling)."""
        turn = self.tree[turn_id]
        if turn.role != "user":
            raise UsageError("Only your prompts can be edited.")
        return self._prompt(text, turn.parent_id)

    def _prompt(self, text: str, parent: int | None) -> Turn:
        turn_id = None
        store = self.store
        if store is not None and not is_local(parent):  # (under an unsaved turn: unsaved)
            try:
                if self.conversation_id is None:
                    self.conversation_id = store.create_conversation(
                        title=text, profile=self.base.name
                    )
                    if self.own is not None:
                        store.set_settings(self.conversation_id, self.own)
                turn_id = store.add_message(self.conversation_id, "user", text, parent_id=parent)
            except TideError as error:
                self.report(error)
        if turn_id is None:
            turn_id = self.tree.local_id()
        return self.tree.add(Turn(turn_id, parent, "user", (TextPart(text),)))

    # -- answers ---------------------------------------------------------------------------

    def answer(self) -> LiveAnswer:
        """Start the answer to the branch on screen (which ends with a prompt)."""
        return self._start(self.tree.leaf, self.branch)

    def regenerate(self, answer_id: int) -> LiveAnswer:
        """A new answer beside ``answer_id`` (the old one stays, as a sibling)."""
        turn = self.tree[answer_id]
        if turn.role != "assistant":
            raise UsageError("Only an answer can be regenerated.")
        return self._start(turn.parent_id, self.tree.branch(turn.parent_id))

    def retry(self) -> LiveAnswer:
        """Answer the last prompt again after a failure (a failed answer with nothing in
        it is deleted first: it was only an error note)."""
        leaf = self.tree.leaf
        if leaf is not None and self.tree[leaf].failed_empty:
            self._forget(leaf)
        return self.answer()

    def continue_answer(self, answer_id: int) -> LiveAnswer:
        """The model goes on after answer ``answer_id`` (stopped, or cut at its length
        limit): a new version of it holding its text and what follows."""
        from tokentide.backends.base import can_continue

        turn = self.tree[answer_id]
        if turn.role != "assistant" or not turn.content:
            raise UsageError("Only an answer with text in it can be continued.")
        backend = self.ensure_backend()
        if not can_continue(backend):
            raise UsageError(
                f"{self.profile.name} ({self.profile.api}) cannot continue an answer.",
                hint="Regenerate it instead, or ask with a higher max tokens (settings).",
            )
        return self._start(turn.parent_id, self.tree.branch(answer_id), continued=turn)

    def _start(
        self, parent: int | None, turns: list[Turn], *, continued: Turn | None = None
    ) -> LiveAnswer:
        backend = self.ensure_backend()
        profile = self.profile
        request = self.request(turns)
        tools = self.tools if self.tools is not None and calls_tools(backend) else None
        if tools is not None:
            request = replace(request, tools=tools.specs())
        else:  # earlier calls and results as text: no tool messages without tools
            request = replace(request, messages=plain_messages(request.messages))

        def generation_for(request: GenerationRequest) -> Generation:
            return Generation(
                backend,
                request,
                mode="stream",
                deadlines=profile.deadlines,
                retry=RetryPolicy(max_retries=profile.max_retries),
                clock=self.clock,
            )

        generation = generation_for(request)
        model = self.recorded_model()
        recorder = None
        store, conversation_id = self.store, self.conversation_id
        if store is not None and conversation_id is not None and not is_local(parent):
            try:
                recorder = store.record_answer(
                    conversation_id, profile=profile.name, model=model, parent_id=parent
                )
            except TideError as error:
                self.report(error)
        turn_id = self.tree.local_id() if recorder is None else recorder.message_id
        self._before = self.tree.leaf
        placeholder = self.tree.add(
            Turn(turn_id, parent, "assistant", (), "streaming", profile.name, model)
        )
        live = LiveAnswer(
            generation, placeholder, profile, recorder=recorder, store=self.store,
            report=self.report, continued=continued, tools=tools, next_round=generation_for,
        )  # fmt: skip
        self.live = live
        generation.start()
        return live

    def finish(self, live: LiveAnswer) -> Turn | None:
        """Save ``live``'s end and put it in the tree (None: nothing was kept)."""
        turn = live.finish()
        if self.live is live:
            self.live = None
        if turn is None:
            # Nothing kept: back to the branch shown before (a regenerate stopped at
            # once shows the old answer again, and the next prompt follows it).
            self.tree.remove(live.id)
            before = self._before
            if before is not None and before in self.tree and before != self.tree.leaf:
                self._activate(before)
        else:
            self.tree.replace(turn)
            self.meter.add(live.use)
        return turn

    # -- branches --------------------------------------------------------------------------

    def siblings(self, turn_id: int) -> tuple[int, int]:
        """``(position, count)`` of a turn among its versions."""
        return self.tree.siblings(turn_id)

    def switch(self, turn_id: int, step: int) -> bool:
        """Show the version ``step`` places along from ``turn_id`` (and the branch below
        it); False when there is none that way."""
        other = self.tree.sibling(turn_id, step)
        if other is None:
            return False
        self._activate(self.tree.leaf_below(other))
        return True

    def _activate(self, leaf: int | None) -> None:
        self.tree.activate(leaf)
        self.recount()
        store, conversation_id = self.store, self.conversation_id
        if leaf is not None and not is_local(leaf) and store is not None and conversation_id:
            try:
                store.set_active_leaf(conversation_id, leaf)
            except TideError as error:
                self.report(error)

    def delete_branch(self, turn_id: int) -> None:
        """Delete a message and everything below it; the branch on screen moves to a
        remaining version of it, else to its parent."""
        parent = self.tree[turn_id].parent_id
        self._forget(turn_id)
        others = self.tree.children(parent)
        self._activate(self.tree.leaf_below(others[-1].id) if others else parent)

    def _forget(self, turn_id: int) -> None:
        self.tree.remove(turn_id)
        if self.store is not None and self.conversation_id is not None and not is_local(turn_id):
            try:
                self.store.truncate_after(self.conversation_id, turn_id, inclusive=True)
            except TideError as error:
                self.report(error)

    def fork(self, turn_id: int) -> str:
        """A new saved conversation holding the branch down to ``turn_id``; return its
        id (this session stays on the current one)."""
        if self.store is None or self.conversation_id is None or is_local(turn_id):
            raise UsageError("Only a saved conversation can be forked.")
        return self.store.fork(self.conversation_id, turn_id)

    def checkpoint(self) -> None:
        """Bound what a crash can lose in time too, while tokens pause."""
        live = self.live
        if live is not None and live.recorder is not None and not live.recorder.finished:
            live.recorder.poll()
