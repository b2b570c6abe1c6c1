"""``tide compare``: streaming vs non-streaming, side by side, with honest numbers.

:mod:`tokentide.compare.runner` measures (no Textual import); :mod:`tokentide.compare.cli`
is the command; the live screen is :mod:`tokentide.tui.compare_screen`.
"""
