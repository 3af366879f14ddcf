"""`calmops serve`: run every pipeline of a config folder continuously, with the watcher, projections and UI.

Starts (or joins, with --ray-address) Ray, the supervisor (one actor per config), the file watcher, the
projection updater and the Gradio UI; prints the UI URL, the Ray dashboard URL and the home folder. Ctrl-C
and SIGTERM stop it cleanly; everything already recorded stays in the log, and the next `serve` carries on
where this one stopped.

`--demo` needs no configuration: it writes three demo pipelines into <home>/pipelines and feeds them
drifting data live, so within about two minutes the UI shows drift, retraining and promotions.

Alerts (docs/alerts.md): each pipeline's `[[alerts]]` sinks, else the config folder's `alerts.toml`, hear about
drift, promotions, rollbacks, an open circuit and rejected files; `--alert-webhook URL` adds one webhook for
every pipeline of the folder without its own sinks (`serve --demo --alert-webhook http://127.0.0.1:9000/hook`).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from calmops_actors.cli_common import add_home_option, resolve_home, writable_home
from calmops_actors.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="run all pipelines continuously: watcher, actors, projections and the UI",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  calmops serve --demo\n  calmops serve --config-dir pipelines/ --ui-port 8080\n"
               "  calmops serve --config-dir pipelines/ --no-ui --ray-address ray://head:10001")
    p.add_argument("--config-dir", type=Path, default=None,
                   help="folder of pipeline configs (*.toml); default: <home>/pipelines")
    p.add_argument("--demo", action="store_true", help="create and feed three demo pipelines (no setup needed)")
    p.add_argument("--demo-interval", type=float, default=5.0, help="--demo: seconds between blocks (default 5)")
    p.add_argument("--ui-port", type=int, default=7860, help="UI port (default 7860)")
    p.add_argument("--ui-host", default="127.0.0.1",
                   help="UI bind address (default 127.0.0.1; 0.0.0.0 exposes it: use --ui-auth then)")
    p.add_argument("--ui-auth", default=None, metavar="USER:PASSWORD",
                   help="turn on the UI's login (also $CALMOPS_UI_AUTH); enables rollback/resume buttons")
    p.add_argument("--ui-allowed-hosts", default="", metavar="NAME[,NAME...]",
                   help="host names the UI answers to besides localhost and --ui-host (a proxy's or the "
                        "machine's name; * turns the check off); other Host headers get 400 (DNS rebinding)")
    p.add_argument("--no-ui", action="store_true", help="do not start the UI")
    p.add_argument("--alert-webhook", default=None, metavar="URL",
                   help="also send the alerts of every pipeline without [[alerts]] of its own to this http(s) "
                        "webhook (JSON with a Slack-compatible `text`; see docs/alerts.md)")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster instead of starting a local one")
    p.add_argument("--scan-interval", type=float, default=5.0, help="seconds between config folder scans")
    p.add_argument("--idle-seconds", type=float, default=300.0, metavar="S",
                   help="stop a pipeline's actor after S seconds without work (its next file starts it again; "
                        "[lifecycle] idle_seconds overrides it per pipeline); 0: never (default 300)")
    p.add_argument("--exit-after", type=float, default=None, help=argparse.SUPPRESS)  # tests and benchmarks
    add_home_option(p)
    p.set_defaults(func=run)


def parse_auth(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise UserError("--ui-auth must look like USER:PASSWORD")
    return user, password


class Actions:
    """The UI's only write path (rollback, resume), through the same actor methods as the CLI."""

    def __init__(self, supervisor) -> None:
        self.supervisor = supervisor

    def rollback(self, pipeline: str, version: str, reason: str) -> dict:
        import ray

        actor = self.supervisor.active_actor(pipeline, "rollback from the UI")
        if actor is None:
            return {"ok": False, "message": f"no pipeline {pipeline!r}"}
        return ray.get(actor.rollback.remote(version, reason))

    def resume(self, pipeline: str, reason: str) -> dict:
        import ray

        actor = self.supervisor.active_actor(pipeline, "resume from the UI")
        if actor is None:
            return {"ok": False, "message": f"no pipeline {pipeline!r}"}
        return ray.get(actor.resume.remote(reason))


def token_hint() -> str:
    """Where the dashboard's token comes from, when Ray's token authentication is on (the default)."""
    if os.environ.get("RAY_AUTH_MODE", "token") != "token":  # unset: Ray's default, token
        return ""
    ray_cli = Path(sys.executable).parent / "ray"
    return f"  (it asks for Ray's token once: `{ray_cli if ray_cli.exists() else 'ray'} get-auth-token`)"


def setup_logging(path: Path) -> None:
    """Our log lines go to <home>/logs/serve.log; chatty HTTP client logs are kept out of the terminal."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    calmops = logging.getLogger("calmops")
    calmops.setLevel(logging.INFO)
    calmops.addHandler(handler)
    calmops.propagate = False  # a library's basicConfig would echo them to the terminal; serve prints its own lines
    for noisy in ("httpx", "httpcore", "gradio", "uvicorn", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def load_folder_sinks(config_dir: Path, webhook: str | None) -> tuple:
    """The folder's default sinks (`alerts.toml`, plus `--alert-webhook`); a ConfigError names file and key."""
    from calmops_actors.alerts.folder import folder_sinks, webhook_sink
    from pipelines.config.pipeline import ConfigError

    try:
        sinks = folder_sinks(config_dir) if config_dir.is_dir() else ()
        return sinks + ((webhook_sink(webhook),) if webhook else ())
    except ConfigError as err:
        raise UserError(str(err)) from None


def start_alerts(home, ui_url: str | None):
    """The alert dispatcher, started before any pipeline records: the sinks hear all this serve records."""
    from calmops_actors.alerts.dispatcher import AlertDispatcher

    return AlertDispatcher(home.open_store(), home.root / "alerts", ui_url=ui_url)


PARSED: dict = {}  # (config path, content sha256) -> its parsed config, for `update_alerts`


def update_alerts(dispatcher, config_dir: Path, folder: tuple, webhook: str | None) -> tuple:
    """Point the sinks at the folder's pipelines; called *before* each scan, so a sink knows a pipeline before the
    pipeline records anything. The configs are read here (as the supervisor will); one it refuses has no alerts,
    and a broken alerts.toml keeps the last good folder sinks."""
    from calmops_actors.alerts.folder import FOLDER_FILE, routes_for
    from calmops_actors.supervisor import Supervisor
    from pipelines.config.pipeline import ConfigError

    try:
        folder = load_folder_sinks(config_dir, webhook)
    except UserError as err:
        print(f"  config rejected: {err}", file=sys.stderr, flush=True)
    configs = {}
    for path in sorted(config_dir.glob("*.toml")):
        try:
            if path.name != FOLDER_FILE:
                data = path.read_bytes()
                key = (path, hashlib.sha256(data).hexdigest())
                if key not in PARSED:  # parsed once per content: 500 configs every scan cost 0.7 s of CPU
                    PARSED[key] = Supervisor.parse(path, data)[1]
                config = PARSED[key]
                configs.setdefault(config.name, (config, path))
        except (ConfigError, OSError):
            continue  # the supervisor reports it
    routes = routes_for(configs, folder, config_dir)
    if set(dispatcher.workers) != {r.id for r in routes}:
        print(f"  alerts    {', '.join(sorted(r.id for r in routes)) or '(no sinks)'}", flush=True)
    dispatcher.configure(routes)
    return folder


def run(args: argparse.Namespace) -> int:
    t_start = time.monotonic()
    home_path = resolve_home(args).resolve()
    auth = parse_auth(args.ui_auth or os.environ.get("CALMOPS_UI_AUTH"))
    if args.ui_host not in ("127.0.0.1", "localhost", "::1") and auth is None and not args.no_ui:
        print(f"warning: the UI listens on {args.ui_host} without --ui-auth: anyone who reaches it can read "
              "your pipelines", file=sys.stderr)
    home = writable_home(home_path)
    from calmops_actors.home_lock import hold_for_serve

    hold_for_serve(home.root)  # one owner per home, held until this process ends
    try:
        setup_logging(home.logs / "serve.log")
    except OSError as err:
        raise UserError(f"cannot write {home.logs / 'serve.log'}: {err.strerror}") from None
    config_dir = args.config_dir.resolve() if args.config_dir else home.demo_configs
    feeder = None
    if args.demo:
        from calmops_actors.demo import DemoFeeder, write_demo_configs

        config_dir = write_demo_configs(home_path)
    if not config_dir.is_dir():
        raise UserError(f"config folder {config_dir} does not exist; create it with a pipeline config "
                        "(`calmops init NAME`), or run `calmops serve --demo`")
    folder = load_folder_sinks(config_dir, args.alert_webhook)  # a broken alerts.toml stops serve before Ray

    preload = None
    if not args.no_ui:  # import the UI stack (gradio, plotly) while Ray starts: both take seconds
        preload = threading.Thread(target=lambda: __import__("ui.server"), name="calmops-preload", daemon=True)
        preload.start()
    from calmops_actors.runtime import local_dashboard, start_ray
    from calmops_actors.supervisor import Supervisor

    print(f"calmops serve: home {home_path}", flush=True)
    print(f"  configs   {config_dir}", flush=True)
    ray_info = start_ray(args.ray_address, dashboard=local_dashboard())
    if ray_info.get("dashboard_url"):
        print(f"  Ray dashboard  {ray_info['dashboard_url']}{token_hint()}", flush=True)
    if args.idle_seconds < 0:
        raise UserError(f"--idle-seconds is {args.idle_seconds:g}; allowed: 0 (never) or more")
    supervisor = Supervisor(home_path, config_dir, idle_seconds=args.idle_seconds or None)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    updater = dispatcher = None
    try:
        from calmops_actors.projector import ProjectionUpdater

        updater = ProjectionUpdater(home_path).start()
        if not args.no_ui:
            preload.join()
            from ui.server import launch

            url = launch(home_path, host=args.ui_host, port=args.ui_port, auth=auth,
                         allowed_hosts=args.ui_allowed_hosts,
                         ray_dashboard_url=ray_info.get("dashboard_url"),
                         actions=Actions(supervisor) if auth else None, block=False)
            print(f"  UI        {url}  (ready {time.monotonic() - t_start:.1f} s after start)", flush=True)
        dispatcher = start_alerts(home, None if args.no_ui else str(url))
        folder = update_alerts(dispatcher, config_dir, folder, args.alert_webhook)
        report = supervisor.scan()
        for message in report.errors.values():
            print(f"  config rejected: {message}", file=sys.stderr, flush=True)
        print(f"  pipelines {', '.join(sorted(supervisor.pipelines)) or '(none yet)'}", flush=True)
        idle = sorted(n for n in supervisor.pipelines if n not in supervisor.actors())
        if idle:
            print(f"  idle      {', '.join(idle)} (no work: started again by their next file)", flush=True)
        if args.demo:
            feeder = DemoFeeder(home_path, args.demo_interval).start()
            print(f"  demo: writing a block per pipeline every {args.demo_interval:g} s", flush=True)
        print("Ctrl-C stops.", flush=True)
        last_scan = time.monotonic()
        shown = [0, 0]  # activations and passivations printed so far
        while not stop.is_set():
            for result in supervisor.poll():
                if result.get("outcome") == "rejected":
                    print(f"  rejected {result['message']}", file=sys.stderr, flush=True)
            for a in supervisor.activations[shown[0]:]:
                print(f"  started   {a['pipeline']}: {a['reason']}", flush=True)
            for p in supervisor.passivations[shown[1]:]:
                print(f"  idle      {p['pipeline']}: stopped after {p['idle_seconds']:.0f} s without work", flush=True)
            shown = [len(supervisor.activations), len(supervisor.passivations)]
            if time.monotonic() - last_scan >= args.scan_interval:
                folder = update_alerts(dispatcher, config_dir, folder, args.alert_webhook)
                for message in supervisor.scan().errors.values():
                    print(f"  config rejected: {message}", file=sys.stderr, flush=True)
                last_scan = time.monotonic()
            if args.exit_after is not None and time.monotonic() - t_start >= args.exit_after:
                break
            stop.wait(1.0)
    finally:
        print("stopping...", flush=True)
        if feeder is not None:
            feeder.stop()
        supervisor.close()
        if dispatcher is not None:
            dispatcher.stop()
            dispatcher.store.close()
        if updater is not None:
            updater.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        import ray

        ray.shutdown()
        print("stopped.", flush=True)
    return 0
