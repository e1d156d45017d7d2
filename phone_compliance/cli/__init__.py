"""`phone-compliance`: the command line (check, serve, index, run, ui)."""

from phone_compliance.cli.main import entry, main

__all__ = ["entry", "main"]
