"""Nothing of the MCP SDK is imported with tokentide.tools (a conversation without tools
pays nothing for it); it comes only when a server is started."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import tokentide.tools
from tokentide.tools import Toolbox, build_toolbox, decide, load_functions, parse_mcp_json
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'mcp_types', 'httpx2', 'pydantic', 'anyio'))
assert not heavy, heavy
print('ok')
"""


def test_importing_the_package_imports_no_sdk() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
