"""Bearer tokens for the HTTP API: roles, creation, hashing and checks (pure, no I/O).

A token is ``gm_`` followed by 43 URL-safe characters (256 random bits).  Only its SHA-256
hex digest is stored: the tokens are long random strings, not passwords, so a fast hash
is enough (nobody can brute-force 256 bits) and lets the server find a token by an index
lookup on the digest.  The plain token is shown once, when it is created.

Roles
-----
- ``police``: community police (社区民警), scoped to one area (district, street or
  community); sees only the houses, people, grids and areas inside it, unmasked.
- ``planner``: grid planners; read everything, identifiers masked.
- ``supervisor``: supervisors of the grid work; read everything, identifiers masked.
- ``admin``: everything unmasked, and the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from gridmgr.errors import BadInput

ROLES: tuple[str, ...] = ("police", "planner", "supervisor", "admin")
"""Every role a token can carry."""

SCOPED_ROLES: frozenset[str] = frozenset({"police"})
"""Roles that must name an area and see only what lies inside it."""

UNMASKED_ROLES: frozenset[str] = frozenset({"admin", "police"})
"""Roles that see ID and phone numbers in full (police only ever see their own area)."""

TOKEN_PREFIX = "gm_"
_TOKEN_BYTES = 32
_MAX_TOKEN_CHARS = 200
_TOKEN_SHAPE = re.compile(r"gm_[A-Za-z0-9_-]+")


def new_token() -> str:
    """Return a fresh random bearer token (``gm_`` + 43 URL-safe characters)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def verify_token(token: str, token_hash: str) -> bool:
    """Return True when ``token`` hashes to ``token_hash`` (constant-time comparison)."""
    return hmac.compare_digest(hash_token(token), token_hash)


def looks_like_token(token: str) -> bool:
    """Return True for a string shaped like a gridmgr token (cheap check before any lookup)."""
    return len(token) <= _MAX_TOKEN_CHARS and _TOKEN_SHAPE.fullmatch(token) is not None


def bearer_token(authorization: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer <token>`` header value, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value or None


def check_role(role: str, area_code: str | None) -> tuple[str, str | None]:
    """Validate a role and its area; return them normalised or raise BadInput saying why.

    Police tokens need an area (the code of a district, street or community); the other
    roles see the whole city and take no area.
    """
    role = (role or "").strip().lower()
    if role not in ROLES:
        raise BadInput(f"role {role!r} is unknown; use one of {', '.join(ROLES)}")
    area = (area_code or "").strip() or None
    if role in SCOPED_ROLES and area is None:
        raise BadInput(f"a {role} token needs --area CODE (a district, street or community code)")
    if role not in SCOPED_ROLES and area is not None:
        raise BadInput(f"only {', '.join(sorted(SCOPED_ROLES))} tokens are scoped to an area; "
                       f"drop --area for {role} tokens")
    if area is not None and (not area.isascii() or not area.isdigit() or len(area) > 20):
        raise BadInput(f"area {area!r} is not an area code; use digits such as 510104 or "
                       "510104001002")
    return role, area


def sees_unmasked(role: str) -> bool:
    """Return True when a role sees ID and phone numbers in full."""
    return role in UNMASKED_ROLES
