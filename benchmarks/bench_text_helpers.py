"""Deterministic Markdown answers for the benchmarks, with no import of the app.

The text of every benchmark (``benchmarks/bench_tui_render.py`` imports it from here),
about 3.75 characters a token: sections,
paragraphs with bold and inline code, lists, python fences, tables (performance.md §B2).
``bench_tmux_e2e`` runs the app in other processes, so the process that measures imports
neither Textual nor tokentide (whose tree may be another checkout, or half-edited).
"""

from __future__ import annotations

__all__ = ["make_answer", "make_text"]

_WORDS = [
    "the",
    "stream",
    "of",
    "tokens",
    "arrives",
    "quickly",
    "and",
    "every",
    "block",
    "must",
    "render",
    "without",
    "delay",
    "while",
    "older",
    "text",
    "stays",
    "exactly",
    "where",
    "it",
    "was",
    "on",
    "the",
    "screen",
    "for",
    "the",
    "reader",
]


def make_text(n_tokens: int, seed: int = 0) -> str:
    """Deterministic Markdown of about ``n_tokens * 3.75`` characters (without the end)."""
    parts: list[str] = []
    size = 0
    k = seed
    target = int(n_tokens * 3.75)
    while size < target:
        words = [_WORDS[(k * 7 + i) % len(_WORDS)] for i in range(40)]
        words[5] = f"**{words[5]}**"
        words[17] = f"`{words[17]}()`"
        words2 = [_WORDS[(k * 3 + i) % len(_WORDS)] for i in range(40)]
        words2[9] = f"**{words2[9]} {words2[10]}**"
        words2[30] = f"`x_{k}`"
        section = [
            f"## Section {k}",
            "",
            " ".join(words) + ".",
            "",
            " ".join(words2) + ".",
            "",
            *[f"- item {j} of section {k} with `value_{j}` and **note**" for j in range(5)],
            "",
            "```python",
            f"def section_{k}(values: list[int]) -> int:",
            '    """Sum the values."""',
            "    total = 0",
            "    for v in values:",
            "        total += v * 2",
            "    if total > 100:",
            "        return total - 100",
            "    return total",
            "```",
            "",
        ]
        if k % 2 == 0:
            section += [
                "| name | value | note |",
                "|------|------:|------|",
                *[f"| row {j} | {j * k} | `n{j}` |" for j in range(4)],
                "",
            ]
        chunk = "\n".join(section) + "\n"
        parts.append(chunk)
        size += len(chunk)
        k += 1
    return "".join(parts)[:target]


def make_answer(n_tokens: int, seed: int, end: str = "") -> str:
    return make_text(n_tokens, seed) + "\n\nEnd of answer " + end + "\n"
