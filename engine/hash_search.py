"""Search by a partner's hashes instead of a picture, with a decision made for hash-only evidence.

Partners often share hashes, never the picture (ThreatExchange and HMA share PDQ; CERT
Polska's ``cert-pl-phishing`` MISP object carries perception's pHash). A search by hashes
compares each given hash with the stored feature of an enabled algorithm that computes the
same hash, or one measured within a few bits of it (:data:`KINDS`), on the shortlist the
candidate index gives for their codes: never a scan of the whole store.

Why the decision is never ``accepted``: a global hash says nothing about the few lines that
tell a page from its template siblings. Pages of one site can sit within 0-6 bits of each
other (``DESIGN``'s sibling measurements; on a small evaluation set PDQ alone at its 31-bit
threshold accepted 1 of 17 unseen pages, pHash 5 of 17), and with hashes only quaid has no
pixels to verify. So the answer is, for each stored picture:

- ``to-review``: every given hash within its reference's MAYBE threshold, at least one within
  its match threshold (PDQ 31/256 bits, Meta's; ImageHash and perception 64-bit hashes 10/64);
- ``rejected`` otherwise;

and the answer says ``"evidence": "hashes-only"``, each match ``"reason": "hashes-only"``.
The merged distance is the largest of the hashes' distances (the most cautious reading).
A picture search, the picture page and the graph judge a stored hash-only reference
(:mod:`engine.hash_import`) the same way (:func:`hash_only_verdict`): the calibrated merge
expects every algorithm to vote and would take one loose vote for a match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from engine.brands import annotate, query_domains
from engine.decision import Decision, Verdict
from engine.errors import BadInput
from engine.noise import MATCHES_NOISE
from engine.perception_phash import decode as decode_perception
from engine.store.records import HASH_ONLY_REASON, FeatureGone

if TYPE_CHECKING:
    from engine.core import Quaid

EVIDENCE = HASH_ONLY_REASON  # the answer's evidence, and each match's reason
PDQ_QUALITY_UNKNOWN = 100  # a partner's PDQ hash without its quality: the byte is not compared
PDQ_MIN_QUALITY = 50  # ThreatExchange's: see check_pdq_quality
QUALITY = "pdq_quality"  # the name quaid hash and PDQ hashers give a PDQ hash's quality


def _hex(digits: int) -> Callable[[str], bytes]:
    pattern = re.compile(rf"^[0-9a-fA-F]{{{digits}}}$")

    def parse(value: str) -> bytes:
        if not pattern.match(value):
            raise ValueError(f"expected {digits} hex digits")
        return bytes.fromhex(value)
    return parse


@dataclass(frozen=True)
class HashKind:
    """An exchanged hash: how to read it, which stored features compute it, its thresholds.

    ``slots``: enabled algorithms whose stored feature is this hash (first 8 or 32 bytes)
    or within a few bits of it; ``suffix``: bytes the stored feature has after the hash.
    """

    name: str
    parse: Callable[[str], bytes]
    slots: tuple[str, ...]
    yes: float
    maybe: float
    suffix: bytes = b""

    def feature(self, value: str) -> bytes:
        """The stored-feature form of ``value``; :class:`BadInput` naming the hash when malformed."""
        try:
            return self.parse(value.strip()) + self.suffix
        except (ValueError, AttributeError) as exc:
            raise BadInput(f"hash {self.name}: not a valid value ({exc})") from None


_IMAGEHASH = {"yes": 10 / 64, "maybe": 16 / 64}  # the customary pHash/dHash thresholds

#: Exchanged name -> kind. Measured on 219 pictures of a small evaluation set: perception's
#: pHash is a median 2 (at most 8) bits from quaid's stored ``phash``; the exchanged PDQ a
#: median 12 (90th percentile 22) bits from ``pdq-screen``'s thumbnail PDQ, 0 from ``pdq``'s
#: on plain pictures within the working size.
KINDS: dict[str, HashKind] = {kind.name: kind for kind in (
    HashKind("pdq", _hex(64), ("pdq", "pdq-screen"), 31 / 256, 63 / 256, bytes([PDQ_QUALITY_UNKNOWN])),
    HashKind("phash", _hex(16), ("phash",), **_IMAGEHASH),
    HashKind("dhash", _hex(16), ("dhash",), **_IMAGEHASH),
    HashKind("ahash", _hex(16), ("ahash",), **_IMAGEHASH),
    HashKind("whash", _hex(16), ("whash",), **_IMAGEHASH),
    HashKind("phash_dct_base64", decode_perception, ("phash",), **_IMAGEHASH),
)}


#: stored algorithm -> (match, review) thresholds of the hash it holds (the references' own)
SLOT_THRESHOLDS: dict[str, tuple[float, float]] = {
    slot: (kind.yes, kind.maybe) for kind in KINDS.values() for slot in kind.slots}


def hash_only_decision(distances: Mapping[str, float]) -> Decision:
    """The decision from hash distances alone: to-review when every one is within its review
    threshold and one within its match threshold, else rejected (never accepted)."""
    judged = [(d, SLOT_THRESHOLDS[name]) for name, d in distances.items() if name in SLOT_THRESHOLDS]
    if judged and all(d <= maybe for d, (_, maybe) in judged) and any(d <= yes for d, (yes, _) in judged):
        return Decision.TO_REVIEW
    return Decision.REJECTED


def hash_only_verdict(verdict: Verdict) -> Verdict:
    """A verdict against a hash-only reference (or from one), judged by the hashes' own thresholds.

    The calibrated merged decision assumes every algorithm votes; against a reference holding
    one or two hashes it would take a single loose vote for a match.
    """
    decision = hash_only_decision({n: r.distance for n, r in verdict.algorithms.items()})
    return replace(verdict, decision=decision, reason=HASH_ONLY_REASON)


def check_pdq_quality(quality: object) -> int:
    """A PDQ hash's quality (0-100) when it may be matched on, else a one-line BadInput.

    ThreatExchange does not match on PDQ hashes of quality under 50: python-threatexchange's
    ``PdqSignal.QUALITY_THRESHOLD`` ("Images with less than quality 50 are too unreliable to match
    on", ``threatexchange/signal_type/pdq/signal.py`` at commit baefb4e), whose ``hash_from_bytes``
    gives no hash for them; HMA hashes through it. Such a hash comes from a nearly flat picture,
    and flat pictures are all near each other.
    """
    if isinstance(quality, str) and quality.strip().isdigit():
        quality = int(quality.strip())
    if not isinstance(quality, int) or isinstance(quality, bool) or not 0 <= quality <= 100:
        raise BadInput(f"pdq_quality must be an integer from 0 to 100, got {str(quality)[:20]!r}")
    if quality < PDQ_MIN_QUALITY:
        raise BadInput(f"PDQ quality {quality} is under {PDQ_MIN_QUALITY}: too unreliable to match on "
                       f"(ThreatExchange refuses it too)")
    return quality


def parse_hashes(values: object) -> dict[str, str]:
    """``{name: value}`` checked: known names, string values, well formed (else a one-line BadInput).

    ``pdq_quality`` may accompany ``pdq`` (as ``quaid hash`` and PDQ hashers write it): it is
    checked (:func:`check_pdq_quality`) and not returned.
    """
    if not isinstance(values, Mapping) or not values:
        raise BadInput(f"hashes: give an object of {{name: value}}, names among {', '.join(KINDS)}")
    values = dict(values)
    if QUALITY in values:
        if "pdq" not in values:
            raise BadInput("pdq_quality is the quality of a pdq hash: give the pdq hash too")
        check_pdq_quality(values.pop(QUALITY))
    checked = {}
    for name, value in values.items():
        if name not in KINDS:
            raise BadInput(f"unknown hash {name!r}; known: {', '.join(KINDS)} (and {QUALITY} with pdq)")
        if not isinstance(value, str):
            raise BadInput(f"hash {name}: the value must be a string")
        KINDS[name].feature(value)
        checked[name] = value.strip()
    return checked


def stored_slots(quaid: Quaid, name: str) -> list[str]:
    """The enabled algorithms whose stored features a hash called ``name`` is compared with."""
    enabled = {a.name for a in quaid.matcher.algorithms}
    return [slot for slot in KINDS[name].slots if slot in enabled]


def query_features(quaid: Quaid, hashes: Mapping[str, str]) -> dict[str, tuple[str, bytes]]:
    """``{stored algorithm: (hash name, feature)}`` for the hashes this store can compare."""
    out: dict[str, tuple[str, bytes]] = {}
    for name, value in hashes.items():
        for slot in stored_slots(quaid, name):
            out.setdefault(slot, (name, KINDS[name].feature(value)))
    return out


def search_hashes(quaid: Quaid, hashes: object, top: int = 10, include_rejected: bool = False,
                  domain: str | Iterable[str] | None = None) -> dict:
    """Stored pictures near the given hashes, best first: {decision, evidence, compared, matches};
    with the ``domain`` (or domains) the hashed page was seen on, brand verdicts as a picture
    search gives them (:mod:`engine.brands`)."""
    if top < 1:
        raise BadInput("top must be at least 1")
    seen_on = query_domains(domain)
    checked = parse_hashes(hashes)
    features = query_features(quaid, checked)
    codes = {table: [code] for table, code in
             quaid.matcher.prefilter_codes({slot: f for slot, (_, f) in features.items()}).items()}
    if not codes:
        prefilter = {a.name for a in quaid.matcher.algorithms if a.prefilter and a.hamming_bits}
        searchable = sorted({n for n, k in KINDS.items() if prefilter & set(k.slots)})
        raise BadInput(f"none of these hashes can be searched with the enabled algorithms; give one of "
                       f"{', '.join(searchable) or '(none enabled)'}")
    quaid.mirror.sync()
    candidates = quaid.mirror.shortlist(codes, quaid.settings.shortlist)
    stored = quaid.records.shortlist_features((c.id for c in candidates), eager=list(features))
    judged = {}
    for pid, found in stored.items():
        try:
            judged[pid] = judge(features, found)
        except FeatureGone:  # deleted by another process meanwhile
            continue
    judged = {pid: j for pid, j in judged.items() if j is not None
              and (include_rejected or j["decision"] != Decision.REJECTED.value)}
    records = quaid.records.get_many(list(judged))
    matches = [{"id": pid, "name": records[pid].name, **judged[pid], "cluster": records[pid].cluster,
                "tags": list(records[pid].tags), "reason": EVIDENCE} for pid in judged if pid in records]
    matches.sort(key=lambda m: (Decision(m["decision"]).rank, m["distance"], m["id"]))
    noise = _noise_answer(matches, records)
    matches = [m for m in matches if records[m["id"]].noise is None]  # noise pictures: never reported
    decision = matches[0]["decision"] if matches else Decision.REJECTED.value
    compared = sorted({name for name, _ in features.values()})
    answer = {"decision": decision, "evidence": EVIDENCE, "compared": compared, "matches": matches[:top]}
    if noise is not None:
        answer["noise"] = noise
    return annotate(answer, {pid: records[pid].metadata for pid in records}, seen_on, quaid.brands)


def _noise_answer(matches: list[dict], records: Mapping) -> dict | None:
    """``{"reason": "matches-noise", "picture": id}`` when the best match is in the noise bank."""
    best = next((m for m in matches if m["decision"] != Decision.REJECTED.value), None)
    if best is None or records[best["id"]].noise is None:
        return None
    return {"reason": MATCHES_NOISE, "picture": best["id"]}


def judge(features: Mapping[str, tuple[str, bytes]], stored: Mapping[str, bytes]) -> dict | None:
    """The hash-only verdict of one stored picture (None when it holds none of the compared features)."""
    from engine import algorithms as registry

    votes: dict[str, dict] = {}
    for slot, (name, feature) in features.items():
        if name in votes or slot not in stored:
            continue
        distance = registry.get(slot)().distance(feature, stored[slot])
        kind = KINDS[name]
        vote = "yes" if distance <= kind.yes else "maybe" if distance <= kind.maybe else "no"
        votes[name] = {"distance": round(distance, 6), "decision": vote}
    if not votes:
        return None
    decisions = [v["decision"] for v in votes.values()]
    review = "no" not in decisions and "yes" in decisions
    return {"distance": max(v["distance"] for v in votes.values()),
            "decision": (Decision.TO_REVIEW if review else Decision.REJECTED).value, "algorithms": votes}
