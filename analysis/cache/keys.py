"""The spatial hash of request keys, shared by the recorder (which samples keys while a run
goes) and the miss-ratio curves. Standard library only: every Locust worker imports it."""

from __future__ import annotations

import hashlib

HASH_SPACE = 1 << 24


def string_hash(key: str) -> int:
    """The 24-bit spatial hash of a key as text (for sampling keys while a run goes)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") % HASH_SPACE
