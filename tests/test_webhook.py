"""The optional webhook: match events POSTed to a URL, signed, in order, at least once, by one process.

The sender against a real Redis and a real HTTP receiver on loopback; then ``quaid serve`` with
``QUAID_EVENT_WEBHOOK`` set, end to end.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import tempfile
import threading
import time
from pathlib import Path

import pytest
from flask import Flask, request
from serverproc import ServerProcess
from werkzeug.serving import make_server

from engine.config import load_settings
from engine.errors import BadInput
from engine.store import keys
from engine.webhook import DeliveryFailed, WebhookSender
from tests.drawing import variant
from tests.test_hash_search import png
from tests.test_orb import site_page

SECRET = "test-only-webhook-secret"


class Receiver:
    """An HTTP endpoint that records what it receives; ``refuse`` answers 500 that many times."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, dict]] = []  # (headers, body)
        self.refuse = 0
        app = Flask("receiver")

        @app.post("/hook")
        def hook():
            if self.refuse:
                self.refuse -= 1
                return "down", 500
            self.received.append((dict(request.headers), request.get_data()))
            return "", 204

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.close()


def add_pair(quaid, seed: int) -> str:
    """A page, then its copy (which announces the page); the copy's id."""
    page = png(site_page(seed))
    quaid.add(page)
    return quaid.add(variant(page, 1.0, quality=90)).id


def test_events_after_the_start_are_delivered_signed_and_once(quaid, receiver):
    old = add_pair(quaid, 11)  # before the webhook: the API serves it, the webhook does not
    sender = WebhookSender(quaid.redis, receiver.url, SECRET)
    sender.start_position()
    new = add_pair(quaid, 12)
    assert sender.deliver() == 1
    [(headers, body)] = receiver.received
    assert json.loads(body)["id"] == new and old not in body.decode()
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Quaid-Signature"] == expected
    assert headers["X-Quaid-Event"] == json.loads(body)["event"]
    assert sender.deliver() == 0 and len(receiver.received) == 1
    restarted = WebhookSender(quaid.redis, receiver.url, SECRET)  # another process, later
    sender._release_lock()
    restarted.start_position()
    assert restarted.deliver() == 0 and len(receiver.received) == 1


def test_a_refused_event_is_sent_again_and_nothing_after_it_first(quaid, receiver):
    sender = WebhookSender(quaid.redis, receiver.url)
    sender.start_position()
    first, second = add_pair(quaid, 13), add_pair(quaid, 14)
    receiver.refuse = 1
    with pytest.raises(DeliveryFailed, match="HTTP 500"):
        sender.deliver()
    assert receiver.received == []
    assert sender.deliver() == 2
    assert [e["id"] for e in receiver.events()] == [first, second]
    assert "X-Quaid-Signature" not in receiver.received[0][0]  # no secret, no signature


def test_an_unreachable_url_keeps_the_event(quaid, receiver):
    sender = WebhookSender(quaid.redis, "http://127.0.0.1:9/hook")
    sender.start_position()
    add_pair(quaid, 15)
    before = quaid.redis.get(keys.WEBHOOK_POSITION)
    with pytest.raises(DeliveryFailed, match="not delivered"):
        sender.deliver()
    assert quaid.redis.get(keys.WEBHOOK_POSITION) == before


def test_one_process_sends(quaid, receiver):
    first = WebhookSender(quaid.redis, receiver.url)
    second = WebhookSender(quaid.redis, receiver.url)
    first.start_position()
    add_pair(quaid, 16)
    assert first.deliver() == 1
    add_pair(quaid, 17)
    assert second.deliver() == 0  # the first one holds the lock
    assert first.deliver() == 1 and len(receiver.received) == 2


@pytest.mark.parametrize("url", ["ftp://example.org/hook", "hook.example.org", "http://a b/"])
def test_a_webhook_that_is_not_an_http_url_is_refused(url):
    with pytest.raises(BadInput, match="event_webhook"):
        load_settings(event_webhook=url)


def test_quaid_serve_posts_match_events_to_the_webhook(receiver):
    home = Path(tempfile.mkdtemp(prefix="quaid-webhook-"))
    env = {"QUAID_EVENT_WEBHOOK": receiver.url, "QUAID_EVENT_WEBHOOK_SECRET": SECRET}
    with ServerProcess(home, env) as server:
        page = png(site_page(18))
        for data in (page, variant(page, 1.0, quality=90)):
            response = server.post("/api/v1/pictures", files={"file": ("p.png", data)})
            assert response.status_code == 201, response.text
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.2)
        events = server.get("/api/v1/events").json()["events"]
    assert receiver.events() == events and len(events) == 1
    assert "match events are sent to" in server.log() and SECRET not in server.log()
