"""`sijill agency ...`: council governance of the AgencyRegistry (issue 6; being written)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `sijill` app."""
