"""Independent random streams derived from a run's seed, one per purpose.

Batch k's order and crops, the sample grid's latents, KID's latents and each rank's training
stream are all functions of (seed, purpose, index): none overlaps another, and a resumed run
draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, purpose: str, index: int = 0) -> int:
    """An independent 63-bit seed per (run seed, purpose, index): no stream overlaps another."""
    digest = hashlib.blake2b(f"{seed}/{purpose}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
