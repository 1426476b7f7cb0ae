"""Keyed pseudonymisation of user and session ids: HMAC-SHA256, stable for one key, irreversible without it."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from functools import lru_cache
from typing import Callable

_log = logging.getLogger("avalo_otel")

#: Output length in hex characters: 96 bits keeps collisions negligible at Avalo's scale.
_HEX_CHARS = 24


class Pseudonymizer:
    """Maps an id to ``"p_" + hex(HMAC-SHA256(key, id))[:24]``.

    With no key a random per-process key is used: raw ids still never leave, but the same user
    gets different pseudonyms in different processes, so a warning says correlation is off.
    """

    def __init__(self, key: bytes | str | None = None) -> None:
        if key is None:
            _log.warning(
                "avalo-otel: no pseudonymisation key configured (AVALO_OTEL_PSEUDONYM_KEY); using a "
                "random per-process key, so user ids cannot be correlated across processes"
            )
            key = secrets.token_bytes(32)
            self.ephemeral = True
        else:
            self.ephemeral = False
        raw = key.encode() if isinstance(key, str) else key
        self._digest: Callable[[str], str] = lru_cache(maxsize=8192)(self._compute)
        self._key = raw

    def _compute(self, value: str) -> str:
        mac = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return "p_" + mac.hexdigest()[:_HEX_CHARS]

    def __call__(self, value: object) -> str:
        return self._digest(str(value))
