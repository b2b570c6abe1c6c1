"""Write a saved conversation for ``bench_tmux_e2e``'s "open a long conversation" run.

    python benchmarks/bench_tmux_db_helpers.py MESSAGES.json

Reads a JSON list of ``[question, answer]`` pairs and stores them, through
:class:`tokentide.history.store.HistoryStore`, as one conversation in the history of
``$TIDE_DATA_DIR``; prints the conversation's id.  A separate process so that the store
comes from the tree under test (``PYTHONPATH=<tree>/src``) and its schema is the one
that tree's app reads.  Imports only the standard library and the store.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tokentide.history.store import HistoryStore


def main() -> None:
    pairs = json.loads(Path(sys.argv[1]).read_text())
    with HistoryStore.open() as store:
        conversation = store.create_conversation(title="benchmark: a long conversation")
        for question, answer in pairs:
            store.add_message(conversation, "user", question)
            message = store.begin_answer(conversation, model="bench")
            store.finish_answer(message, answer, status="complete", finish_reason="stop")
    print(conversation)


if __name__ == "__main__":
    main()
