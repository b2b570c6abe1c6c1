"""The app's side of a conversation's tools: built from the config and the command line
after the first frame (start-up time unchanged), MCP servers started in the background
(their tools are offered once they are ready), the approval dialog as the way to ask
the user, and the "Tools" view.

A broken tools file or server entry is a notification, not a failed start: the chat
works without tools.  The servers stop with the session (app exit), every process gone.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tokentide.errors import TideError

if TYPE_CHECKING:
    from tokentide.backends.events import ToolCallRequested
    from tokentide.chat.tool_setup import CommandLineTools
    from tokentide.chat.tool_use import Choice
    from tokentide.tools import ToolSource
    from tokentide.tui.chat_screen import ChatScreen

__all__ = ["ChatTools"]


class ChatTools:
    """See the module docstring (one per chat screen)."""

    def __init__(self, screen: ChatScreen, given: CommandLineTools | None = None) -> None:
        self.screen = screen
        self.given = given
        self.started = False
        self._said: set[tuple[str, str]] = set()

    def start(self) -> None:
        """Build the tools and start the servers (after the first frame; once)."""
        if self.started:
            return
        self.started = True
        from tokentide.chat.tool_setup import tool_use_from

        session = self.screen.session
        try:
            tools = tool_use_from(
                self.screen.settings, session.profile, self.given, ask_user=self.ask
            )
        except TideError as error:
            self.screen.notify(str(error), title="Tools", severity="error", timeout=10)
            return
        if tools is None:
            return
        session.tools = tools
        tools.toolbox.changes.subscribe(self._changed)
        tools.toolbox.start()
        if note := session.tools_note:
            self.screen.notify(note, title="Tools", severity="warning", timeout=8)

    def _changed(self) -> None:
        """Say when a source failed (once per failure message)."""
        tools = self.screen.session.tools
        if tools is None:
            return
        for status in tools.toolbox.snapshot():
            if status.state == "failed" and status.message:
                key = (status.name, status.message)
                if key not in self._said:
                    self._said.add(key)
                    self.screen.notify(
                        f"{status.name}: {status.message}", title="Tools", severity="error",
                        timeout=10, markup=False,
                    )  # fmt: skip

    async def ask(self, call: ToolCallRequested, source: ToolSource) -> Choice:
        """The approval dialog; the answer waits for the user's choice."""
        from tokentide.tui.tool_dialog import ToolApprovalDialog

        chosen: asyncio.Future[Choice | None] = asyncio.get_running_loop().create_future()

        def done(choice: Choice | None) -> None:
            if not chosen.done():
                chosen.set_result(choice)

        dialog = ToolApprovalDialog(call, source)
        self.screen.app.push_screen(dialog, callback=done)
        try:
            choice = await chosen
        except asyncio.CancelledError:
            if dialog.is_attached:  # stopped while asking: the dialog goes too
                dialog.dismiss(None)
            raise
        if choice is None:  # the stop key in the dialog: stop the answer
            from tokentide.chat.tool_use import Choice

            live = self.screen.session.live
            if live is not None:
                live.cancel()
            return Choice(run=False)
        return choice

    def show(self) -> None:
        """The "Tools" view (or a note saying how to configure tools)."""
        tools = self.screen.session.tools
        if tools is None:
            self.screen.notify(
                "No tools are configured: give --mcp FILE or --functions FILE.py, or "
                "mcp / [mcp_servers.NAME] / functions in the config (docs/tools.md).",
                title="Tools",
            )
            return
        from tokentide.tui.tools_view import ToolsView

        self.screen.app.push_screen(ToolsView(tools))
