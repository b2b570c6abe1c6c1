"""``tide history``: list, show, export, import and delete saved conversations.

Every command takes a conversation id or any unique prefix of one (:func:`resolve_id`,
which ``tide chat --conversation`` uses too); an ambiguous prefix is a usage error
(exit 2) that lists the candidates.  Text printed to the
terminal is sanitised; exports written with ``--output`` (or to a pipe) keep the
original text.  Errors are one line on stderr and the error's exit code, never a
traceback.  ``import`` reads what ``export -f json`` writes (any version): the whole
file is checked before anything is written (:mod:`.importing`), then written in one
transaction (:meth:`~tokentide.history.branches.BranchWrites.import_conversation`).
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

from tokentide.cli.context import fail
from tokentide.errors import HistoryError, TideError, UsageError
from tokentide.history.lookup import open_existing as _open_existing
from tokentide.history.lookup import resolve_conversation, resolve_id
from tokentide.history.tree import no_conversation

if TYPE_CHECKING:
    from tokentide.history.store import Conversation, StoredMessage

__all__ = ["history_app", "resolve_conversation", "resolve_id"]

history_app = typer.Typer(
    name="history",
    help="List, show, export, import and delete saved conversations.",
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


class Format(StrEnum):
    md = "md"
    json = "json"


IdArg = Annotated[str, typer.Argument(help="Conversation id (or a unique prefix of one).")]


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except TideError as error:
        raise fail(error) from None
    except OSError as error:
        raise fail(HistoryError(f"{error.strerror or error}: {error.filename or ''}")) from None


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


def _load(
    conversation_id: str, *, tree: bool = False
) -> tuple[Conversation, tuple[StoredMessage, ...] | None]:
    """The conversation (its active branch) and, with ``tree``, every message of it."""
    store = _open_existing()
    if store is None:
        raise no_conversation(conversation_id)
    try:
        full_id = resolve_id(store, conversation_id)
        conversation = store.load(full_id)
        return conversation, store.messages(full_id) if tree else None
    finally:
        store.close()


@history_app.command("show")
def show_cmd(conversation_id: IdArg) -> None:
    """Print a conversation (sanitised for the terminal)."""
    from tokentide.history.export import to_text

    with _errors():
        conversation, _ = _load(conversation_id)
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
    """Export a conversation: JSON holds every branch and keeps the exact original text;
    Markdown is the branch on screen."""
    from tokentide.history.export import atomic_write, to_json, to_markdown
    from tokentide.sanitize import sanitize

    with _errors():
        conversation, tree = _load(conversation_id, tree=fmt is Format.json)
        if output is not None:
            text = (
                to_json(conversation, messages=tree)
                if fmt is Format.json
                else to_markdown(conversation)
            )
            atomic_write(output, text)
            return
    tty = sys.stdout.isatty()
    # color=True: click would otherwise strip CSI sequences from piped output, which
    # must stay exact (on a terminal the text is already safe).
    if fmt is Format.json:
        # On a terminal every non-ASCII character is escaped: still exact, never an escape.
        text = to_json(conversation, messages=tree, ascii_only=tty)
        typer.echo(text, nl=False, color=True)
    else:
        text = to_markdown(conversation)
        typer.echo(sanitize(text) if tty else text, nl=False, color=True)


def _read_export(file: str) -> tuple[str, str]:
    """``(text, name for messages)`` of ``file`` (``-``: stdin), decoded as UTF-8."""
    if file == "-":
        name, data = "stdin", sys.stdin.buffer.read()
    else:
        path = Path(file).expanduser()
        try:
            name, data = str(path), path.read_bytes()
        except OSError as error:
            raise UsageError(
                f"Cannot read {path}: {error.strerror or error}.",
                hint="Give a file written by `tide history export ID -f json`, or - for stdin.",
            ) from None
    try:
        return data.decode("utf-8-sig"), name
    except UnicodeDecodeError as error:
        bad = HistoryError(
            f"{name} is not UTF-8 text (byte {error.start}): not a tokentide export.",
            hint="`tide history export ID -f json` writes the files `import` reads.",
        )
        bad.exit_code = 2
        raise bad from None


@history_app.command("import")
def import_cmd(
    file: Annotated[
        str, typer.Argument(help="A JSON export (tide history export ID -f json); - reads stdin.")
    ],
) -> None:
    """Import a conversation from a JSON export, every branch of it.  Prints its id (a
    new one when the history already holds the file's); a bad file imports nothing."""
    from tokentide.history.importing import parse_export
    from tokentide.history.store import HistoryStore
    from tokentide.sanitize import sanitize_title

    with _errors():
        text, name = _read_export(file)
        parsed = parse_export(text, source=name)  # the whole file, before any write
        with HistoryStore.open() as store:
            new_id = store.import_conversation(parsed)
    title = sanitize_title(parsed.title or "Untitled conversation", limit=60)
    typer.echo(new_id)
    typer.echo(f"Imported “{title}” ({len(parsed.messages)} messages) as {new_id}.", err=True)


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
            raise no_conversation(conversation_id)
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
