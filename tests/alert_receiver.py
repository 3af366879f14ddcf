"""A webhook receiver for the alert tests: an HTTP server on 127.0.0.1 that records each body it accepts and
answers from a script (a status per request, or "hang" to never answer), so retries and dead receivers can be
played out without the network."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """`with Receiver(["500", "200"]) as r:` -> r.url; r.bodies holds what it accepted, r.requests every try."""

    def __init__(self, script: list[str] | None = None, default: str = "200") -> None:
        self.script, self.default = list(script or []), default
        self.bodies: list[dict[str, Any]] = []
        self.requests = 0
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    receiver.requests += 1
                    answer = receiver.script.pop(0) if receiver.script else receiver.default
                if answer == "hang":
                    receiver.release.wait(30)
                    return
                status = int(answer)
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.bodies.append({**body, "_auth": self.headers.get("Authorization")})
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"try later")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
