"""`sijill audit` and `sijill export`: an agency's log checked against the chain (being written)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `sijill` app."""
