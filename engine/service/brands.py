"""The brand registry's HTTP API: list brands, show one, set or remove its own domains.

Where a brand's domains matter: a search naming the query's ``domain`` answers a match
against that brand's baseline as ``legitimate`` or ``phishing-suspected``
(:mod:`engine.brands`). Changing the list needs a write key and a JSON body.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from engine.brands import BrandRegistry
from engine.errors import BadInput, NotFound
from engine.service import models
from engine.service.auth import Access, requires
from engine.service.inputs import json_object_body
from engine.service.models import answer

blueprint = Blueprint("brands", __name__, url_prefix="/api/v1/brands")


def registry() -> BrandRegistry:
    return current_app.extensions["quaid"].brands


@blueprint.get("")
@requires(Access.READ)
def list_brands() -> Response:
    return answer(models.Brands, {"brands": registry().all()})


@blueprint.get("/<name>")
@requires(Access.READ)
def get_brand(name: str) -> Response:
    found = registry().get(name)
    if found is None:
        raise NotFound(f"no brand {name[:100]!r} configured")
    return answer(models.Brand, found)


@blueprint.put("/<name>")
@requires(Access.WRITE)
def set_brand(name: str) -> Response:
    """Replace the brand's own domains: ``{"domains": ["paypal.com", ...]}`` (URLs accepted)."""
    body = json_object_body('{"domains": ["example.com"]}')
    unknown = set(body) - {"domains"}
    if unknown:
        raise BadInput(f"unknown field(s): {', '.join(sorted(unknown))}")
    domains = body.get("domains")
    if not isinstance(domains, list) or not domains or not all(isinstance(d, str) for d in domains):
        raise BadInput("domains must be a non-empty list of host names or URLs")
    return answer(models.Brand, registry().set(name, domains))


@blueprint.delete("/<name>")
@requires(Access.WRITE)
def delete_brand(name: str) -> Response:
    if not registry().delete(name):
        raise NotFound(f"no brand {name[:100]!r} configured")
    return answer(models.BrandDeleted, {"name": name.strip(), "status": "deleted"})
