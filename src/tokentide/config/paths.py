"""Where tokentide keeps its files.  Nothing here creates a directory.

Precedence, first wins:

* config file: ``--config PATH`` > ``$TIDE_CONFIG`` > ``<platform config dir>/config.toml``
* data (history database, debug logs): ``$TIDE_DATA_DIR`` > ``<platform data dir>``
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["APP_NAME", "config_path", "data_dir"]

APP_NAME = "tokentide"


def config_path(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit).expanduser()
    if from_env := env.get("TIDE_CONFIG"):
        return Path(from_env).expanduser()
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if from_env := env.get("TIDE_DATA_DIR"):
        return Path(from_env).expanduser()
    from platformdirs import user_data_path

    return user_data_path(APP_NAME)
