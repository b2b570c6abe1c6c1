"""The common part of ``.gitignore``, for a folder attachment: what a folder's
``.gitignore`` files exclude is not attached.

Taken: blank lines and ``#`` comments, ``\\#``/``\\!`` escapes, trailing spaces
(``\\ `` keeps one), ``!negation``, ``dir/`` (directories only), patterns with a ``/``
anchored to the ``.gitignore``'s folder (``/x`` too), the others matching a name at any
depth, ``*``, ``?``, ``[a-z]``/``[!a-z]`` and ``**`` (``**/x``, ``x/**``, ``a/**/b``).
Not taken: the global excludes file and ``.git/info/exclude`` (the folder is read as
it is, not as git's repository).  As in git, the last rule that matches wins, a deeper
``.gitignore`` after the ones above it, and nothing below an excluded folder is looked
at (so ``!`` cannot bring back a file inside one).  Checked against ``git ls-files``
in tests/attach/test_gitignore.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Rule", "Rules", "parse"]


@dataclass(frozen=True, slots=True)
class Rule:
    regex: re.Pattern[str]
    negated: bool
    dir_only: bool
    anchored: bool
    """Matched against the path below the ``.gitignore``'s folder; otherwise the name."""


def parse(text: str) -> tuple[Rule, ...]:
    """The rules of one ``.gitignore`` file's text."""
    rules = []
    for raw in text.splitlines():
        line = _strip_trailing(raw)
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated or line.startswith(("\\!", "\\#")):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        try:
            regex = re.compile(_translate(line))
        except re.error:  # a range git would not take either ("[z-a]"): no rule
            continue
        rules.append(Rule(regex, negated, dir_only, anchored))
    return tuple(rules)


def _strip_trailing(line: str) -> str:
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        return stripped[:-1] + " "  # "\ " keeps one space
    return stripped


def _translate(pattern: str) -> str:
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i) and (i == 0 or pattern[i - 1] == "/"):
                if pattern.startswith("**/", i):
                    out.append("(?:.*/)?")
                    i += 3
                    continue
                if i + 2 == n:
                    out.append(".*")
                    i += 2
                    continue
            while i < n and pattern[i] == "*":
                i += 1
            out.append("[^/]*")
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[":
            start = i + (3 if pattern[i + 1 : i + 2] in ("!", "^") else 2)  # "]" first is literal
            end = pattern.find("]", start)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                negate = body[:1] in ("!", "^")
                body = body[1:] if negate else body
                body = re.sub(r"([\\^\[\]])", r"\\\1", body)
                out.append(f"[{'^/' if negate else ''}{body}]")
                i = end
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out) + r"\Z"


@dataclass(frozen=True, slots=True)
class Rules:
    """The ``.gitignore`` rules in force in one folder of the walk: each file's rules
    with the folder it sits in (``/``-separated, relative to the walk's root, ``""``
    for the root), outermost first."""

    layers: tuple[tuple[str, tuple[Rule, ...]], ...] = ()

    def below(self, folder: str, text: str) -> Rules:
        """These rules, then those of ``folder``'s own ``.gitignore`` (its text)."""
        rules = parse(text)
        return Rules((*self.layers, (folder, rules))) if rules else self

    def excludes(self, path: str, *, is_dir: bool) -> bool:
        """Whether ``path`` (relative to the walk's root, ``/``-separated) is excluded."""
        excluded = False
        name = path.rpartition("/")[2]
        for base, rules in self.layers:
            if base and not path.startswith(base + "/"):
                continue  # a .gitignore rules only below its own folder
            relative = path[len(base) + 1 :] if base else path
            for rule in rules:
                if rule.dir_only and not is_dir:
                    continue
                subject = relative if rule.anchored else name
                if rule.regex.match(subject):
                    excluded = not rule.negated
        return excluded
