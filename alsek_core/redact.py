"""Backend URLs fit for printing: every error, log line and ``repr`` that shows
a URL shows it through :func:`redact_url`, so a password never reaches a
terminal, a log file or a bug report.

Three places hold secrets: the user-info password (``redis://:pw@host``),
password-like query parameters (``?password=``, ``?sslpassword=``,
``?token=``...), and URLs too mangled to parse (``redis//:pw@host``), which
are never echoed whole because nobody can say where their secret is.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

HIDDEN = "***"
#: Query parameters whose value is a secret, compared lower-cased; any name
#: containing one of SECRET_WORDS is one too (``oauth_client_secret``, ``sslpassword``).
SECRET_PARAMS = frozenset({"pass", "pwd", "passwd", "auth", "key", "apikey", "api_key", "credentials"})
SECRET_WORDS = ("password", "secret", "token")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def is_secret_param(name: str) -> bool:
    lowered = unquote(name).lower()
    return lowered in SECRET_PARAMS or any(word in lowered for word in SECRET_WORDS)


def _unparsable(text: str) -> str:
    if not any(c in text for c in "@:=?"):  # nowhere a secret could sit: show it, it helps
        return text
    return f"<unparsable URL of {len(text)} characters, hidden as it may hold a password>"


def redact_url(url: object) -> str:
    """``url`` with its secrets replaced by ``***``; anything unparsable hidden."""
    text = str(url)
    if not _SCHEME.match(text):
        return _unparsable(text)
    try:
        parts = urlsplit(text)  # a bad port is fine here: only the user-info matters
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return _unparsable(text)
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:{HIDDEN}@{hostport}"
    query = "&".join(
        f"{item.partition('=')[0]}={HIDDEN}" if is_secret_param(item.partition("=")[0]) else item
        for item in parts.query.split("&")
    ) if parts.query else ""
    head = f"{parts.scheme}://{netloc}{parts.path}"
    return head + (f"?{query}" if query else "") + (f"#{HIDDEN}" if parts.fragment else "")


def secrets_in(url: str) -> list[str]:
    """The secret strings ``url`` holds, as written and decoded (for :func:`scrub`)."""
    found: list[str] = []
    if not _SCHEME.match(url):
        return [url] if redact_url(url) != url else []
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        found.append(userinfo.split(":", 1)[1])
    for item in parts.query.split("&") if parts.query else []:
        name, _, value = item.partition("=")
        if is_secret_param(name):
            found.append(value)
    if parts.fragment:
        found.append(parts.fragment)
    return [s for secret in found if secret for s in {secret, unquote(secret)}]


def scrub(text: str, url: str) -> str:
    """``text`` (an error message, say) with any secret of ``url`` replaced:
    drivers sometimes quote what they were given."""
    for secret in sorted(secrets_in(url), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text
