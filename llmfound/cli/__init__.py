"""The ``llmfound`` command line: one module per command group, wired in :mod:`llmfound.cli.main`."""

from llmfound.cli.main import app, main

__all__ = ["app", "main"]
