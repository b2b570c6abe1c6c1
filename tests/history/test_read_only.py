"""A history in a data dir tide may not write can still be read (issue 10): `tide history
list`, `show` and `export` open it read-only; `delete` says clearly that it cannot.

Permissions are real: the directory and file are made read-only with chmod, and the
commands run in a subprocess.  As root (CI containers), the subprocess runs without the
capabilities that let root ignore file modes (``setpriv --bounding-set``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.history.conftest import without_root_override
from tokentide.history.store import HistoryStore

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


def _tide(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    prefix = without_root_override()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDE_")}
    env["TIDE_DATA_DIR"] = str(data)
    env["TIDE_CONFIG"] = str(data.parent / "absent.toml")
    return subprocess.run(
        [*prefix, sys.executable, "-m", "tokentide", *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=60,
        check=False,
    )  # fmt: skip


@pytest.fixture
def frozen(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    data = tmp_path / "data"
    with HistoryStore.open(data / "history.sqlite3") as store:
        cid = store.create_conversation(title="Kept safe")
        store.add_message(cid, "user", "hello there")
        answer = store.begin_answer(cid, model="m")
        store.finish_answer(answer, "general kenobi", status="complete")
    # A WAL-mode database in a directory where SQLite cannot create its -shm index.
    for path in data.iterdir():
        path.chmod(0o444)
    data.chmod(0o555)
    yield data, cid
    data.chmod(0o755)


def test_a_read_only_data_dir_can_still_be_listed_shown_and_exported(
    frozen: tuple[Path, str],
) -> None:
    data, cid = frozen
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    listed = _tide("history", "list", data=data)
    assert listed.returncode == 0, listed.stderr
    assert "Kept safe" in listed.stdout
    shown = _tide("history", "show", cid[:8], data=data)
    assert shown.returncode == 0, shown.stderr
    assert "general kenobi" in shown.stdout
    exported = _tide("history", "export", cid[:8], "--format", "json", data=data)
    assert exported.returncode == 0, exported.stderr
    assert "hello there" in exported.stdout
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before  # nothing written


def test_deleting_from_a_read_only_data_dir_fails_clearly(frozen: tuple[Path, str]) -> None:
    data, cid = frozen
    result = _tide("history", "delete", "--yes", cid[:8], data=data)
    assert result.returncode == 4, result.stderr
    assert "Traceback" not in result.stderr
    assert "history" in result.stderr.lower()
    assert _tide("history", "list", data=data).stdout.count("Kept safe") == 1


def test_a_store_opened_read_only_refuses_writes(tmp_path: Path) -> None:
    from tokentide.errors import HistoryError

    path = tmp_path / "h.sqlite3"
    HistoryStore.open(path).close()
    with HistoryStore.open(path, read_only=True) as store:
        assert store.list_conversations() == []
        with pytest.raises(HistoryError, match="read-only"):
            store.create_conversation(title="x")
