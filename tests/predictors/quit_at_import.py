"""A predictor file that calls ``sys.exit`` while it is imported."""

from __future__ import annotations

import sys

print("IMPORT-BEFORE-EXIT")
if __name__ != "__main__":  # always, when tokentide loads it
    sys.exit(7)


def generate() -> str:
    return "never"
