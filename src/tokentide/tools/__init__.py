"""Where tools come from, and whether a call may run: MCP servers (stdio and streamable
HTTP, through the official ``mcp`` SDK), Python functions files, the toolbox that offers
them under unique names and runs calls with deadlines, and the approval rules.

The domain: no UI here (the app's dialog and "Tools" view, ``tide ask``'s messages and
the session's loop call into this package).  Nothing of the ``mcp`` SDK is imported
until an MCP server is started, so a conversation without tools pays nothing for it
(``tests/tools/test_imports.py``).  See docs/tools.md.
"""

from tokentide.tools.approval import (
    Allow,
    ApprovalRules,
    Ask,
    ConversationApprovals,
    Decision,
    Deny,
    Policy,
    allow_flag,
    decide,
    parse_policy,
)
from tokentide.tools.functions import FunctionsFile, load_functions
from tokentide.tools.mcp_config import (
    HttpServer,
    McpServerConfig,
    StdioServer,
    load_mcp_file,
    parse_mcp_json,
    parse_servers,
)
from tokentide.tools.mcp_servers import DEFAULT_TOOL_TIMEOUT, McpServer, RestartPolicy
from tokentide.tools.status import Changes, SourceState, SourceStatus, ToolSource
from tokentide.tools.toolbox import Toolbox, build_toolbox

__all__ = [
    "DEFAULT_TOOL_TIMEOUT",
    "Allow",
    "ApprovalRules",
    "Ask",
    "Changes",
    "ConversationApprovals",
    "Decision",
    "Deny",
    "FunctionsFile",
    "HttpServer",
    "McpServer",
    "McpServerConfig",
    "Policy",
    "RestartPolicy",
    "SourceState",
    "SourceStatus",
    "StdioServer",
    "ToolSource",
    "Toolbox",
    "allow_flag",
    "build_toolbox",
    "decide",
    "load_functions",
    "load_mcp_file",
    "parse_mcp_json",
    "parse_policy",
    "parse_servers",
]
