"""The chat pays the first answer's first render at rest, after its first frame (issue
17): the Markdown renderer's warm-up loads what rendering code and tables needs."""

from __future__ import annotations

import subprocess
import sys


def test_warm_up_loads_the_renderer_s_first_render() -> None:
    code = (
        "import sys; from tokentide.tui.widgets.markdown_render import warm_up;"
        "before = 'pygments.lexers.python' in sys.modules; warm_up();"
        "print(before, 'pygments.lexers.python' in sys.modules, 'rich.table' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]
