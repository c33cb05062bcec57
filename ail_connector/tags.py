"""The tags the connector puts on AIL objects, and the check that AIL will know them.

Why these tags. AIL knows two kinds of tags (``bin/lib/Tag.py`` at ail-framework 93006daa):

* *taxonomy tags*, whose namespace is one of the MISP taxonomies AIL ships
  (``files/misp-taxonomies``): the tag must be one of that taxonomy's machinetags, or AIL's
  UI and API refuse it (``add_obj_tags``) and it exports to MISP as an unknown tag. No
  taxonomy has a "similar picture" value: ``infoleak:automatic-detection`` has 33 fixed
  values (qrcode, barcode, credential, ...);
* *custom tags*, in any other namespace except ``misp-galaxy``: AIL registers them with
  ``create_custom_tag`` (as trackers do), lists them with the taxonomy tags, accepts them
  for MISP/TheHive auto-push, and lets analysts search by them.

A screenshot crawled on one domain that matches a brand baseline captured on another
(quaid's ``phishing-suspected`` verdict) gets the taxonomy value
``phishing:techniques="fake-website"`` ("adversary controls a fake website to phish for
credentials or information", MISP taxonomy ``phishing`` v5).

So a match is marked with custom tags in the ``quaid`` namespace (registered by the AIL
module at start), and a to-review match also with the taxonomy value
``workflow:todo="review"``. Analysts confirm or refute a match with existing ``infoleak``
values (:data:`CONFIRMATIONS`); AIL's own "confirm" button only rewrites
``infoleak:automatic-detection`` tags, whose values do not fit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

SIMILAR = 'quaid:picture="similar"'
POSSIBLY_SIMILAR = 'quaid:picture="possibly-similar"'
REVIEW = 'workflow:todo="review"'
PHISHING_SUSPECTED = 'phishing:techniques="fake-website"'
CONFIRMATIONS = ('infoleak:confirmed="true-positive"', 'infoleak:confirmed="false-positive"')
DEFAULT_ACCEPTED_TAGS = (SIMILAR,)
DEFAULT_REVIEW_TAGS = (POSSIBLY_SIMILAR, REVIEW)
DEFAULT_PHISHING_TAGS = (PHISHING_SUSPECTED,)

GALAXY_NAMESPACE = "misp-galaxy"
SHIPPED_EXTRACT = Path(__file__).with_name("taxonomies.json")


class TaxonomyIndex:
    """Which namespaces are taxonomies, and the machinetags of a taxonomy.

    ``machinetags(namespace)`` returns that taxonomy's tags, or ``None`` when they are not
    known here (the shipped extract holds only the taxonomies the connector emits by default;
    inside AIL the module builds the index from AIL's own taxonomies, which hold them all).
    """

    def __init__(self, namespaces: Iterable[str], machinetags: Callable[[str], set[str] | None]) -> None:
        self.namespaces = frozenset(namespaces)
        self.machinetags = machinetags

    @classmethod
    def shipped(cls) -> TaxonomyIndex:
        """The extract in ``taxonomies.json`` (its ``source`` field names the commit it comes from)."""
        data = json.loads(SHIPPED_EXTRACT.read_text(encoding="utf-8"))
        tags = {ns: set(values) for ns, values in data["machinetags"].items()}
        return cls(data["namespaces"], tags.get)

    def problem(self, tag: str) -> str:
        """Why AIL would not know ``tag``, or ``""`` when it is a taxonomy value or a valid custom tag."""
        namespace, sep, rest = tag.partition(":")
        if not (namespace and sep and rest) or tag != tag.strip():
            return "not a machinetag (namespace:predicate or namespace:predicate=\"value\")"
        if namespace == GALAXY_NAMESPACE:
            return "galaxy tags are not supported here"
        if namespace not in self.namespaces:
            return ""  # a custom tag
        known = self.machinetags(namespace)
        if known is not None and tag not in known:
            return f"not a value of the {namespace} taxonomy"
        return ""

    def is_custom(self, tag: str) -> bool:
        """A tag AIL treats as custom: its namespace is neither a taxonomy nor ``misp-galaxy``."""
        namespace = tag.partition(":")[0]
        return namespace not in self.namespaces and namespace != GALAXY_NAMESPACE
