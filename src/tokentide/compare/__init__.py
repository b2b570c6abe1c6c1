"""``tide compare``: streaming vs non-streaming, side by side, with honest numbers.

The engine (no Textual import): :mod:`~tokentide.compare.runner` runs rounds (with hooks
for a view), :mod:`~tokentide.compare.stats` summarises, :mod:`~tokentide.compare.targets`
builds targets and requests, :mod:`~tokentide.compare.results` holds a run's figures and
row, :mod:`~tokentide.compare.report` writes text, JSON and CSV.
:mod:`tokentide.cli.compare` is the command; the live screen, one view of the same round,
is :mod:`tokentide.tui.compare_screen`.
"""
