"""Fuzzing the request parsers of the MISP modules and the AIL connector, called in-process.

MISP side: misp-modules calls ``handler(q)`` with the JSON text MISP sent and answers MISP with
what it returns (misp-modules ``misp_modules/__init__.py``, ``QueryModule.run``: the handler's
dict is sent as JSON; an exception becomes an HTTP 500 with a generic message). The modules
promise to answer ``{"results": ...}`` or ``{"error": "<reason>"}`` and never to raise; their
catch-all answer ``"quaid module failed: <ExceptionType>"`` is a crash in disguise, so these tests
fail on it too. The quaid service is replaced by a stand-in answering random statuses and JSON
(``requests.post``/``requests.get`` patched): no network.

AIL side: the connector's parsers of what AIL hands it (global ids ``type:subtype:id``, screenshot
paths, module configuration) and of the service's answers (``plan_actions``).

Short here (``QUAID_FUZZ_EXAMPLES``); ``benchmarks/fuzz_long.py`` runs them longer.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ail_connector.actions import Policy, plan_actions
from ail_connector.ail_objects import AILRef, id_from_rel_path, is_tags_safe
from ail_connector.config import read_policy
from quaid_client import BadAnswer
from tests.drawing import drawn

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("QUAID_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="QUAID_FUZZ_SEED" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
CRASH = "quaid module failed"


def load(relative: str) -> ModuleType:
    """A module file of the misp-modules custom root, loaded by path as misp-modules does."""
    name = "fuzzed_" + Path(relative).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "misp_modules" / relative)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --- strategies -----------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats() | st.text(max_size=40)
any_json = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
PICTURE = base64.b64encode(drawn(4, (160, 120))).decode()
picture_data = st.sampled_from([PICTURE, PICTURE[:40], "not base64!", ""]) | st.text(max_size=30)
config = st.dictionaries(st.sampled_from(["url", "api_key", "timeout", "top", "register", "tags"]),
                         st.sampled_from(["", "http://quaid.invalid", "ftp://x", "0", "-1", "1e9", "nan",
                                          "inf", "yes", "abc"]) | scalars, max_size=5)
attribute = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["attachment", "malware-sample", "text"]) | scalars,
    "value": st.sampled_from(["a.png", "x.zip|" + "0" * 32, ""]) | scalars,
    "data": picture_data | scalars, "uuid": st.uuids().map(str) | scalars,
    "category": scalars, "comment": scalars})
misp_object = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["image", "file", "domain"]) | scalars, "uuid": st.uuids().map(str) | scalars,
    "Attribute": st.lists(attribute | any_json, max_size=3) | scalars})
requests_ = st.fixed_dictionaries({}, optional={
    "module": st.text(max_size=20), "config": config | any_json, "attribute": attribute | any_json,
    "object": misp_object | any_json, "attachment": scalars, "malware-sample": scalars,
    "data": picture_data | scalars, "filename": scalars, "event_id": scalars})
match = st.fixed_dictionaries({}, optional={
    "id": st.text("0123456789abcdef", min_size=64, max_size=64) | scalars,
    "decision": st.sampled_from(["accepted", "to-review", "rejected"]) | scalars,
    "distance": st.floats(0, 1) | scalars, "name": scalars, "cluster": scalars, "tags": any_json,
    "algorithms": any_json})
answer = st.fixed_dictionaries({}, optional={
    "decision": st.sampled_from(["accepted", "to-review", "rejected"]) | scalars,
    "matches": st.lists(match | any_json, max_size=4) | scalars,
    "id": scalars, "status": st.sampled_from(["added", "duplicate"]) | scalars, "error": scalars})
documented_match = st.fixed_dictionaries({}, optional={  # the API's Match (engine/service/openapi.py)
    "id": st.text("0123456789abcdef", min_size=64, max_size=64) | st.text(max_size=70),
    "decision": st.sampled_from(["accepted", "to-review", "rejected"]) | st.text(max_size=12),
    "distance": st.floats(0, 1) | st.integers(0, 1), "name": st.text(max_size=20),
    "cluster": st.integers(0, 2**40), "tags": st.lists(st.text(max_size=20), max_size=3)})
documented_answer = st.fixed_dictionaries({}, optional={
    "decision": st.sampled_from(["accepted", "to-review", "rejected"]) | st.text(max_size=12),
    "matches": st.lists(documented_match, max_size=6)})

documented_reply = st.tuples(st.sampled_from([200, 201, 400, 401, 413, 415, 500, 503]),
                             documented_answer | st.fixed_dictionaries({"error": st.text(max_size=40)})
                             | st.just(None))

class StandIn:
    """The quaid service as the modules see it through ``requests`` (``quaid_client``'s session):
    replies drawn by Hypothesis."""

    def __init__(self, replies: list[tuple[int, object]]) -> None:
        self.replies = list(replies)

    def __call__(self, *args, **kwargs) -> requests.Response:
        status, body = self.replies.pop(0) if self.replies else (200, {"matches": []})
        response = requests.Response()
        response.status_code = status
        response._content = b"<html>oops</html>" if body is None else json.dumps(body).encode()
        response.headers["Content-Type"] = "text/html" if body is None else "application/json"
        return response


def run_handler(module: ModuleType, request: object, replies, monkeypatch) -> dict:
    stand_in = StandIn(replies)
    monkeypatch.setattr(requests.Session, "request", stand_in)  # quaid_client's one HTTP call
    query = request if isinstance(request, str) else json.dumps(request)
    result = module.handler(query)
    assert isinstance(result, dict), result
    json.dumps(result)  # misp-modules sends it as JSON
    if "error" in result:
        assert isinstance(result["error"], str) and not result["error"].startswith(CRASH), result
    else:
        assert isinstance(result.get("results"), dict), result
    return result


# --- MISP modules ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["expansion/quaid_similarity.py", "import_mod/quaid_import.py"])
def test_misp_handlers_answer_garbage_with_an_error(path, monkeypatch):
    module = load(path)
    for query in ["", "not json", "[]", "null", "42", '"text"', "{"]:
        assert "error" in run_handler(module, query, [], monkeypatch)


@FUZZ
@given(request=requests_ | any_json, replies=st.lists(documented_reply, max_size=4))
def test_misp_expansion_handler_never_crashes(request, replies, monkeypatch):
    run_handler(load("expansion/quaid_similarity.py"), request, replies, monkeypatch)


@FUZZ
@given(request=requests_ | any_json, replies=st.lists(documented_reply, max_size=4))
def test_misp_import_handler_never_crashes(request, replies, monkeypatch):
    run_handler(load("import_mod/quaid_import.py"), request, replies, monkeypatch)


valid_requests = st.builds(
    lambda kind, uuid, cfg: {"module": "quaid", "config": cfg,
                             "attribute": {"type": "attachment", "value": f"a.{kind}", "uuid": uuid,
                                           "data": PICTURE}},
    st.sampled_from(["png", "jpg"]), st.uuids().map(str),
    st.fixed_dictionaries({"url": st.just("http://quaid.invalid")},
                          optional={"register": st.sampled_from(["1", "0", ""]),
                                    "top": st.sampled_from(["1", "3", "50"])}))
import_requests = st.builds(lambda name, cfg: {"data": PICTURE, "filename": name, "config": cfg},
                            scalars, st.fixed_dictionaries({"url": st.just("http://quaid.invalid")}))


@FUZZ
@given(request=valid_requests, replies=st.lists(documented_reply, min_size=1, max_size=6))
def test_misp_expansion_reads_any_service_answer(request, replies, monkeypatch):
    """The picture is good: the module reaches the service, whose answers (of the documented shape,
    any status, any values, or an HTML error page) are drawn at random."""
    run_handler(load("expansion/quaid_similarity.py"), request, replies, monkeypatch)


@FUZZ
@given(request=import_requests, replies=st.lists(documented_reply, min_size=1, max_size=6))
def test_misp_import_reads_any_service_answer(request, replies, monkeypatch):
    run_handler(load("import_mod/quaid_import.py"), request, replies, monkeypatch)


@pytest.mark.parametrize("attributes", [True, 3, 1.5, "x", {"type": "attachment"}])
def test_misp_expansion_with_an_object_whose_attributes_are_not_a_list(attributes, monkeypatch):
    """Found by benchmarks/fuzz_long.py: a non-list 'Attribute' ended in the catch-all answer."""
    request = {"object": {"name": "image", "Attribute": attributes}}
    result = run_handler(load("expansion/quaid_similarity.py"), request, [], monkeypatch)
    assert result["error"] == "the image object's 'Attribute' is not a list"


MALFORMED_ANSWERS = [{"matches": True}, {"matches": [None]}, {"matches": [["a"]]}]


@pytest.mark.parametrize("body", MALFORMED_ANSWERS)
def test_misp_expansion_with_a_malformed_service_answer(body, monkeypatch):
    request = {"config": {"url": "http://quaid.invalid"},
               "attribute": {"type": "attachment", "value": "a.png", "data": PICTURE}}
    result = run_handler(load("expansion/quaid_similarity.py"), request, [(200, body)], monkeypatch)
    assert "documented shape" in result["error"]


# --- AIL connector --------------------------------------------------------------------------------

@FUZZ
@given(st.text(max_size=80) | st.sampled_from(["screenshot::" + "a" * 64, "image::x", "item:s:a:b:c"]))
def test_ail_global_ids_parse_or_raise_value_error(text):
    try:
        ref = AILRef.parse(text)
    except ValueError:
        return
    assert ref.global_id.count(":") >= 2 and AILRef.parse(ref.global_id) == ref


@FUZZ
@given(st.text(max_size=120) | st.lists(st.text("0123456789abcdef/.pngx", max_size=8), max_size=10)
       .map("/".join))
def test_ail_screenshot_paths_give_an_id_or_none(path):
    found = id_from_rel_path(path)
    assert found is None or (len(found) == 64 and set(found) <= set("0123456789abcdef"))


@FUZZ
@given(st.dictionaries(st.sampled_from(["accepted_tags", "review_tags", "correlate_accepted",
                                        "correlate_to_review", "max_correlations", "top", "other"]),
                       st.text(max_size=30)))
def test_ail_policy_from_config_or_value_error(values):
    try:
        read_policy(values)
    except ValueError:
        pass


def plan(answer: dict):
    return plan_actions(AILRef("screenshot", "a" * 64), answer, Policy(max_correlations=2),
                        lambda pid: AILRef("screenshot", str(pid)) if pid[:1] != "f" else None,
                        lambda ref: ref.id[:1] != "e")


@FUZZ
@given(answer=documented_answer, tags=st.lists(st.text(max_size=30), max_size=4))
def test_ail_plans_from_any_answer_of_the_documented_shape(answer, tags):
    result = plan(answer)
    assert result.decision in ("accepted", "to-review", "rejected")
    assert len(result.correlations) <= 2
    is_tags_safe(tags)


@pytest.mark.parametrize("answer", [*MALFORMED_ANSWERS,
                                    {"matches": [{"decision": "accepted", "id": "b" * 64, "distance": "x"}]}])
def test_ail_refuses_to_plan_from_a_malformed_answer(answer):
    with pytest.raises(BadAnswer, match="search answer"):
        plan(answer)
