"""A client driven by the served OpenAPI document alone round-trips against a real ``quaid serve``:
add, search, get, patch, delete and a batch job, each answer validated against the document."""

from __future__ import annotations

import time

import pytest
from drawing import drawn, variant
from openapi_client import ApiError, DocumentClient
from serverproc import CLIENT_HEADER, ServerProcess

WRITE = "client-write-key-0123456"


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> DocumentClient:
    with ServerProcess(tmp_path_factory.mktemp("doc-client"), {"QUAID_WRITE_KEYS": WRITE}) as server:
        document = server.get("/api/v1/openapi.json").json()
        yield DocumentClient(server.url, document, key=WRITE, header_values={CLIENT_HEADER: "1"})


def test_round_trip_through_the_document(client):
    picture = drawn(951, size=(1280, 800))
    added = client.add_picture(file=("shot.png", picture), name="shot", tags=["misp", "phish"],
                               metadata={"event": 12})
    assert added["status"] == "added" and added["name"] == "shot"
    assert client.add_picture(file=("again.png", picture))["status"] == "duplicate"

    found = client.search(file=("query.jpg", variant(picture, scale=0.7, quality=75)), top=5)
    assert found["decision"] == "accepted" and found["matches"][0]["id"] == added["id"]
    assert found["matches"][0]["cluster"] == added["cluster"]

    record = client.get_picture(id=added["id"])
    assert record["tags"] == ["misp", "phish"] and record["metadata"] == {"event": 12}
    assert record["cluster"] == added["cluster"]
    patched = client.update_picture(id=added["id"], tags=["reviewed"], metadata={"event": 13})
    assert patched["tags"] == ["reviewed"] and patched["metadata"] == {"event": 13}
    assert client.get_picture(id=added["id"])["tags"] == ["reviewed"]

    job = client.submit_job(action="add", file=[("one.png", drawn(952)), ("two.png", drawn(953))],
                            tags=["batch"])
    state = client.get_job(job=job["job"])
    deadline = time.monotonic() + 120
    while state["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
        state = client.get_job(job=job["job"])
    assert state["status"] == "done" and [r["status"] for r in state["results"]] == ["added", "added"]
    assert client.get_picture(id=state["results"][0]["id"])["tags"] == ["batch"]

    assert client.delete_picture(id=added["id"]) == {"id": added["id"], "status": "deleted"}
    with pytest.raises(ApiError) as gone:
        client.get_picture(id=added["id"])
    assert gone.value.status == 404 and gone.value.error


def test_the_client_refuses_what_the_document_does_not_allow(client):
    with pytest.raises(AssertionError, match="pattern|does not match"):
        client.get_picture(id="not-a-sha256")
    with pytest.raises(AssertionError, match="knows no"):
        client.add_picture(file=("a.png", drawn(954)), colour="red")
