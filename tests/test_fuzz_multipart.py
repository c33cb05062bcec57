"""Property-based fuzzing (Hypothesis) of the multipart parsing behind every upload endpoint.

Hypothesis builds raw ``multipart/form-data`` bodies — odd boundaries, duplicated, unnamed or
unterminated parts, strange ``Content-Disposition`` quoting, non-UTF-8 names, fields the endpoints
read (``name``, ``tags``, ``metadata``, ``top``, ``action``) with hostile values, truncated bodies,
tiny real pictures among random bytes — and sends them through the Flask app on a real Redis.
Every answer must be one of the documented codes with a JSON ``{"error"}`` for failures: an
unhandled exception would be a 500.

Short in CI (``QUAID_FUZZ_EXAMPLES``, default 60 bodies per test); set it higher for a long run.
"""

from __future__ import annotations

import io
import os
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.service.app import create_app

EXAMPLES = int(os.environ.get("QUAID_FUZZ_EXAMPLES", "60"))
DOCUMENTED = {200, 201, 202, 400, 404, 413, 415, 429}  # see engine.service.openapi (_ERRORS)
ENDPOINTS = ("/api/v1/pictures", "/api/v1/search", "/api/v1/jobs", "/api/v1/jobs?action=add",
             "/api/v1/jobs?action=search")


def tiny_png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8 + seed % 8, 8), (seed % 256, 40, 90)).save(out, "PNG")
    return out.getvalue()


boundaries = st.one_of(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789'()+_,-./:=?", min_size=1, max_size=70),
    st.sampled_from(["", " ", '"quoted"', "x" * 300, "--", "b;b", "é"]),
)
field_names = st.sampled_from(["file", "files", "name", "tags", "tag", "metadata", "top", "action", "all",
                               "", "FILE", "file\x00", 'fi"le', "x" * 200])
values = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b'["a", "b"]', b'[{"a": 1}]', b"[1e999]", b'{"k": NaN}', b"[" * 5000, b"{}", b"-1",
                     b"99999999999999999999", b"add", b"search", b"true", b"\xff\xfe", b"\x1b[31m"]),
    st.integers(0, 20).map(tiny_png),
)


@st.composite
def parts(draw) -> bytes:
    name = draw(field_names)
    disposition = draw(st.sampled_from([
        'form-data; name="{n}"', 'form-data; name="{n}"; filename="{f}"', "form-data; name={n}",
        'form-data; name="{n}"; filename*=UTF-8\'\'{f}', "form-data", 'attachment; name="{n}"', "",
        'form-data; name="{n}"; filename=""']))
    filename = draw(st.text(max_size=30).map(lambda t: t.replace('"', "")))
    header = "Content-Disposition: " + disposition.format(n=name, f=filename)
    if draw(st.booleans()):
        header += "\r\nContent-Type: " + draw(st.sampled_from(["image/png", "text/plain", "", "x/y; a=b"]))
    return header.encode("utf-8", "surrogatepass") + b"\r\n\r\n" + draw(values)


@st.composite
def bodies(draw) -> tuple[str, bytes]:
    boundary = draw(boundaries)
    raw = boundary.encode("utf-8", "surrogatepass")
    chunks = [b"--" + raw + b"\r\n" + p + b"\r\n" for p in draw(st.lists(parts(), max_size=6))]
    body = b"".join(chunks) + draw(st.sampled_from([b"--" + raw + b"--\r\n", b"", b"--" + raw, b"garbage"]))
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]  # truncated anywhere
    header_boundary = draw(st.one_of(st.just(boundary), boundaries))
    content_type = draw(st.sampled_from([
        "multipart/form-data; boundary={b}", 'multipart/form-data; boundary="{b}"', "multipart/form-data",
        "multipart/mixed; boundary={b}", "application/octet-stream", "multipart/form-data; boundary={b}; x"]))
    return content_type.format(b=header_boundary), body


@st.composite
def well_formed(draw) -> tuple[str, bytes]:
    """A correct form with a real picture and hostile fields: the paths that store and search."""
    boundary = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=40))
    fields = draw(st.lists(st.tuples(st.sampled_from(["name", "tags", "tag", "metadata", "top", "all",
                                                      "action"]), values), max_size=4))
    chunks = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value
              + b"\r\n" for name, value in fields]
    for n in range(draw(st.integers(1, 2))):
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{n}.png"\r\n'
                "Content-Type: image/png\r\n\r\n")
        chunks.append(head.encode() + tiny_png(draw(st.integers(0, 50))) + b"\r\n")
    return f"multipart/form-data; boundary={boundary}", b"".join(chunks) + f"--{boundary}--\r\n".encode()


@pytest.fixture
def client(quaid):
    app = create_app(replace(quaid.settings, max_upload_bytes=64 * 1024, max_jobs_per_key=1000), quaid=quaid)
    return app.test_client()


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(endpoint=st.sampled_from(ENDPOINTS), request=well_formed() | bodies())
def test_any_multipart_body_gets_a_documented_answer(client, endpoint, request):
    content_type, body = request
    answer = client.post(endpoint, data=body, headers={"Content-Type": content_type, "X-Quaid-Request": "1"})
    event(f"HTTP {answer.status_code}")  # --hypothesis-show-statistics: which answers were reached
    assert answer.status_code in DOCUMENTED, (answer.status_code, answer.get_data()[:300])
    if answer.status_code >= 400:
        assert isinstance(answer.get_json()["error"], str) and answer.get_json()["error"]


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(host=st.text(max_size=60), origin=st.text(max_size=60), fetch_site=st.text(max_size=20),
       method=st.sampled_from(["GET", "POST", "PATCH", "DELETE", "OPTIONS"]),
       path=st.sampled_from(["/", "/api/v1/export", "/api/v1/pictures", "/status", "/ui/app.js"]))
def test_any_host_and_origin_headers_get_a_documented_answer(client, host, origin, fetch_site, method, path):
    headers = {"Host": host, "Origin": origin, "Sec-Fetch-Site": fetch_site}
    try:
        answer = client.open(path, method=method, headers=headers)
    except (ValueError, UnicodeError):
        return  # the test client itself cannot send that header (newline, non-Latin-1)
    assert answer.status_code in DOCUMENTED | {204, 403, 405, 421}, answer.status_code
