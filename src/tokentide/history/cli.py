"""``tide history``: list, show, export and delete saved conversations.

Every command takes a conversation id or any unique prefix of one (:func:`resolve_id`,
which ``tide chat --conversation`` uses too); an ambiguous prefix is a usage error
(exit 2) that lists the candidates.  Text printed to the
terminal is sanitised; exports written with ``--output`` (or to a pipe) keep the
original text.  Errors are one line on stderr and the error's exit code, never a
traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tokentide.errors import HistoryError, TideError, UsageError
from tokentide.history.lookup import _no_conversation, resolve_conversation, resolve_id
from tokentide.history.lookup import open_existing as _open_existing

if TYPE_CHECKING:
    from tokentide.history.store import Conversation

__all__ = ["history_app", "resolve_conversation", "resolve_id"]

history_app = typer.Typer(
    name="history",
    help="List, show, export and delete saved conversations.",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


class Format(StrEnum):
    md = "md"
    json = "json"


IdArg = Annotated[str, typer.Argument(help="Conversation id (or a unique prefix of one).")]


def _fail(error: TideError) -> typer.Exit:
    from tokentide.sanitize import sanitize

    typer.echo(f"tide: {sanitize(str(error))}", err=True)
    return typer.Exit(code=error.exit_code)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except TideError as error:
        raise _fail(error) from None
    except OSError as error:
        raise _fail(HistoryError(f"{error.strerror or error}: {error.filename or ''}")) from None


@history_app.command("list")
def list_cmd(
    search: Annotated[
        str | None,
        typer.Option("--search", "-s", help="Only conversations whose title or text contain this."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one array).")] = False,
) -> None:
    """Saved conversations, most recently active first."""
    from tokentide.sanitize import sanitize_title

    with _errors():
        store = _open_existing()
        if store is None:
            conversations = []
        else:
            try:
                conversations = store.list_conversations(search=search, limit=limit)
            finally:
                store.close()
    if as_json:
        rows = [
            {
                "id": c.id,
                "title": c.title,
                "profile": c.profile,
                "created_at": c.created_at.isoformat(),
                "updated_at": c.updated_at.isoformat(),
                "messages": c.message_count,
            }
            for c in conversations
        ]
        typer.echo(json.dumps(rows, ensure_ascii=sys.stdout.isatty(), indent=2))
        return
    for c in conversations:
        title = sanitize_title(c.title or "Untitled conversation", limit=70)
        typer.echo(f"{c.id}  {c.updated_at:%Y-%m-%d %H:%M}  {c.message_count:>4}  {title}")


def _load(conversation_id: str) -> Conversation:
    store = _open_existing()
    if store is None:
        raise _no_conversation(conversation_id)
    try:
        return store.load(resolve_id(store, conversation_id))
    finally:
        store.close()


@history_app.command("show")
def show_cmd(conversation_id: IdArg) -> None:
    """Print a conversation (sanitised for the terminal)."""
    from tokentide.history.export import to_text

    with _errors():
        conversation = _load(conversation_id)
    typer.echo(to_text(conversation), nl=False)


@history_app.command("export")
def export_cmd(
    conversation_id: IdArg,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="md or json.")] = Format.md,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file (atomically) instead of stdout."),
    ] = None,
) -> None:
    """Export a conversation as Markdown or JSON (JSON keeps the exact original text)."""
    from tokentide.history.export import atomic_write, to_json, to_markdown
    from tokentide.sanitize import sanitize

    with _errors():
        conversation = _load(conversation_id)
        if output is not None:
            text = to_json(conversation) if fmt is Format.json else to_markdown(conversation)
            atomic_write(output, text)
            return
    tty = sys.stdout.isatty()
    # color=True: click would otherwise strip CSI sequences from piped output, which
    # must stay exact (on a terminal the text is already safe).
    if fmt is Format.json:
        # On a terminal every non-ASCII character is escaped: still exact, never an escape.
        typer.echo(to_json(conversation, ascii_only=tty), nl=False, color=True)
    else:
        text = to_markdown(conversation)
        typer.echo(sanitize(text) if tty else text, nl=False, color=True)


@history_app.command("delete")
def delete_cmd(
    conversation_id: IdArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a conversation (asks first on a terminal)."""
    from tokentide.sanitize import sanitize_title

    with _errors():
        store = _open_existing(write=True)
        if store is None:
            raise _no_conversation(conversation_id)
        try:
            full_id = resolve_id(store, conversation_id)
            if not yes:
                if not sys.stdin.isatty():
                    raise UsageError(
                        "Refusing to delete without confirmation: stdin is not a terminal.",
                        hint="Add --yes to delete anyway.",
                    )
                title = store.load(full_id).title or "Untitled conversation"
                if not typer.confirm(
                    f"Delete “{sanitize_title(title, limit=60)}” ({full_id})?", default=False
                ):
                    typer.echo("Nothing deleted.", err=True)
                    raise typer.Exit(code=1)
            store.delete(full_id)
        finally:
            store.close()
    typer.echo(f"Deleted {full_id}.", err=True)
