"""Nothing of the MCP SDK is imported with tokentide.tools (a conversation without tools
pays nothing for it); it comes only when a server is started."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.tools.conftest import SERVER

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


STARTS = """
import asyncio, sys, threading
from pathlib import Path

where = {}

def audit(event, args):
    top = args[0].split(".")[0] if event == "import" else None
    if top in ("mcp", "pydantic") and top not in where:
        where[top] = threading.current_thread() is threading.main_thread()

sys.addaudithook(audit)
from tokentide.tools import StdioServer, Toolbox

async def main():
    server = StdioServer(name="calc", command=sys.executable, args=(sys.argv[1], "--state", sys.argv[2]))
    async with Toolbox([server]) as box:
        await box.settled()
        assert box.snapshot()[0].state == "ready", box.snapshot()

asyncio.run(main())
print(where)
"""


def test_the_sdk_is_imported_off_the_event_loop_thread(tmp_path: Path) -> None:
    """About a second of imports: in a worker thread, so the app keeps painting."""
    done = subprocess.run(
        [sys.executable, "-c", STARTS, str(SERVER), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    on_main_thread = ast.literal_eval(done.stdout.strip())
    assert on_main_thread == {"mcp": False, "pydantic": False}
