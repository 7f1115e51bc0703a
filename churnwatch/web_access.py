"""Who may use the worker's web views, as settings: tokens, their names and roles.

``CHURNWATCH_WEB_TOKEN`` (or ``_FILE``) is one token that may read and act;
``CHURNWATCH_WEB_TOKENS`` (or ``_FILE``) holds entries ``name:role:token``
separated by commas or new lines. :mod:`churnwatch.streams.auth` checks requests
against them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: the roles, weakest first: each may do what the ones before it may
ROLES = ("read", "act")
#: the name of the one token of ``CHURNWATCH_WEB_TOKEN``
DEFAULT_NAME = "operator"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")


class WebAuthError(ValueError):
    """The web token settings are missing or malformed."""


@dataclass(frozen=True)
class Credential:
    """One configured token and whom it stands for."""

    name: str
    role: str
    token: str = field(repr=False)


def parse_credentials(token: str | None, tokens: str | None) -> tuple[Credential, ...]:
    """The credentials of ``CHURNWATCH_WEB_TOKEN`` and ``CHURNWATCH_WEB_TOKENS``."""
    out: list[Credential] = []
    if token:
        out.append(Credential(DEFAULT_NAME, "act", token))
    for entry in re.split(r"[,\n]", tokens or ""):
        entry = entry.strip()
        if not entry:
            continue
        parts = entry.split(":", 2)
        if len(parts) != 3 or not parts[2]:
            raise WebAuthError("CHURNWATCH_WEB_TOKENS: each entry is name:role:token")
        name, role, secret = parts
        if not _NAME.match(name):
            raise WebAuthError(f"CHURNWATCH_WEB_TOKENS: bad name {name!r}")
        if role not in ROLES:
            raise WebAuthError(f"CHURNWATCH_WEB_TOKENS: role of {name!r} must be one of {ROLES}")
        out.append(Credential(name, role, secret))
    for credential in out:
        if len(credential.token) < 16:
            raise WebAuthError(
                f"the web token of {credential.name!r} is too short: use at least 16 characters"
            )
    return tuple(out)
