"""``quaid serve``: the HTTP service under waitress, with background batch-job workers.

Why waitress: a production WSGI server in pure Python (no compiler, runs on
every platform MISP and AIL run on), with a thread pool for requests and a hard
cap on request bodies. Waitress refuses a body over ``max_request_body_size``
from its ``Content-Length`` alone, before reading it, so a multi-gigabyte upload
costs nothing; :class:`_JsonChannel` makes that refusal answer the API's JSON
error shape instead of waitress's plain text.

Several ``quaid serve`` processes (on several hosts) can share one Redis
(``QUAID_REDIS_URL``): pictures, clusters, jobs and reviews all live in Redis,
and each process keeps its in-memory index in sync from the change stream.
TLS: run behind a reverse proxy (nginx, Apache) that terminates HTTPS and
forwards to 127.0.0.1; quaid itself serves plain HTTP on loopback by default.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading

from waitress import create_server
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

from engine.config import load_settings

log = logging.getLogger("quaid.serve")
SNAPSHOT_EVERY = 600.0  # seconds between index snapshots of a running service (when it changed)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="run the HTTP service (JSON API, web UI, batch-job workers)",
        description="Serve the JSON API (/api/v1), the web UI (/) and batch jobs. Binds to 127.0.0.1 "
                    "by default; any other address needs API keys (QUAID_WRITE_KEYS / QUAID_READ_KEYS). "
                    "Uses QUAID_REDIS_URL, or starts the embedded Redis in QUAID_HOME.")
    p.add_argument("--host", default=None, help="address to bind (default: settings.host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="background batch-job worker threads (default 2; 0 for none)")
    p.add_argument("--threads", type=int, default=4, metavar="T", help="request threads (default 4)")
    p.add_argument("--prepare-workers", type=int, default=None, metavar="N",
                   help="processes decoding the pictures of add jobs in parallel (default: one per core)")
    p.add_argument("--claim-after", type=float, default=60.0, metavar="SECONDS",
                   help="take over a job whose worker has been silent this long (default 60)")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    # The service (Flask, the engine, faiss) is imported here, not at module level, so that
    # every other `quaid` command starts without paying for it.
    from engine.service.app import create_app, job_batch_handler, job_handler, request_limit
    from engine.service.auth import check_bind
    from engine.service.jobs import start_workers

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader logs every CPU probe
    settings = load_settings(host=args.host, port=args.port)
    check_bind(settings)  # before starting anything
    _one_openmp_thread()
    app = create_app(settings)
    server = create_server(
        app, host=settings.host, port=settings.port, threads=max(1, args.threads), ident="quaid",
        max_request_body_size=request_limit(settings), clear_untrusted_proxy_headers=True,
    )
    server.channel_class = _JsonChannel
    stop, workers = start_workers(app.extensions["quaid_redis"], job_handler(app), max(0, args.workers),
                                  claim_idle=args.claim_after,
                                  batch=job_batch_handler(app, args.prepare_workers))
    snapshots = _start_snapshots(app.extensions["quaid"], stop)
    webhook = []
    if settings.event_webhook:  # match events pushed to a URL (engine.webhook)
        from engine.webhook import start_webhook

        webhook.append(start_webhook(app.extensions["quaid_redis"], settings.event_webhook,
                                     settings.event_webhook_secret, stop))
    signal.signal(signal.SIGTERM, _interrupt)
    host, port = server.effective_host, server.effective_port
    print(f"quaid serving on http://{_url_host(host)}:{port} ({len(workers)} job workers)",
          file=sys.stderr, flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.close()
        for thread in [*workers, snapshots, *webhook]:
            thread.join(timeout=5)
        if "quaid_preparer" in app.extensions:
            app.extensions["quaid_preparer"].close()
        app.extensions["quaid"].close()
    print("quaid stopped", file=sys.stderr)
    return 0


class _JsonErrorTask(ErrorTask):
    """Waitress's own refusals (body too large, malformed request) in the API's ``{"error"}`` shape."""

    def execute(self) -> None:
        error = self.request.error
        body = json.dumps({"error": f"{error.reason}: {error.body}"}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _JsonChannel(HTTPChannel):
    error_task_class = _JsonErrorTask


def _one_openmp_thread() -> None:
    """Parallelism comes from the request threads: faiss's OpenMP team per search only spins.

    Measured on 2 busy cores: IndexBinaryFlat.search of a small index took ~66 ms per call
    with the default team and vanished from the profile with one thread.
    """
    try:
        import faiss
    except ImportError:
        return
    faiss.omp_set_num_threads(1)


def _start_snapshots(quaid, stop: threading.Event) -> threading.Thread:
    """Every SNAPSHOT_EVERY seconds, write the index snapshot when it is due (enough changes since
    the last one, :meth:`engine.store.mirror.Mirror.snapshot_due`), so that a restart after a
    crash replays little; a clean stop writes one too."""

    def loop() -> None:
        while not stop.wait(SNAPSHOT_EVERY):
            try:
                quaid.mirror.sync()
                quaid.save_snapshot()
            except Exception:  # never let the snapshot take the service down: the next start rebuilds
                log.exception("index snapshot failed")

    thread = threading.Thread(target=loop, name="quaid-index-snapshot", daemon=True)
    thread.start()
    return thread


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
