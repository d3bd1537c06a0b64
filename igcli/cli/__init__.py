"""The ``igcli`` command line: a thin Typer layer over the library (parsing and wiring only).

Nothing here imports torch at module level, so ``igcli --help`` answers at once.
"""

from .app import app, main

__all__ = ["app", "main"]
