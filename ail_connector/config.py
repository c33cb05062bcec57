"""The ``[Quaid]`` section of AIL's ``configs/core.cfg``, read under AIL's own rules.

AIL reads ``core.cfg`` with a plain :class:`configparser.ConfigParser`
(``bin/lib/ConfigLoader.py`` at ail-framework 93006daa), so:

* an inline ``; comment`` or ``# comment`` is part of the value (only whole-line comments
  are comments) — a value with one is refused here with its key named, rather than read as
  a wrong number or a silent ``false``;
* ``%`` starts an interpolation (``%%`` is a literal ``%``);
* keys are case-insensitive; nothing expands ``$VARIABLES``. Here ``$AIL_HOME`` (or
  ``${AIL_HOME}``) is expanded in path values, and a relative path is taken under
  ``$AIL_HOME``, as AIL's own ``get_files_directory`` does; any other ``$`` is an error.

AIL's ``bin/Update-conf.py`` rewrites ``core.cfg`` with ``ConfigParser.write`` when a new
AIL version adds keys: the ``[Quaid]`` section and its values survive, whole-line comments
do not. Every error is a :class:`ConfigError` with a one-line message naming the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Callable, TypeVar

from ail_connector.actions import Policy
from ail_connector.tags import TaxonomyIndex

SECTION = "Quaid"
_BOOLEANS = {"1": True, "yes": True, "true": True, "on": True,
             "0": False, "no": False, "false": False, "off": False}  # ConfigParser.getboolean's words
_INLINE_COMMENT = re.compile(r"\s[;#]")
_AIL_HOME_VAR = re.compile(r"\$(AIL_HOME\b|\{AIL_HOME\})")

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad ``[Quaid]`` value; the message is one line that names the key."""


@dataclass(frozen=True)
class Settings:
    """Everything the AIL module reads from ``[Quaid]``."""

    url: str
    api_key: str | None
    timeout: float  # seconds to wait for an answer (the connect timeout is 5 s)
    retries: int  # reconnections when the service refuses the connection
    backoff: float  # seconds to pause after the service failed or refused the API key
    policy: Policy
    sweep_screenshots: bool
    sweep_images: bool | None  # None: sweep the image folder only when not subscribed to a queue
    sweep_backfill: bool
    sweep_interval: float
    sweep_settle: float
    sweep_batch: int
    state_dir: str
    follow_events: bool = True  # tag and correlate earlier pictures that later additions match


def read_settings(values: Iterable[tuple[str, str]], ail_home: str | None,
                  taxonomy: TaxonomyIndex) -> Settings:
    """Settings from the ``(key, value)`` pairs of the section (``get_all_keys_values_from_section``)."""
    conf = _checked(values)
    if "url" not in conf:
        raise ConfigError("[Quaid] url is missing (e.g. url = http://127.0.0.1:8080)")
    url = conf["url"]
    if not re.match(r"^https?://[^\s/]+", url):
        raise ConfigError(f"[Quaid] url = {url!r}: not an http:// or https:// address")
    return Settings(
        url=url,
        api_key=conf.get("api_key") or None,
        timeout=_number(conf, "timeout", 30.0, float, minimum=0.1),
        retries=_number(conf, "retries", 3, int, minimum=0),
        backoff=_number(conf, "backoff", 60.0, float, minimum=0.0),
        policy=read_policy(conf, taxonomy),
        sweep_screenshots=_boolean(conf, "sweep_screenshots", True),
        sweep_images=_boolean(conf, "sweep_images", None),
        sweep_backfill=_boolean(conf, "sweep_backfill", True),
        sweep_interval=_number(conf, "sweep_interval", 300.0, float, minimum=0.0),
        sweep_settle=_number(conf, "sweep_settle", 5.0, float, minimum=0.0),
        sweep_batch=_number(conf, "sweep_batch", 20, int, minimum=1),
        state_dir=_path(conf, "state_dir", "QUAID", ail_home),
        follow_events=_boolean(conf, "follow_events", True),
    )


def read_policy(values: Mapping[str, str], taxonomy: TaxonomyIndex | None = None) -> Policy:
    """The decision -> actions policy; tag lists are ``|``-separated (a tag value may hold commas)."""
    conf = _checked(values.items())
    default = Policy()
    return Policy(
        accepted_tags=_tags(conf, "accepted_tags", default.accepted_tags, taxonomy),
        review_tags=_tags(conf, "review_tags", default.review_tags, taxonomy),
        phishing_tags=_tags(conf, "phishing_tags", default.phishing_tags, taxonomy),
        correlate_accepted=_boolean(conf, "correlate_accepted", default.correlate_accepted),
        correlate_to_review=_boolean(conf, "correlate_to_review", default.correlate_to_review),
        max_correlations=_number(conf, "max_correlations", default.max_correlations, int, minimum=0),
        top=_number(conf, "top", default.top, int, minimum=1),
    )


KNOWN_KEYS = frozenset({
    "url", "api_key", "timeout", "retries", "backoff", "accepted_tags", "review_tags", "phishing_tags",
    "correlate_accepted", "correlate_to_review", "max_correlations", "top", "sweep_screenshots",
    "sweep_images", "sweep_backfill", "sweep_interval", "sweep_settle", "sweep_batch", "state_dir",
    "follow_events",
})


def _checked(values: Iterable[tuple[str, str]]) -> dict:
    conf = {}
    for key, value in values:
        key = key.lower()
        if key not in KNOWN_KEYS:
            known = ", ".join(sorted(KNOWN_KEYS))
            raise ConfigError(f"[Quaid] {key}: unknown key (known: {known})")
        value = str(value).strip()
        if _INLINE_COMMENT.search(value):
            raise ConfigError(f"[Quaid] {key} = {value!r}: inline comment; AIL's ConfigParser keeps it "
                              "as part of the value, put comments on their own line")
        conf[key] = value
    return conf


def _boolean(conf: Mapping[str, str], key: str, default: T) -> T:
    if key not in conf:
        return default
    value = _BOOLEANS.get(conf[key].lower())
    if value is None:
        raise ConfigError(f"[Quaid] {key} = {conf[key]!r}: not a boolean (true/false, yes/no, on/off, 1/0)")
    return value  # type: ignore[return-value]


def _number(conf: Mapping[str, str], key: str, default: T, kind: Callable[[str], T], minimum: float) -> T:
    if key not in conf:
        return default
    try:
        value = kind(conf[key])
    except ValueError:
        raise ConfigError("[Quaid] {} = {!r}: not {}".format(
            key, conf[key], "a whole number" if kind is int else "a number")) from None
    if value < minimum:  # type: ignore[operator]
        raise ConfigError(f"[Quaid] {key} = {conf[key]!r}: must be at least {minimum:g}")
    return value


def _tags(conf: Mapping[str, str], key: str, default: tuple[str, ...],
          taxonomy: TaxonomyIndex | None) -> tuple[str, ...]:
    if key not in conf:
        return default
    tags = tuple(t.strip() for t in conf[key].split("|") if t.strip())
    for tag in tags:
        problem = taxonomy.problem(tag) if taxonomy else ""
        if problem:
            raise ConfigError(f"[Quaid] {key}: {tag!r} {problem}")
    return tags


def _path(conf: Mapping[str, str], key: str, default: str, ail_home: str | None) -> str:
    raw = conf.get(key, default)
    value = _AIL_HOME_VAR.sub(lambda m: ail_home or "\0", raw)
    if "\0" in value or (not os.path.isabs(value) and not ail_home):
        raise ConfigError(f"[Quaid] {key} = {raw!r}: needs $AIL_HOME, which is not set")
    if "$" in value:
        raise ConfigError(f"[Quaid] {key} = {raw!r}: only $AIL_HOME is expanded in paths")
    return value if os.path.isabs(value) else os.path.join(ail_home or "", value)
