"""Refuse requests addressed to a foreign host name: a UI on 127.0.0.1 stays unreadable by DNS rebinding.

A page on `evil.example` can re-point that name at 127.0.0.1 and then read a local server as its own origin;
the only trace is the `Host` header, which a page cannot forge and which then says `evil.example`. `HostCheck`
(ASGI middleware in front of Gradio) answers 400 to any request whose host is not one of `allowed_names`:
`localhost`, `127.0.0.1`, `::1`, the bound address, and the names given to `launch(allowed_hosts=...)`
(a reverse proxy's public name, a machine name). The port is not compared: an SSH tunnel
(`ssh -L 9000:127.0.0.1:7860`) reaches the UI as `localhost:9000`, and a rebinding attack is told apart by its
name, not its port. When the UI is bound to every interface (`0.0.0.0`, `::`) any IP address is accepted as
a host too: an address cannot be rebound, and the machine's own addresses are not known in advance. `"*"` in
`allowed_hosts` turns the check off (for a proxy that rewrites `Host`).

>>> names = allowed_names("127.0.0.1", ["calmops.example.org"])
>>> [host_allowed(h, names) for h in ("127.0.0.1:7860", "localhost:9000", "[::1]:7860", "LOCALHOST.")]
[True, True, True, True]
>>> [host_allowed(h, names) for h in ("evil.example:7860", "10.0.0.5:7860", "", "calmops.example.org")]
[False, False, False, True]
>>> host_allowed("192.168.1.20:7860", allowed_names("0.0.0.0"))
True
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from ui.asgi import refuse

__all__ = ["ANY_ADDRESS", "HostCheck", "allowed_names", "host_allowed"]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
ANY_ADDRESS = "<any IP address>"  # in `allowed_names`: the UI is bound to every interface


def allowed_names(bound: str, extra: str | Iterable[str] = ()) -> frozenset[str]:
    """The host names a request may carry for a UI bound to `bound`, plus `extra` (names, or one string of
    comma-separated names, as a command line gives them; normalised, ports dropped)."""
    extra = extra.split(",") if isinstance(extra, str) else extra
    names = {*LOOPBACK_NAMES, *(_name(h) for h in extra if h.strip())}
    if bound in WILDCARD_BINDS:
        names.add(ANY_ADDRESS)
    else:
        names.add(_name(bound))
    return frozenset(names)


def host_allowed(host: str, names: frozenset[str]) -> bool:
    """Whether a request whose `Host` header is `host` (with or without a port) is for this UI."""
    if "*" in names:
        return True
    name = _name(host)
    if not name:
        return False
    return name in names or (ANY_ADDRESS in names and _is_address(name))


def _name(host: str) -> str:
    """`Host` header or configured name -> lower-case name without port, brackets or trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:7860
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        host = host.partition(":")[0]
    return host.rstrip(".")


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheck:
    """ASGI middleware: 400 for a request whose `Host` is not one of `names` (see `allowed_names`)."""

    def __init__(self, app: Any, names: frozenset[str]) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] in ("http", "websocket"):
            host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), "")
            if not host_allowed(host, self.names):
                await refuse(scope, send, 400, f"host {host!r} is not served here; to reach the UI under "
                             "that name, allow it: calmops serve --ui-allowed-hosts NAME")
                return
        await self.app(scope, receive, send)
