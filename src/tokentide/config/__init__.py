"""Configuration: profiles in a TOML file, plus ad-hoc command-line flags.

No Textual here, and nothing happens at import time.
"""

from tokentide.config.model import Deadlines, Limits, Profile, Settings

__all__ = ["Deadlines", "Limits", "Profile", "Settings"]
