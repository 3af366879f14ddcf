"""Start the UI for a home folder: bind address, port, optional login, the operator actions behind it.

The UI binds 127.0.0.1 unless told otherwise. `auth=(user, password)` turns on Gradio's login page for every
page and API route; only then are the rollback/resume controls built (with `actions`). Gradio's analytics are
switched off. The projection tables are kept current by the caller (`calmops serve` runs a
`ProjectionUpdater`); this module only reads them.

Two guards sit in front of Gradio's routes (ASGI middleware, passed in when Gradio builds its FastAPI app):
`ui.hosts.HostCheck` refuses foreign `Host` names (DNS rebinding), and with a login `ui.login.LoginGate`
requires the session on every route but the login page's and slows password guessing. FastAPI's own
`/openapi.json` is switched off: the UI is not an API.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["UIHandle", "launch"]

log = logging.getLogger(__name__)


class UIHandle(str):
    """The UI's URL (a str, as printed by `serve`) that can also stop the server: `handle.close()`."""

    app: Any

    def close(self) -> None:
        self.app.close()


def launch(
    home: Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    ray_dashboard_url: str | None = None,
    actions: Any = None,
    block: bool = True,
    allowed_hosts: str | Sequence[str] = (),
) -> UIHandle:
    """Serve the UI of `home` on http://host:port; returns the URL (after Ctrl-C when `block`).

    `actions` (an object with `rollback(pipeline, version, reason)` and `resume(pipeline, reason)`) is used
    only with `auth`: without a login the UI stays read-only and the controls are not shown.
    `allowed_hosts` are the names (a list, or one comma-separated string) the UI answers to besides localhost
    and the bound address (`ui.hosts`).
    """
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import gradio as gr
    from starlette.middleware import Middleware

    from ui.app import APP_CSS, build_app
    from ui.hosts import HostCheck, allowed_names
    from ui.login import LoginGate, credentials
    from ui.queries import Queries

    if auth is not None and (len(auth) != 2 or not all(isinstance(x, str) and x for x in auth)):
        raise ValueError("auth must be a (user, password) pair of non-empty strings")
    if actions is not None and auth is None:
        log.warning("UI: rollback/resume controls need a login (auth); serving read-only")
        actions = None
    home = Path(home)
    app = build_app(Queries(home / "projections.sqlite", home / "log.sqlite"),
                    ray_dashboard_url=ray_dashboard_url, actions=actions)
    app.queue(default_concurrency_limit=4)
    guards = [Middleware(HostCheck, names=allowed_names(host, allowed_hosts))]
    if auth is not None:
        guards.append(Middleware(LoginGate))
    try:
        _, url, _ = app.launch(
            server_name=host, server_port=int(port), prevent_thread_lock=True, quiet=True,
            auth=credentials(*auth) if auth else None, app_kwargs={"openapi_url": None, "middleware": guards},
            auth_message="calmops: sign in to see the pipelines" if auth else None, ssr_mode=False,
            footer_links=["settings"], theme=gr.themes.Soft(), css=APP_CSS, show_error=False,
        )
    except OSError as err:
        raise OSError(f"cannot serve the UI on {host}:{port} ({err}); pick another port (--ui-port)") from err
    handle = UIHandle(url)
    handle.app = app
    if block:
        app.block_thread()
    return handle
