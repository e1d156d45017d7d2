"""`python -m phone_compliance.cli`."""

from phone_compliance.cli.main import entry

entry()
