"""Settings for `sijill` commands: flags, environment variables, a config file (being written)."""

from __future__ import annotations

import typer


def install(app: typer.Typer) -> None:
    """Make the config file a source of defaults for every command of `app`."""
