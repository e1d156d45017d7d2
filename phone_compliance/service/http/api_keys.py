"""API keys: the ones given, PHONE_COMPLIANCE_API_KEYS, and a key file re-read on change."""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
API_KEYS_ENV = "PHONE_COMPLIANCE_API_KEYS"
API_KEYS_FILE_ENV = "PHONE_COMPLIANCE_API_KEYS_FILE"


class ApiKeys:
    """The accepted API keys: explicit ones, the env setting, and a key file re-read on change."""

    def __init__(
        self,
        keys: Iterable[str] = (),
        *,
        env: str | None = None,
        file: str | Path | None = None,
    ) -> None:
        self._fixed = [k for k in (s.strip() for s in keys) if k]
        if env:
            self._fixed += [k for k in (s.strip() for s in env.split(",")) if k]
        self._file = Path(file) if file else None
        self._file_stamp: tuple[int, int] | None = None
        self._file_keys: list[str] = []
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._refresh_file()

    @classmethod
    def from_env(cls) -> ApiKeys:
        """Keys from PHONE_COMPLIANCE_API_KEYS and PHONE_COMPLIANCE_API_KEYS_FILE."""
        return cls(env=os.environ.get(API_KEYS_ENV), file=os.environ.get(API_KEYS_FILE_ENV))

    def __len__(self) -> int:
        return len(self._all())

    def _refresh_file(self) -> None:
        if self._file is None:
            return
        with self._lock:
            self._next_check = time.monotonic() + 1.0
            try:
                st = self._file.stat()
                stamp = (st.st_ino, st.st_mtime_ns)
                if stamp != self._file_stamp:
                    lines = self._file.read_text().splitlines()
                    self._file_keys = [
                        k for k in (s.strip() for s in lines) if k and not k.startswith("#")
                    ]
                    self._file_stamp = stamp
            except OSError as e:  # keep the keys we had; say so
                log.error("API key file %s: %s", self._file, e)

    def _all(self) -> list[str]:
        if self._file is not None and time.monotonic() >= self._next_check:
            self._refresh_file()
        return self._fixed + self._file_keys

    def check(self, presented: str | None) -> bool:
        """Whether `presented` is an accepted key; compares against every key in constant time."""
        if not presented:
            return False
        given = presented.encode("utf-8", "surrogateescape")
        ok = False
        for key in self._all():
            ok |= hmac.compare_digest(given, key.encode("utf-8"))
        return ok
