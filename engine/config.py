"""Server-side settings: defaults, then a file named by ``QUAID_CONFIG``, then ``QUAID_*`` variables.

Thresholds, weights and the merge strategy are server-side only: clients never
choose algorithms. The calibrated defaults shipped with quaid live in
``engine/calibrated.json`` (written by ``quaid calibrate``); a file named by
``QUAID_CONFIG`` (JSON or TOML, same keys as :class:`Settings`) overrides them,
and environment variables override both.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from engine.errors import BadInput

CALIBRATED_FILE = Path(__file__).with_name("calibrated.json")


def default_home() -> Path:
    """``$QUAID_HOME``, else ``$XDG_DATA_HOME/quaid``, else ``~/.local/share/quaid``."""
    if os.environ.get("QUAID_HOME"):
        return Path(os.environ["QUAID_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "quaid"


@dataclass(frozen=True)
class AlgorithmSettings:
    """Per-algorithm overrides; ``None`` keeps the algorithm's own default."""

    enabled: bool = True
    yes: float | None = None
    maybe: float | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=default_home)
    redis_url: str | None = None  # None: start the embedded Redis in ``home``
    max_pixels: int = 60_000_000
    max_upload_bytes: int = 50 * 1024 * 1024
    # decoded pixels in flight at once, all requests together (engine.budget): bounds peak memory
    decode_budget_megapixels: int = 60  # at least max_pixels / 1e6, or the largest pictures are refused
    decode_wait: float = 5.0  # seconds a decode waits for that budget before a 503 with Retry-After
    working_side: int = 1280
    keep: str = "thumbnail"  # "none" | "thumbnail" | "original"
    # where large per-picture data goes (engine.store.tier): "auto" | "local" | "redis" | a redis:// URL
    bulk_store: str = "auto"
    thumbnail_side: int = 320
    all_orientations: bool = False
    shortlist: int = 50  # candidates scored fully per query
    # Codes of one name from which the candidate index looks them up by multi-index hashing instead
    # of scanning them all (engine.multihash; bench_multihash measures both): 0 always, -1 never.
    index_multihash_from: int = 500_000
    # Keep the index in a snapshot under home/index (engine.store.snapshot): a restart loads it
    # and applies the changes since instead of reading every record back from Redis.
    index_snapshot: bool = True
    # Flag blank, error, challenge and placeholder pages as noise (engine.low_information): such a
    # query is answered as noise, such a picture is stored in the noise bank (engine.noise)
    noise_detector: bool = True
    verify_budget: int = 3  # pyramidal merge: stop verifying after this many rejections; 0 = verify all
    # (eval-full: 3 -> 65.6 % auto-accepted, 4 -> 65.7 %, 0 -> 66.5 %; each rejection verified ~5 ms a search)
    algorithms: dict[str, AlgorithmSettings] = field(default_factory=dict)
    distance_merge: str = "weighted_mean"
    decision_merge: str = "pyramidal"
    host: str = "127.0.0.1"
    port: int = 8080
    read_keys: tuple[str, ...] = ()
    write_keys: tuple[str, ...] = ()
    # Who may reach the service from a browser (engine.service.guard): host names it answers to
    # besides loopback, and web origins allowed to read and write through CORS (none by default).
    public_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    # Batch-job bounds (engine.service.jobs): files in one job, jobs in flight per API key (or
    # per anonymous caller when no key is configured), and jobs waiting in the queue overall.
    max_job_files: int = 1000
    max_jobs_per_key: int = 10
    max_queued_jobs: int = 200
    # Match events POSTed as JSON by `quaid serve` to this URL, signed with HMAC-SHA256 under the
    # secret when one is given (engine.webhook); "" sends none.
    event_webhook: str = ""
    event_webhook_secret: str = ""

    def __post_init__(self) -> None:
        check_access_settings(self)

    def algorithm(self, name: str) -> AlgorithmSettings:
        return self.algorithms.get(name, AlgorithmSettings())


def check_access_settings(settings: Settings) -> None:
    """Refuse keys and names that would open the service by mistake (one-line :class:`BadInput`).

    An empty or blank key is a typo (``QUAID_WRITE_KEYS=" "``, ``"write_keys": [""]``); taking it
    as "no key" would run an API meant to be protected wide open.
    """
    for name in ("read_keys", "write_keys"):
        if any(not isinstance(key, str) or not key.strip() for key in getattr(settings, name)):
            raise BadInput(f"setting {name}: empty or blank API key; remove it or give a real key")
    for name in settings.public_hosts:
        if not isinstance(name, str) or not name.strip() or "/" in name or name.strip() == "*" \
                or name.count(":") == 1:  # "name:port": the port is not part of the name (IPv6 has 2+)
            raise BadInput(f"setting public_hosts: {name!r} is not a host name without port "
                           "(e.g. quaid.example.org)")
    webhook = settings.event_webhook
    if webhook and (not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))
                    or any(c.isspace() for c in webhook)):
        raise BadInput(f"setting event_webhook: {redact_url(str(webhook))!r} is not an http(s):// URL")
    for origin in settings.cors_origins:
        scheme, sep, rest = str(origin).partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
            raise BadInput(f"setting cors_origins: {origin!r} is not an origin (e.g. https://misp.example.org)")


def redact_url(url: str | None) -> str | None:
    """``url`` without its password or token, for answers, logs and error messages.

    Covers the forms Redis URLs take: ``redis://user:pw@host``, ``redis://:pw@host`` and the
    ``?password=`` query parameter redis-py also reads.
    """
    if not url:
        return url
    scheme, sep, rest = url.partition("://")
    rest, question, query = rest.partition("?")
    auth, at, hosts = rest.rpartition("@")
    if at:
        user, colon, _ = auth.partition(":")
        rest = f"{user}:***@{hosts}" if colon else f"***@{hosts}"  # a lone user part may be a token
    if question:
        params = [p if p.partition("=")[0].lower() not in _SECRET_PARAMS else p.partition("=")[0] + "=***"
                  for p in query.split("&")]
        rest += "?" + "&".join(params)
    return f"{scheme}{sep}{rest}"


_SECRET_PARAMS = {"password", "pass", "passwd", "token", "secret"}
_ENV_PREFIX = "QUAID_"
_SCALARS = {f.name: f.type for f in fields(Settings) if f.name != "algorithms"}


def load_settings(**overrides: object) -> Settings:
    """Defaults < calibrated.json < $QUAID_CONFIG < QUAID_* env vars < ``overrides``."""
    values: dict[str, object] = {}
    if CALIBRATED_FILE.exists():
        values.update(_read_file(CALIBRATED_FILE))
    if os.environ.get("QUAID_CONFIG"):
        values = _merge(values, _read_file(Path(os.environ["QUAID_CONFIG"])))
    values.update(_from_env())
    values.update({k: v for k, v in overrides.items() if v is not None})
    return settings_from_dict(values)


def settings_from_dict(values: dict) -> Settings:
    """Build :class:`Settings` from plain JSON-like values, refusing unknown keys."""
    unknown = set(values) - {f.name for f in fields(Settings)}
    if unknown:
        raise BadInput(f"unknown setting(s): {', '.join(sorted(unknown))}")
    values = dict(values)
    algos = values.pop("algorithms", {}) or {}
    settings = Settings()
    converted = {k: _convert(k, v) for k, v in values.items()}
    return replace(
        settings,
        **converted,
        algorithms={
            name: a if isinstance(a, AlgorithmSettings) else AlgorithmSettings(**a)
            for name, a in algos.items()
        },
    )


def settings_to_dict(settings: Settings) -> dict:
    """JSON-ready form (used by ``quaid calibrate`` to write config files)."""
    out = {}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if f.name == "algorithms":
            value = {n: a.__dict__ for n, a in value.items()}
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _read_file(path: Path) -> dict:
    try:
        text = path.read_text()
        return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read settings file {path}: {exc}") from None


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if key == "algorithms" and isinstance(value, dict):
            algos = {k: dict(v) for k, v in (base.get("algorithms") or {}).items()}
            for name, conf in value.items():
                algos.setdefault(name, {}).update(conf)
            merged[key] = algos
        else:
            merged[key] = value
    return merged


def _from_env() -> dict:
    out = {}
    for name in _SCALARS:
        raw = os.environ.get(_ENV_PREFIX + name.upper())
        if raw is not None and name not in ("home",):
            out[name] = raw
    if os.environ.get("QUAID_HOME"):
        out["home"] = os.environ["QUAID_HOME"]
    return out


def _convert(name: str, value: object) -> object:
    kind = str(_SCALARS.get(name, ""))
    try:
        if name == "home":
            return Path(str(value))
        if kind.startswith("tuple"):
            if isinstance(value, str):  # blank entries are kept, so that they are refused
                return tuple(v.strip() for v in value.split(","))
            return tuple(value)  # type: ignore[arg-type]
        if kind == "int":
            return int(value)  # type: ignore[arg-type]
        if kind == "float":
            return float(value)  # type: ignore[arg-type]
        if kind == "bool":
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        if kind.startswith("str | None") and value in ("", None):
            return None
        return value
    except (TypeError, ValueError):
        raise BadInput(f"setting {name}: cannot use {value!r}") from None
