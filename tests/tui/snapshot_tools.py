"""The functions file of the tool snapshots (tests/tui/test_tools_snapshots.py): a
committed file, named by a relative path, so the dialog shows the same path on every
machine."""


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b
