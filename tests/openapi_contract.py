"""Check real HTTP answers against quaid's OpenAPI document with real validators.

``Contract(document)`` first validates the document itself (``openapi-spec-validator``,
OpenAPI 3.1), then ``check(response, path, method)`` asserts that the answer's status
is documented for that operation, that its content type is a documented one, and that a
JSON body validates against the documented schema (``jsonschema``, Draft 2020-12, the
dialect of OpenAPI 3.1, formats checked). Schemas are taken from the document by JSON
pointer, so its ``$ref`` resolve inside the document as a client's would.
"""

from __future__ import annotations

import fnmatch

import requests
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:quaid-openapi"


class Contract:
    def __init__(self, document: dict) -> None:
        validate(document)  # raises on a document that is not valid OpenAPI
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(BASE, resource)
        self.checked: set[tuple[str, str, int]] = set()

    def operation(self, path: str, method: str) -> dict:
        paths = self.document["paths"]
        assert path in paths and method in paths[path], f"{method.upper()} {path} is not documented"
        return paths[path][method]

    def check(self, response: requests.Response, path: str, method: str) -> requests.Response:
        """Assert ``response`` (to ``method`` ``path``, a path of the document) is as documented."""
        status = str(response.status_code)
        responses = self.operation(path, method)["responses"]
        where = f"{method.upper()} {path} {status}"
        assert status in responses, f"{where} not documented ({sorted(responses)}): {response.text[:300]}"
        pointer = f"/paths/{_escape(path)}/{method}/responses/{status}"
        documented = responses[status]
        if "$ref" in documented:  # a shared answer of components/responses
            pointer = documented["$ref"].lstrip("#")
            documented = self._at(pointer)
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        media = [m for m in documented.get("content", {}) if fnmatch.fnmatch(content_type, m)]
        assert media, f"{where}: {content_type!r} not in {list(documented['content'])}"
        if media[0] == "application/json":
            schema = {"$ref": f"{BASE}#{pointer}/content/{_escape(media[0])}/schema"}
            validator = Draft202012Validator(schema, registry=self.registry,
                                             format_checker=Draft202012Validator.FORMAT_CHECKER)
            errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
            assert not errors, f"{where}: " + "; ".join(
                f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5])
        self.checked.add((path, method, response.status_code))
        return response

    def _at(self, pointer: str) -> dict:
        node = self.document
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")
