"""Which algorithm versions a stored picture's features come from, and whether they can be compared.

Every record carries ``versions``: ``{algorithm name: Algorithm.version}`` of the features
written with it (see :attr:`engine.algorithms.base.Algorithm.version`). A feature extracted
by another version of an algorithm measures something else: comparing it with a fresh
query's feature gives a distance that means nothing, silently. So a picture whose stored
version of any enabled algorithm differs from the running one is *stale*: the candidate
index leaves it out (a search never sees it) and the engine refuses to open a store that
holds any, naming ``quaid reindex``. A record with no versions at all was written before
features were versioned, so it is stale too. Settings that change every feature (the working
size pictures are scaled to) are recorded and judged the same way (:data:`FEATURE_SETTINGS`).

The check runs for every picture at every index rebuild, so it compares the raw stored
text first: a store written by one version holds one distinct text, judged once.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping

from engine.picture import NORMALISATION

#: Settings that change what every algorithm extracts, recorded beside the algorithm versions.
FEATURE_SETTINGS = ("working_side",)
#: What else every feature depends on, recorded the same way: how pictures are normalised
#: (:data:`engine.picture.NORMALISATION`). A record quaid extracted before it was recorded has version 1.
IMPLIED = {"normalisation": 1}


def _stored_version(stored: Mapping[str, int], name: str) -> int | None:
    """The version a record holds for ``name``; None when it holds none to compare (a feature it lacks,
    or a hash-only reference, whose features were never extracted from a picture)."""
    if name in stored:
        return stored[name]
    extracted = any(setting in stored for setting in FEATURE_SETTINGS)
    return IMPLIED.get(name) if extracted else None


def encode(versions: Mapping[str, int]) -> str:
    """The stored form: compact JSON with sorted names, so equal versions give equal text."""
    return json.dumps(dict(sorted(versions.items())), separators=(",", ":"))


def decode(raw: bytes | str | None) -> dict[str, int]:
    """The versions stored in a record; empty when it has none (or they are unreadable)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int)}


class VersionCheck:
    """Judges stored versions against the running algorithms' (``current``: enabled algorithms only).

    A stored feature of an algorithm that is not enabled now is never compared, so its version
    does not matter; an enabled algorithm missing from a picture's features is not compared
    either (the matcher skips it). Only a version that differs makes a picture stale.
    """

    def __init__(self, current: Mapping[str, int],
                 renamed: Mapping[str, tuple[str, int]] | None = None) -> None:
        self.current = dict(current)
        #: former name -> (enabled algorithm now holding that job, the version the former name has now):
        #: a picture still holding features under the former name was written before the rename, so
        #: the enabled algorithm's features are missing from it (and would silently not vote)
        self.renamed = dict(renamed or {})
        self._verdicts: dict[bytes, tuple[str, ...]] = {}

    def stale_names(self, raw: bytes | str | None) -> tuple[str, ...]:
        """Enabled algorithms whose stored version differs; empty tuple = comparable."""
        key = raw.encode() if isinstance(raw, str) else (raw or b"")
        verdict = self._verdicts.get(key)
        if verdict is None:
            stored = decode(key)
            if not stored:  # written before versioning: every enabled algorithm's feature is suspect
                verdict = tuple(sorted(self.current))
            else:
                stale = {n for n, v in self.current.items() if _stored_version(stored, n) not in (None, v)}
                stale |= {now for former, (now, version) in self.renamed.items()
                          if former in stored and stored[former] != version and now not in stored}
                verdict = tuple(sorted(stale))
            if len(self._verdicts) < 1000:  # a store holds a handful of distinct texts
                self._verdicts[key] = verdict
        return verdict

    def describe(self, stale: Iterable[tuple[str, ...]]) -> str:
        """One line naming how many pictures are stale and for which algorithms, with the versions."""
        stale = list(stale)
        counts = Counter(name for names in stale for name in names)
        names = ", ".join(f"{name} ({n}; now {'' if name in FEATURE_SETTINGS else 'v'}{self.current[name]})"
                          for name, n in sorted(counts.items()))
        return (f"the store holds {len(stale)} picture(s) with features from another version of: {names}; "
                f"run `quaid reindex` to re-extract them")


def renamed_versions(algorithms: Iterable) -> dict[str, tuple[str, int]]:
    """Former names of the enabled ``algorithms``: {former name: (name now, version of the former name now)}.

    The former name may now belong to another algorithm (``goldberg`` became the reference
    signature, version 2, when the screenshot variant became ``goldberg-screen``); 0 when unused.
    """
    from engine import algorithms as registry

    out = {}
    for algorithm in algorithms:
        for former in getattr(algorithm, "former_names", ()):
            version = registry.BY_NAME[former].version if former in registry.BY_NAME else 0
            out[former] = (algorithm.name, version)
    return out


def current_versions(algorithms: Iterable, settings: object) -> dict[str, int]:
    """What new features are stamped with: each algorithm's version, and :data:`FEATURE_SETTINGS`."""
    versions = {a.name: a.version for a in algorithms}
    versions.update({name: getattr(settings, name) for name in FEATURE_SETTINGS})
    versions["normalisation"] = NORMALISATION
    return versions
