"""The UI's login: a constant-time password check, a brake on guessing, and no route answered without it.

Gradio's login page posts to `/login` and checks the pair with the callable `credentials(user, password)`
returns. Gradio itself neither slows guessing nor guards all of its routes (`/openapi.json`,
`/gradio_api/app_id`, `/gradio_api/token`, `/gradio_api/heartbeat/...` answered without a login), so
`LoginGate`, an ASGI middleware installed in front of Gradio's routes when a login is set, does both:

- every request needs Gradio's session cookie, except the login page itself and the files it loads
  (`PUBLIC_PATHS`, `PUBLIC_PREFIXES`); the rest answer 401 before reaching Gradio;
- failed logins are counted per client address (`LoginThrottle`): after `FREE_FAILURES` wrong passwords in a
  row, each failure locks that address out for twice as long as the one before: 1 s, 2 s, 4 s, ... up to
  `MAX_DELAY_S` (about a dozen guesses an hour from then on). While locked, `/login` answers 429 with
  `Retry-After` and no password is checked, the right one included. A successful login clears the address;
  an address without a failure for `FORGET_AFTER_S` starts afresh. Attempts from one address are checked one
  at a time, so parallel requests cannot slip past the count.

The client address is the one uvicorn reports: behind a reverse proxy on the same machine it is the proxy's
`X-Forwarded-For` (uvicorn trusts that header from 127.0.0.1 only), so all clients of a proxy that does not
send it share one budget.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection

from ui.asgi import refuse

__all__ = ["LoginGate", "LoginThrottle", "credentials"]

FREE_FAILURES = 5  # wrong passwords in a row from one address; the last of them earns the first lock-out
BASE_DELAY_S = 1.0  # the first lock-out; each further failure doubles it
MAX_DELAY_S = 300.0  # the longest lock-out: at most ~12 guesses an hour per address once it is reached
FORGET_AFTER_S = 3600.0  # an address without a failure for this long starts again from zero
MAX_TRACKED = 10_000  # addresses remembered at once (the quiet ones are dropped first)

LOGIN_PATHS = frozenset({"/login", "/login/"})
# What the login page needs before anyone has logged in: the page, its scripts, styles, fonts and icons,
# and the logout link. Everything else (the API, the config, files, the queue) needs the session.
PUBLIC_PATHS = frozenset({"/", "/favicon.ico", "/theme.css", "/gradio_api/theme.css", "/robots.txt",
                          "/manifest.json", "/pwa_icon", "/logout", *LOGIN_PATHS})
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon/")
STARTUP_PATH = "/gradio_api/startup-events"  # Gradio calls it itself, once, while `launch` runs


def credentials(user: str, password: str) -> Callable[[str, str], bool]:
    """Gradio's `auth` callable for one account; compares in constant time (user and password both)."""
    expected_user, expected_password = user.encode(), password.encode()

    def check(given_user: str, given_password: str) -> bool:
        same_user = hmac.compare_digest(given_user.encode(), expected_user)
        same_password = hmac.compare_digest(given_password.encode(), expected_password)
        return same_user and same_password

    return check


@dataclass
class _Record:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class LoginThrottle:
    """Failed logins per client address and the lock-outs they earn; the clock is injected for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._records: dict[str, _Record] = {}

    def wait(self, address: str) -> float:
        """Seconds before `address` may try again (0: it may try now)."""
        record = self._fresh(address)
        return max(0.0, record.locked_until - self.clock()) if record else 0.0

    def failed(self, address: str) -> float:
        """Count a wrong password from `address`; returns the lock-out it earned (0 while still free)."""
        now = self.clock()
        record = self._fresh(address) or self._records.setdefault(address, _Record())
        record.failures += 1
        record.last_failure = now
        doublings = record.failures - FREE_FAILURES
        delay = min(BASE_DELAY_S * 2.0 ** min(doublings, 32), MAX_DELAY_S) if doublings >= 0 else 0.0
        record.locked_until = now + delay
        if len(self._records) > MAX_TRACKED:
            self._forget_quiet(now)
        return delay

    def succeeded(self, address: str) -> None:
        self._records.pop(address, None)

    def _fresh(self, address: str) -> _Record | None:
        record = self._records.get(address)
        if record is not None and self.clock() - record.last_failure > FORGET_AFTER_S:
            del self._records[address]
            return None
        return record

    def _forget_quiet(self, now: float) -> None:
        by_age = sorted(self._records.items(), key=lambda item: item[1].last_failure)
        for address, record in by_age[: len(by_age) - MAX_TRACKED // 2]:
            if record.locked_until <= now:
                del self._records[address]


class LoginGate:
    """ASGI middleware: the session cookie on every route but the login page's, and the brake on `/login`."""

    def __init__(self, app: Any, throttle: LoginThrottle | None = None) -> None:
        self.app = app
        self.throttle = throttle or LoginThrottle()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # per address: its lock, requests holding it

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if scope["type"] == "http" and scope["method"] == "POST" and path in LOGIN_PATHS:
            await self._login(scope, receive, send)
        elif _is_public(path) or _has_session(scope) or _is_gradio_startup(scope):
            await self.app(scope, receive, send)
        else:
            await refuse(scope, send, 401, {"error": "Not authenticated", "auth_message": "log in first"})

    async def _login(self, scope: dict, receive: Callable, send: Callable) -> None:
        address = (scope.get("client") or ("unknown", 0))[0]
        lock, users = self._locks.get(address) or (asyncio.Lock(), 0)
        self._locks[address] = (lock, users + 1)
        try:
            async with lock:  # one attempt per address at a time: each sees the count the previous one left
                await self._checked_login(address, scope, receive, send)
        finally:
            lock, users = self._locks[address]
            if users == 1:
                del self._locks[address]
            else:
                self._locks[address] = (lock, users - 1)

    async def _checked_login(self, address: str, scope: dict, receive: Callable, send: Callable) -> None:
        wait = self.throttle.wait(address)
        if wait > 0:
            seconds = math.ceil(wait)
            await refuse(scope, send, 429, f"too many failed logins from {address}: try again in {seconds} s",
                         retry_after=seconds)
            return
        status: list[int] = []

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, watch)
        if status == [200]:
            self.throttle.succeeded(address)
        elif status == [400]:  # Gradio's answer to a wrong user or password
            self.throttle.failed(address)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _has_session(scope: dict) -> bool:
    """The cookie Gradio sets at login names a live session of this app (as Gradio's own `login_check`)."""
    app = scope.get("app")
    cookies = HTTPConnection(scope).cookies
    cookie_id = getattr(app, "cookie_id", None)
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return bool(token) and token in getattr(app, "tokens", {})


def _is_gradio_startup(scope: dict) -> bool:
    """`launch` calls the start-up route itself, without a cookie; it answers that call and no later one."""
    return scope["path"] == STARTUP_PATH and not getattr(scope.get("app"), "startup_events_triggered", True)


