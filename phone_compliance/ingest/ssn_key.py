"""The secret of Bronze's keyed SSN hash: where it comes from, never where it goes.

Production sets `PHONE_COMPLIANCE_SSN_HASH_KEY` (from the Databricks secret scope). Locally a
random key is made once in the Dagster home, so hashes stay stable across runs.
"""

from __future__ import annotations

import hashlib
import os
import secrets

from phone_compliance.lakehouse.locations import Locations


def ssn_hash_key(locations: Locations) -> bytes:
    """The 32-byte key of Bronze's keyed SSN hash."""
    settings = locations.settings
    if settings.ssn_hash_key:
        return hashlib.sha256(settings.ssn_hash_key.encode()).digest()
    if settings.production:
        raise RuntimeError("PHONE_COMPLIANCE_SSN_HASH_KEY must be set in production")
    key_file = locations.ssn_key_file
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Created readable by its owner only, in the same call: never briefly world-readable.
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
    return hashlib.sha256(key_file.read_text().strip().encode()).digest()
