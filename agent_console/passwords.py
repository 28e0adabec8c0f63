"""Password hashing: scrypt (RFC 7914) from the standard library.

scrypt is memory-hard (an attacker's GPU cannot run many guesses in parallel) and is one of
the algorithms OWASP's password-storage guidance names. Parameters follow that guidance's
minimum for scrypt (N=2^17, r=8, p=1: 128 MiB and about a tenth of a second here); they are
stored with each hash, so raising them later re-hashes users on their next login
(``needs_rehash``) without breaking old hashes.

Format: ``scrypt$<log2 N>$<r>$<p>$<salt b64>$<hash b64>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_password", "needs_rehash", "verify_password"]

LOG2_N = 17
R = 8
P = 1
_SALT_BYTES = 16
_KEY_BYTES = 32
_MAX_PASSWORD = 1024  # bytes: a longer "password" is an attack on the CPU, not a password


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=2 * 128 * r * n,
        dklen=_KEY_BYTES,
    )


def hash_password(password: str, *, log2_n: int = LOG2_N) -> str:
    if not password or len(password.encode("utf-8")) > _MAX_PASSWORD:
        raise ValueError(f"a password has 1 to {_MAX_PASSWORD} bytes")
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _derive(password, salt, log2_n, R, P)
    b64 = base64.b64encode
    return f"scrypt${log2_n}${R}${P}${b64(salt).decode()}${b64(key).decode()}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = base64.b64decode(parts[4]), base64.b64decode(parts[5])
    except ValueError:
        return None
    if not (10 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
        return None  # refuse parameters that would make one check a denial of service
    return log2_n, r, p, salt, key


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches ``stored``; False for a malformed hash too."""
    parsed = _parse(stored)
    if parsed is None or not password or len(password.encode("utf-8")) > _MAX_PASSWORD:
        return False
    log2_n, r, p, salt, key = parsed
    return hmac.compare_digest(_derive(password, salt, log2_n, r, p), key)


def needs_rehash(stored: str, *, log2_n: int = LOG2_N) -> bool:
    parsed = _parse(stored)
    return parsed is None or parsed[0] < log2_n or parsed[1:3] != (R, P)
