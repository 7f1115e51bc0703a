"""Who may use the worker's web views: bearer tokens, two roles, and CSRF-safe posts.

A token is configured as ``CHURNWATCH_WEB_TOKEN`` (or ``_FILE``), which may
read and act, and/or as ``CHURNWATCH_WEB_TOKENS`` (or ``_FILE``): entries
``name:role:token`` separated by commas or new lines, the role ``read`` (the
page, alerts, tasks, customers) or ``act`` (also acknowledge and assign). A client sends
``Authorization: Bearer <token>``; a browser logs in once at ``/login`` and
carries the token in an ``HttpOnly``, ``SameSite=Strict`` cookie.

Tokens are compared in constant time. The name an acknowledgement records
comes from the identity: the token's name, or, behind an authenticating proxy
(``CHURNWATCH_WEB_USER_HEADER``), the user the proxy names on a request that
also carries a valid token. A browser's POST must be JSON, come from an
allowed ``Origin``/``Host`` and carry the custom header :data:`CSRF_HEADER`,
which a cross-site page cannot set without a CORS grant the worker never gives.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from churnwatch.web_access import ROLES, Credential

COOKIE = "churnwatch_token"
CSRF_HEADER = "X-Churnwatch-Request"


@dataclass(frozen=True)
class Identity:
    """Who made a request, and in which role."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this identity holds ``role`` (or a stronger one)."""
        return ROLES.index(self.role) >= ROLES.index(role)


def _host_of(value: str) -> tuple[str, str | None]:
    """``(host, port)`` of a ``Host`` header value (``[::1]:80`` style included)."""
    parsed = urlsplit(f"//{value}")
    try:
        port = parsed.port
    except ValueError:
        return value.lower(), None
    return (parsed.hostname or "").lower(), None if port is None else str(port)


@dataclass(frozen=True)
class Guard:
    """Authenticates requests and judges whether a POST may be trusted."""

    credentials: tuple[Credential, ...]
    #: ``host`` (any port) or ``host:port`` entries a browser may address the worker as
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
    #: header naming the user, set by an authenticating proxy in front
    user_header: str | None = None

    def identify(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Identity | None:
        """The identity a request's bearer token or login cookie names, or ``None``."""
        presented = bearer(headers) or cookies.get(COOKIE)
        credential = self.match(presented)
        if credential is None:
            return None
        name = credential.name
        if self.user_header and (user := headers.get(self.user_header, "").strip()):
            if not _is_text(user):
                return None  # a name the store could not record: no identity to act as
            name = user[:200]
        return Identity(name, credential.role)

    def match(self, presented: str | None) -> Credential | None:
        """The credential whose token is ``presented`` (compared in constant time)."""
        if not presented or not _is_text(presented):
            return None
        found = None
        given = presented.encode()
        for credential in self.credentials:  # no early exit: timing tells nothing
            if hmac.compare_digest(given, credential.token.encode()):
                found = credential
        return found

    def host_allowed(self, value: str | None) -> bool:
        """Whether a ``Host`` (or an ``Origin``'s host part) is on the allow-list."""
        if not value:
            return False
        host, port = _host_of(value)
        for entry in self.allowed_hosts:
            allowed_host, allowed_port = _host_of(entry)
            if host == allowed_host and allowed_port in (None, port):
                return True
        return False

    def refuse_post(self, headers: Mapping[str, str], *, by_cookie: bool) -> str | None:
        """Why a state-changing request must be refused, or ``None`` to let it through."""
        content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return "the body must be application/json"
        if not self.host_allowed(headers.get("Host")):
            return "this Host is not allowed (CHURNWATCH_WEB_ALLOWED_HOSTS)"
        origin = headers.get("Origin")
        if origin is not None:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not self.host_allowed(parts.netloc):
                return "this Origin is not allowed (CHURNWATCH_WEB_ALLOWED_HOSTS)"
        if by_cookie and headers.get(CSRF_HEADER) != "1":
            return f"a browser request needs the {CSRF_HEADER} header"
        return None


def _is_text(value: str) -> bool:
    """Whether ``value`` is UTF-8 text without NULs.

    aiohttp hands over a header's bytes that are not UTF-8 as lone surrogates
    (``surrogateescape``); such a value is no token and no name.
    """
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or ``None``."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def allowed_hosts(configured: Iterable[str], web_host: str) -> tuple[str, ...]:
    """The configured allow-list, or loopback names plus the bound address."""
    hosts = tuple(h.strip() for h in configured if h.strip())
    if hosts:
        return hosts
    defaults = ("127.0.0.1", "localhost", "::1")
    return defaults if web_host in ("0.0.0.0", "::", *defaults) else (*defaults, web_host)
