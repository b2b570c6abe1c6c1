"""The folder walk's ``.gitignore`` reading, checked against git itself: the same
tree, the same ``.gitignore`` files, and the files ``git ls-files --others
--exclude-standard`` lists are the files a folder attachment takes (hidden ones aside,
which the walk always skips)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tokentide.attach import read_attachments
from tokentide.attach.gitignore import Rules, parse

FILES = [
    "a.txt", "b.log", "keep.log", "docs/guide.md", "docs/draft.md", "docs/api/x.md",
    "build/out.txt", "src/build/gen.txt", "src/main.py", "src/main.pyc", "src/deep/x/y.tmp",
    "node_modules/m/index.js", "logs/debug/today.txt", "logs/keep.txt", "root.cfg",
    "sub/root.cfg", "notes/2024/jan.md", "notes/2025/feb.md", "space .txt", "hash#.txt",
    "#literal", "!bang", "[x].md", "x.md", "data/a1.csv", "data/b2.csv", "data/ab.csv",
    "lib/vendor/pkg/file.c", "lib/own.c", "deep/a/b/c/secret.key", "deep/pub.key",
    "src/inner/.gitignore-target.txt", "src/inner/gen.out", "src/inner/keep.out",
]  # fmt: skip

ROOT_IGNORE = """
# comments and blank lines are nothing

*.log
!keep.log
build/
/root.cfg
docs/*.md
!docs/guide.md
node_modules
logs/**/today.txt
notes/**/feb.md
space\\ .txt
\\#literal
\\!bang
\\[x\\].md
data/[a-b][0-9].csv
lib/**/pkg
deep/**/*.key
*.pyc
src/deep/
trailing.txt   
"""  # noqa: W291 (a trailing space, as files have them)

INNER_IGNORE = "*.out\n!keep.out\n/gen.txt\n"


def git(root: Path, *args: str) -> str:
    environ = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", "-c", "core.excludesFile=" + os.devnull, *args], cwd=root, env=environ,
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_walk_takes_what_git_does_not_ignore(tmp_path: Path) -> None:
    for name in FILES:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    (tmp_path / ".gitignore").write_text(ROOT_IGNORE)
    (tmp_path / "src" / "inner" / ".gitignore").write_text(INNER_IGNORE)
    (tmp_path / "src" / "inner" / "gen.txt").write_text("anchored to src/inner")
    git(tmp_path, "init", "-q")
    listed = git(tmp_path, "ls-files", "--others", "--exclude-standard", "-z").split("\0")
    expected = sorted(p for p in listed if p and not any(s.startswith(".") for s in p.split("/")))
    taken = read_attachments(["."], cwd=tmp_path).texts
    assert sorted(t.label for t in taken) == expected
    assert "keep.log" in expected and "src/inner/keep.out" in expected  # negations held
    assert "src/build/gen.txt" not in expected  # an unanchored dir/ at any depth


def test_rules_by_themselves() -> None:
    rules = Rules().below("", "*.tmp\n/top\nsub/\n!important.tmp\n")
    assert rules.excludes("x/y.tmp", is_dir=False)
    assert not rules.excludes("x/important.tmp", is_dir=False)
    assert rules.excludes("top", is_dir=False) and not rules.excludes("a/top", is_dir=False)
    assert rules.excludes("a/sub", is_dir=True) and not rules.excludes("a/sub", is_dir=False)
    inner = rules.below("a", "!*.tmp\n/only\n")
    assert not inner.excludes("a/b.tmp", is_dir=False) and inner.excludes("b.tmp", is_dir=False)
    assert inner.excludes("a/only", is_dir=False) and not inner.excludes("a/x/only", is_dir=False)


def test_what_is_no_rule() -> None:
    assert parse("\n# c\n   \n/\n!\n[z-a]\n") == ()
    [rule] = parse("[]a]\n")
    assert rule.regex.match("]") and rule.regex.match("a") and not rule.regex.match("b")
    [rule] = parse("[!a]x\n")
    assert rule.regex.match("bx") and not rule.regex.match("ax") and not rule.regex.match("/x")
