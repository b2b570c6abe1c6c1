"""tokentide: a terminal chat client for LLM servers that renders tokens live as they stream.

Importing this package is cheap and has no side effects; the heavy parts (Textual, gRPC,
llama.cpp) are imported only by the code paths that need them.
"""

__version__ = "0.1.0"
