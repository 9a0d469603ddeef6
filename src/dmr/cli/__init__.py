"""The ``dmr`` command: a thin shell over the library. Each sub-module adds one command group."""

from __future__ import annotations

from dmr.cli.main import main

__all__ = ["main"]
