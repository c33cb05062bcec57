"""A client that knows nothing of quaid but its OpenAPI document, as a generated client would.

``DocumentClient(url, document)`` exposes one method per ``operationId``. A call's keyword
arguments are sorted by the document alone: path and query parameters (checked against their
schemas before sending), then the request body (multipart: ``format: binary`` properties are
files, arrays are repeated fields; JSON: checked against the body schema). Header parameters
the document marks required are sent with the values given at construction, and the bearer
key when the document's security scheme asks for one. Every answer goes through
:class:`openapi_contract.Contract`; a documented error answer raises :class:`ApiError`.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from jsonschema import Draft202012Validator
from openapi_contract import Contract


class ApiError(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"{status}: {error}")
        self.status, self.error = status, error


class DocumentClient:
    def __init__(self, url: str, document: dict, key: str | None = None,
                 header_values: dict[str, str] | None = None) -> None:
        self.url, self.key = url, key
        self.contract = Contract(document)
        self.header_values = header_values or {}
        self.operations = {op["operationId"]: (path, method, op)
                           for path, ops in document["paths"].items() for method, op in ops.items()}

    def __getattr__(self, name: str):
        if name not in self.__dict__.get("operations", {}):
            raise AttributeError(f"the document has no operation {name!r}")
        return lambda **arguments: self.call(name, arguments)

    def call(self, operation: str, arguments: dict[str, Any]) -> Any:
        name, arguments = operation, dict(arguments)
        path, method, op = self.operations[name]
        url, query, headers = self.url + path, {}, {}
        for parameter in op.get("parameters", []):
            where, key = parameter["in"], parameter["name"]
            if where == "header":
                if parameter.get("required"):
                    headers[key] = self.header_values[key]
                continue
            if key not in arguments:
                assert not parameter.get("required"), f"{name}: missing {key}"
                continue
            value = arguments.pop(key)
            _check(parameter["schema"], value, f"{name}: {key}")
            if where == "path":
                url = url.replace("{" + key + "}", str(value))
            else:
                query[key] = str(value).lower() if isinstance(value, bool) else value
        if op.get("security", [{"bearer": []}]) and self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        body = self._body(name, op.get("requestBody"), arguments)
        response = requests.request(method, url, params=query, headers=headers, timeout=60, **body)
        self.contract.check(response, path, method)
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.json()["error"])
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        return response.json() if is_json else response.content

    def _body(self, name: str, spec: dict | None, arguments: dict) -> dict:
        if spec is None:
            assert not arguments, f"{name}: unknown arguments {sorted(arguments)}"
            return {}
        media, content = next(iter(spec["content"].items()))
        properties = content["schema"]["properties"]
        unknown = set(arguments) - set(properties)
        assert not unknown, f"{name}: the document knows no {sorted(unknown)}"
        if media == "application/json":
            _check(content["schema"], arguments, name)
            return {"json": arguments}
        files, form = [], []
        for key, value in arguments.items():
            schema = properties[key]
            items = schema.get("items", schema)
            for one in value if schema.get("type") == "array" else [value]:
                if items.get("format") == "binary":
                    files.append((key, one))
                else:
                    form.append((key, json.dumps(one) if isinstance(one, dict) else str(one)))
        return {"files": files, "data": form}


def _check(schema: dict, value: Any, where: str) -> None:
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
    assert not errors, f"{where}: {errors}"
