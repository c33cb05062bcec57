"""Match events pushed to a URL: ``quaid serve`` POSTs each one as JSON (the optional webhook).

Why: a consumer that does not poll ``GET /api/v1/events`` (a SOAR playbook, a chat bot)
gets each "a new picture matches earlier ones" event (:mod:`engine.store.match_events`)
as it happens. Set ``event_webhook`` (``QUAID_EVENT_WEBHOOK``) to the URL.

Delivery is at least once and in order: the position of the last event the URL accepted
(any 2xx) is kept in Redis (``quaid:events:webhook:position``); an event the URL refuses or
does not answer within TIMEOUT seconds is sent again, after a pause that doubles up to
MAX_BACKOFF seconds, and nothing after it is sent before it. The first start begins at the
newest event: the webhook announces what happens from then on (the API serves the past).
One process of a deployment sends (a lock key, ``quaid:events:webhook:lock``, renewed while
it runs), so several ``quaid serve`` processes sharing one Redis do not send twice.

With ``event_webhook_secret`` (``QUAID_EVENT_WEBHOOK_SECRET``) each body is signed:
``X-Quaid-Signature: sha256=<hex HMAC-SHA256 of the body under the secret>``, the scheme
GitHub's webhooks use, so the receiver can refuse events quaid did not send. Each request
also carries ``X-Quaid-Event: <position>``, which a receiver can use to drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading

import redis
import requests

from engine.config import redact_url
from engine.store import keys
from engine.store.match_events import MatchEvents

log = logging.getLogger("quaid.webhook")

TIMEOUT = 10.0  # seconds the URL has to answer one event
POLL = 2.0  # seconds between two looks at the stream when nothing is pending
MAX_BACKOFF = 300.0  # seconds, at most, between two attempts at an event the URL refused
LOCK_MS = 60_000  # the sender's lock lasts this long unless renewed (a dead process frees it)
PAGE = 100  # events read at a time


class DeliveryFailed(Exception):
    """The URL did not accept an event (no answer, or not 2xx); it is sent again later."""


class WebhookSender:
    """Sends the match events after the kept position to ``url``, oldest first."""

    def __init__(self, client: redis.Redis, url: str, secret: str = "",
                 session: requests.Session | None = None) -> None:
        self.redis = client
        self.url = url
        self.secret = secret.encode()
        self.events = MatchEvents(client)
        self.session = session or requests.Session()
        self.token = secrets.token_hex(16)  # whose lock it is

    def start_position(self) -> None:
        """On the very first start, begin at the newest event (kept once set)."""
        self.redis.set(keys.WEBHOOK_POSITION, self.events.last(), nx=True)

    def deliver(self) -> int:
        """Send the pending events in order (while this process holds the lock); how many the URL
        accepted. Raises :class:`DeliveryFailed` at the first one it does not accept."""
        sent = 0
        while self._hold_lock():
            position = self.redis.get(keys.WEBHOOK_POSITION)
            page = self.events.read(_text(position) if position else "0-0", PAGE)
            if page["missed"]:
                log.warning("webhook: match events after %s were dropped before being sent", _text(position))
            if not page["events"]:
                return sent
            for event in page["events"]:
                self._post(event)
                self.redis.set(keys.WEBHOOK_POSITION, event["event"])
                sent += 1
        return sent

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; a refusal pauses 1, 2, 4 ... MAX_BACKOFF seconds."""
        failures, pause = 0, 0.0
        while not stop.wait(pause):
            try:
                self.start_position()
                self.deliver()
                failures, pause = 0, POLL
            except (DeliveryFailed, redis.RedisError) as exc:
                failures += 1
                pause = min(MAX_BACKOFF, 2.0 ** (failures - 1))
                log.warning("webhook %s: %s; next attempt in %g s", redact_url(self.url), exc, pause)
        self._release_lock()

    def signature(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    def _post(self, event: dict) -> None:
        body = json.dumps(event, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "X-Quaid-Event": event["event"],
                   "User-Agent": "quaid-webhook"}
        if self.secret:
            headers["X-Quaid-Signature"] = self.signature(body)
        try:
            answer = self.session.post(self.url, data=body, headers=headers, timeout=TIMEOUT,
                                       allow_redirects=False)
        except requests.RequestException as exc:
            raise DeliveryFailed(f"event {event['event']} not delivered: {type(exc).__name__}") from None
        if not 200 <= answer.status_code < 300:
            raise DeliveryFailed(f"event {event['event']} refused with HTTP {answer.status_code}")

    def _hold_lock(self) -> bool:
        if self.redis.set(keys.WEBHOOK_LOCK, self.token, nx=True, px=LOCK_MS):
            return True
        if _text(self.redis.get(keys.WEBHOOK_LOCK) or b"") == self.token:
            self.redis.pexpire(keys.WEBHOOK_LOCK, LOCK_MS)
            return True
        return False

    def _release_lock(self) -> None:
        if _text(self.redis.get(keys.WEBHOOK_LOCK) or b"") == self.token:
            self.redis.delete(keys.WEBHOOK_LOCK)


def start_webhook(client: redis.Redis, url: str, secret: str, stop: threading.Event) -> threading.Thread:
    """The sender in a daemon thread of ``quaid serve``, until ``stop`` is set."""
    sender = WebhookSender(client, url, secret)
    sender.start_position()  # before the service answers: its first additions are announced
    thread = threading.Thread(target=sender.run, args=(stop,), name="quaid-webhook", daemon=True)
    thread.start()
    log.info("match events are sent to %s%s", redact_url(url), " (signed)" if secret else "")
    return thread


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
