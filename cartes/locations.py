"""Where cartes keeps its files (platformdirs): configuration and data of the user."""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP = "cartes"


def config_file() -> Path:
    """The default settings file."""
    return Path(platformdirs.user_config_dir(APP)) / "cartes.toml"


def data_dir() -> Path:
    """The folder of the default SQLite database and the caches."""
    return Path(platformdirs.user_data_dir(APP))


def default_database_url() -> str:
    return f"sqlite:///{data_dir() / 'cartes.db'}"
