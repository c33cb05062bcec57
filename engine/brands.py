"""Brand baselines: a page that looks like a brand's site but lives on another domain.

A stored reference is a brand baseline when its metadata names a ``brand``
(and, usually, the ``domain`` it was captured on). A brand may also have a
configured list of its own domains (:class:`BrandRegistry`, kept in Redis). When
a search names the domain the query was seen on, every accepted or to-review
match against a baseline gets a verdict:

- ``legitimate``: the query's registrable domain is one of the brand's own
  (the registry's list plus the baseline's own ``domain``);
- ``phishing-suspected``: it is not: the brand's look on someone else's domain.

A search may name several domains (the hosts of a redirect chain, every URL of a
MISP event): it is ``legitimate`` only when each of them is the brand's, since
the page could have been shown by any of them.

Domains are compared as registrable domains (:mod:`engine.domains`), so
``login.paypal.com`` is PayPal's and ``paypal.com.evil.tld`` is not. A brand
with no known domain gets no verdict (nothing to compare with), nor does a
search that names no domain; the match still says which brand it is. The
verdict adds to the answer and changes no decision: a phishing kit's copy of a
login page is ``accepted`` and ``phishing-suspected`` at once.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis

from engine.domains import host_of, registrable_domain
from engine.errors import BadInput
from engine.store import keys

PHISHING_SUSPECTED = "phishing-suspected"
LEGITIMATE = "legitimate"
JUDGED_DECISIONS = ("accepted", "to-review")  # a rejected match says nothing about the query
MAX_BRAND_LENGTH = 100  # characters
MAX_DOMAINS = 200  # domains one brand may list
MAX_QUERY_DOMAINS = 50  # domains one search may name


@dataclass(frozen=True)
class BrandCheck:
    """A match against a brand baseline: the brand, its own domains, and the verdict (None when
    the query's domain or the brand's domains are unknown)."""

    name: str
    domains: tuple[str, ...]
    verdict: str | None

    def to_json(self) -> dict:
        return {"name": self.name, "domains": list(self.domains)}


def check_brand(value: object) -> str:
    """A brand name as stored: a non-empty string of printable characters, at most
    ``MAX_BRAND_LENGTH`` long, surrounding spaces removed, no ``/`` (the name is a path segment
    of ``/api/v1/brands/<name>``); else :class:`BadInput`."""
    if not isinstance(value, str) or not value.strip():
        raise BadInput("brand must be a non-empty string")
    name = value.strip()
    if len(name) > MAX_BRAND_LENGTH:
        raise BadInput(f"brand longer than {MAX_BRAND_LENGTH} characters")
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in name):
        raise BadInput("brand must not contain control characters")
    if "/" in name:
        raise BadInput("brand must not contain '/'")
    return name


def query_domains(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """The registrable domains a search names (a host or URL, or several), sorted; () for none.
    :class:`BadInput` for a value without a valid host, or too many."""
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else list(value)
    if len(values) > MAX_QUERY_DOMAINS:
        raise BadInput(f"at most {MAX_QUERY_DOMAINS} domains per search")
    return tuple(sorted({registrable_domain(v) for v in values}))


def check_reference_fields(metadata: Mapping) -> None:
    """Refuse a reference's ``brand`` or ``domain`` metadata that could not be judged later."""
    if "brand" in metadata:
        check_brand(metadata["brand"])
    if "domain" in metadata:
        host_of(metadata["domain"])


class BrandRegistry:
    """Each brand's own domains, as registrable domains (one Redis hash, :data:`keys.BRANDS`)."""

    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection

    def set(self, brand: str, domains: Iterable[str]) -> dict:
        """Replace ``brand``'s domains (URLs or host names are reduced to registrable domains)."""
        name = check_brand(brand)
        listed = list(domains)
        if len(listed) > MAX_DOMAINS:
            raise BadInput(f"at most {MAX_DOMAINS} domains per brand")
        entry = {"name": name, "domains": sorted({registrable_domain(d) for d in listed})}
        self.redis.hset(keys.BRANDS, _field(name), json.dumps(entry))
        return entry

    def get(self, brand: str) -> dict | None:
        raw = self.redis.hget(keys.BRANDS, _field(check_brand(brand)))
        return json.loads(raw) if raw else None

    def all(self) -> list[dict]:
        """Every configured brand, by name."""
        entries = [json.loads(raw) for raw in self.redis.hvals(keys.BRANDS)]
        return sorted(entries, key=lambda e: e["name"].casefold())

    def delete(self, brand: str) -> bool:
        return bool(self.redis.hdel(keys.BRANDS, _field(check_brand(brand))))

    def domains_of(self, brands: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The configured domains of several brands in one round trip (brands not configured: ())."""
        names = sorted({_field(b) for b in brands})
        if not names:
            return {}
        found = self.redis.hmget(keys.BRANDS, names)
        pairs = zip(names, found, strict=True)
        return {name: tuple(json.loads(raw)["domains"]) if raw else () for name, raw in pairs}


def judge(references: Mapping[str, tuple[str, Mapping]], seen_on: Iterable[str],
          registry: BrandRegistry) -> dict[str, BrandCheck]:
    """The brand check of each match against a baseline. ``references``: match id ->
    (decision, the stored reference's metadata); ``seen_on``: the registrable domains the query
    was seen on (none: no verdict)."""
    seen = set(seen_on)
    baselines = {ident: metadata for ident, (decision, metadata) in references.items()
                 if decision in JUDGED_DECISIONS and _brand_of(metadata)}
    configured = registry.domains_of(_brand_of(m) for m in baselines.values())
    checks = {}
    for ident, metadata in baselines.items():
        brand = _brand_of(metadata)
        own = set(configured.get(_field(brand), ()))
        own.update(_own_domain(metadata))
        verdict = None
        if seen and own:
            verdict = LEGITIMATE if seen <= own else PHISHING_SUSPECTED
        checks[ident] = BrandCheck(brand, tuple(sorted(own)), verdict)
    return checks


def query_fields(seen_on: Iterable[str], best_first: Iterable[tuple[str, BrandCheck | None]]) -> dict:
    """The search answer's own ``domains``, ``brand`` and ``verdict``, those that apply: the best
    match (``(id, check)`` pairs, best first) with a brand verdict speaks for the query."""
    fields: dict = {"domains": list(seen_on)} if seen_on else {}
    for ident, check in best_first:
        if check is not None and check.verdict:
            fields.update(brand={**check.to_json(), "match": ident}, verdict=check.verdict)
            break
    return fields


def annotate(answer: dict, metadata: Mapping[str, Mapping], seen_on: tuple[str, ...],
             registry: BrandRegistry) -> dict:
    """A search answer in JSON (``matches`` best first) with its brand checks added: ``metadata``
    holds each match's stored metadata (the hash search builds its answer this way)."""
    matches = answer["matches"]
    checks = judge({m["id"]: (m["decision"], metadata.get(m["id"], {})) for m in matches}, seen_on, registry)
    for match in matches:
        if match["id"] in checks:
            check = checks[match["id"]]
            match["brand"] = check.to_json()
            if check.verdict:
                match["verdict"] = check.verdict
    answer.update(query_fields(seen_on, ((m["id"], checks.get(m["id"])) for m in matches)))
    return answer


def _brand_of(metadata: Mapping) -> str | None:
    """The brand a stored reference names, when it names a valid one (older records are as is)."""
    try:
        return check_brand(metadata["brand"]) if "brand" in metadata else None
    except BadInput:
        return None


def _own_domain(metadata: Mapping) -> list[str]:
    try:
        return [registrable_domain(metadata["domain"])] if "domain" in metadata else []
    except BadInput:
        return []


def _field(brand: str) -> str:
    return brand.strip().casefold()
