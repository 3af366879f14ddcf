"""The one ASGI helper the UI's guards share (`ui.hosts`, `ui.login`): refuse a request before Gradio sees it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["refuse"]


async def refuse(scope: dict, send: Callable, status: int, detail: Any, retry_after: int | None = None) -> None:
    """Answer `status` with a small JSON body `{"detail": ...}` (a websocket is closed instead)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
