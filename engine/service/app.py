"""The Flask app factory: ``create_app(settings, quaid=None)``.

Where to start: this wires one blueprint per role — :mod:`.api` (JSON API),
:mod:`.compare` (visual differences), :mod:`.events` (match events), :mod:`.review` (review
queue), :mod:`.brands` (brands' own domains), :mod:`.noise` (noise bank), :mod:`.status`
(health), :mod:`.openapi` (the API document), :mod:`.ui` (web pages) — around one engine
facade (:class:`engine.core.Quaid`) and one Redis connection shared by the request threads.
Every request passes :mod:`.guard` (host names, origins: what a web page in the
analyst's browser could send) and then :mod:`.auth` (API keys). It does not serve:
:mod:`engine.cli.serve` runs it under waitress with the batch-job workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import redis
from flask import Flask

from engine.config import Settings
from engine.review import ReviewQueue, search_and_record
from engine.service import api, auth, brands, compare, events, guard, noise, openapi, review, status, ui
from engine.service.errors import register_error_handlers
from engine.service.inputs import FORM_FIELDS, FormRequest
from engine.service.jobs import BatchHandler, JobLimits, JobQueue
from engine.store.cluster import is_client

log = logging.getLogger("quaid.service")

MULTIPART_OVERHEAD = 64 * 1024  # bytes allowed above max_upload_bytes for form fields and boundaries


def create_app(settings: Settings, quaid: object | None = None) -> Flask:
    """Build the app. Opens the engine (starting the embedded Redis if needed) unless given one.

    Raises :class:`engine.service.auth.UnsafeBind` when ``settings.host`` is not
    loopback and no API key is configured.
    """
    auth.check_bind(settings)
    if quaid is None:
        from engine.core import Quaid

        quaid = Quaid.open(settings)
    app = Flask(__name__, static_folder=None)
    app.request_class = FormRequest
    app.config.update(
        MAX_CONTENT_LENGTH=request_limit(settings),
        MAX_FORM_PARTS=settings.max_job_files + FORM_FIELDS,
        QUAID_MAX_UPLOAD_BYTES=settings.max_upload_bytes,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    connection = redis_of(quaid)
    app.extensions.update(
        quaid=quaid, quaid_redis=connection, quaid_settings=settings,
        quaid_jobs=JobQueue(connection, limits=JobLimits(settings.max_job_files, settings.max_jobs_per_key,
                                                          settings.max_queued_jobs)),
        quaid_review=ReviewQueue(connection),
    )
    guard.install(app, settings)  # first: refuse browser-borne requests before looking at keys
    auth.install(app, settings)
    register_error_handlers(app)
    for blueprint in (api.blueprint, compare.blueprint, events.blueprint, review.blueprint, brands.blueprint,
                      noise.blueprint, status.blueprint, openapi.blueprint, ui.blueprint):
        app.register_blueprint(blueprint)
    return app


def request_limit(settings: Settings) -> int:
    """Largest request body accepted, in bytes: the upload limit plus room for the form."""
    return settings.max_upload_bytes + MULTIPART_OVERHEAD


def redis_of(quaid: object) -> redis.Redis:
    """The Redis connection the engine uses (the service keeps jobs and reviews next to it)."""
    for path in (("records", "redis"), ("redis",)):
        target = quaid
        for attr in path:
            target = getattr(target, attr, None)
        if is_client(target):  # one server or a Redis Cluster (engine.store.cluster)
            return target
    raise TypeError("the engine facade exposes no Redis connection (expected quaid.records.redis)")


def job_handler(app: Flask) -> Callable[[str, bytes, str, dict], dict]:
    """What a batch-job worker does with one file: the same as the synchronous endpoints."""

    def handle(action: str, data: bytes, name: str, options: dict) -> dict:
        quaid = app.extensions["quaid"]
        if action == "add":
            return quaid.add(data, name=name, tags=options.get("tags") or (),
                             metadata=options.get("metadata")).to_json()
        return search_and_record(quaid, app.extensions["quaid_review"], data, name,
                                 top=int(options.get("top") or 10), domain=options.get("domain") or None)

    return handle


def job_batch_handler(app: Flask, workers: int | None = None) -> BatchHandler:
    """What a batch-job worker does with an "add" job's files: :func:`engine.ingest.ingest`, with one
    pool of ``workers`` preparing processes (default: one per core) shared by every job worker."""
    from engine.ingest import Item, Preparer, default_workers, ingest

    preparer: list[Preparer] = []  # started on the first add job

    def handle_batch(files: Iterator[tuple[int, str, bytes]], options: dict) -> Iterator[tuple[int, dict]]:
        quaid = app.extensions["quaid"]
        if not preparer:
            preparer.append(app.extensions.setdefault(
                "quaid_preparer", Preparer(quaid.settings, workers or default_workers())))
        order: list[tuple[int, str]] = []

        def items() -> Iterator[Item]:
            for index, name, data in files:
                order.append((index, name))
                yield Item(name, data)

        outcomes = ingest(quaid, items(), options.get("tags") or (), options.get("metadata"),
                          preparer=preparer[0])
        for n, outcome in enumerate(outcomes):
            index, name = order[n]
            if outcome.result is None:
                yield index, {"file": name, "status": "error", "error": outcome.error}
            else:
                yield index, {"file": name, **outcome.result.to_json()}

    return handle_batch
