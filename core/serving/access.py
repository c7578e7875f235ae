"""Who may use a dashboard served to a class: access codes, signed tokens, a growing delay after wrong codes.

A teacher sets a class code and a teacher code (``MNIST_EXPLORER_CLASS_CODE`` and ``MNIST_EXPLORER_TEACHER_CODE``,
or ``class_code`` and ``teacher_code`` in ``.streamlit/secrets.toml``). With neither set, the dashboard is open, as
it always was. With a code set, a session must give a right code first; it gets a *role* (``class`` or
``teacher``) and, in a browser cookie, a token signed with a secret this server process draws when it starts, so
the code survives a page reload in that browser until the server restarts (a new secret: every token is void).

Nothing here reads Streamlit: ``pages/ui/access.py`` asks the page's session and cookies and draws the forms.
Codes are compared in constant time (``hmac.compare_digest`` of their SHA-256 digests, so neither the content nor
the length leaks through timing) and never written anywhere: a token holds the role, the nickname and when it was
issued, signed together with a digest of the code that opened it (a changed code voids its tokens).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

CLASS_CODE_ENV, TEACHER_CODE_ENV = "MNIST_EXPLORER_CLASS_CODE", "MNIST_EXPLORER_TEACHER_CODE"
CLASS_CODE_SECRET, TEACHER_CODE_SECRET = "class_code", "teacher_code"
DELAY_ENV = "MNIST_EXPLORER_CODE_DELAY_S"  # the first wrong code's delay (tests shorten it)
COOKIE_NAME = "mnist_explorer_access"
OPEN, CLASS, TEACHER = "open", "class", "teacher"
DEFAULT_FIRST_DELAY_S = 1.0
MAX_DELAY_S = 15.0
TOKEN_MAX_AGE_S = 12 * 3600.0  # a school day; after a restart every token is void anyway
MAX_CODE_CHARS = 200

_SERVER_SECRET = secrets.token_bytes(32)  # drawn once per server process: a restart voids every token


@dataclass(frozen=True)
class Codes:
    """The codes a teacher set ('' where not set). ``open`` when neither is set."""

    class_code: str = ""
    teacher_code: str = ""

    @property
    def open(self) -> bool:
        return not self.class_code and not self.teacher_code

    def describe(self) -> str:
        """For the server log: which codes are set, never what they are."""
        if self.open:
            return (
                "No access code is set: the dashboard is open to anyone who can reach it. Set "
                f"{CLASS_CODE_ENV} and {TEACHER_CODE_ENV} (or class_code and teacher_code in .streamlit/secrets.toml) "
                "to ask for a code (docs/serving.md)."
            )
        parts = [f"class code {'set' if self.class_code else 'not set'}"]
        parts.append(f"teacher code {'set' if self.teacher_code else 'not set'}")
        return "Access codes are required: " + ", ".join(parts) + "."

    def fingerprint(self, role: str) -> bytes:
        """A digest of the code that gives ``role`` (signed into its tokens: a changed code voids them)."""
        code = self.teacher_code if role == TEACHER else self.class_code if role == CLASS else ""
        return hashlib.sha256(b"code:" + code.encode()).digest()


def codes_from(environ: Mapping[str, str], secret_values: Mapping[str, object] | None = None) -> Codes:
    """The codes from the environment, else from the secrets (``class_code``, ``teacher_code``). Surrounding
    blanks are ignored; a blank value is 'not set'."""
    secret_values = secret_values or {}

    def one(env_name: str, secret_name: str) -> str:
        value = environ.get(env_name)
        if value is None or not value.strip():
            value = secret_values.get(secret_name)
        return str(value).strip() if value is not None else ""

    return Codes(one(CLASS_CODE_ENV, CLASS_CODE_SECRET), one(TEACHER_CODE_ENV, TEACHER_CODE_SECRET))


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def role_for(given: str, codes: Codes) -> str | None:
    """The role a typed code opens (``teacher`` or ``class``), or None. Constant time: both codes are always
    compared, as digests of equal length."""
    given = (given or "").strip()[:MAX_CODE_CHARS]
    typed = _digest(given)
    is_teacher = hmac.compare_digest(typed, _digest(codes.teacher_code)) and bool(codes.teacher_code)
    is_class = hmac.compare_digest(typed, _digest(codes.class_code)) and bool(codes.class_code)
    if not given:
        return None
    return TEACHER if is_teacher else CLASS if is_class else None


def delay_after(failures: int, first: float | None = None) -> float:
    """Seconds to wait before answering the ``failures``-th wrong code of a session: ``first``, then doubling,
    at most ``MAX_DELAY_S``; 0 before any failure."""
    if failures <= 0:
        return 0.0
    if first is None:
        try:
            first = float(os.environ.get(DELAY_ENV, DEFAULT_FIRST_DELAY_S))
        except ValueError:
            first = DEFAULT_FIRST_DELAY_S
    return min(MAX_DELAY_S, max(0.0, first) * 2 ** min(failures - 1, 16))


@dataclass(frozen=True)
class Grant:
    """What a right code gave a session: its ``role`` and, once given, its ``nickname``."""

    role: str
    nickname: str = ""
    issued: float = 0.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(grant: Grant, codes: Codes, secret: bytes = _SERVER_SECRET) -> str:
    """A token for a cookie: ``payload.signature`` (URL-safe base64, no characters a cookie forbids)."""
    payload = _b64(json.dumps({"r": grant.role, "n": grant.nickname, "t": round(grant.issued)}).encode())
    mac = hmac.new(secret, payload.encode() + codes.fingerprint(grant.role), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def verify(
    token: str | None,
    codes: Codes,
    secret: bytes = _SERVER_SECRET,
    now: float | None = None,
    max_age: float = TOKEN_MAX_AGE_S,
) -> Grant | None:
    """The grant a token carries, or None: a token of another server process, a changed code, a role whose code
    is no longer set, an expired, malformed or tampered token."""
    if not token or len(token) > 1000 or token.count(".") != 1:
        return None
    payload, mac = token.split(".")
    try:
        data = json.loads(_unb64(payload))
        role, nickname, issued = data["r"], data["n"], float(data["t"])
        given = _unb64(mac)
    except (ValueError, KeyError, TypeError):
        return None
    if role not in (CLASS, TEACHER) or not isinstance(nickname, str):
        return None
    if not (codes.teacher_code if role == TEACHER else codes.class_code):
        return None
    expected = hmac.new(secret, payload.encode() + codes.fingerprint(role), hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        return None
    now = time.time() if now is None else now
    if not -60 <= now - issued <= max_age:
        return None
    return Grant(role, nickname, issued)


def cookie_script(name: str, token: str, max_age: float = TOKEN_MAX_AGE_S) -> str:
    """The one line of JavaScript that stores ``token`` in the browser (path /, SameSite=Strict, Secure on
    https). The token is URL-safe base64 and a dot: nothing in it needs escaping."""
    if not all(c.isalnum() or c in "-_." for c in token + name):
        raise ValueError("a cookie token is URL-safe base64 and dots only")
    return (
        f"<script>document.cookie = '{name}=' + '{token}' + '; path=/; max-age={int(max_age)}; SameSite=Strict'"
        " + (location.protocol === 'https:' ? '; Secure' : '');</script>"
    )
