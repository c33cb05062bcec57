"""MISP's side of misp-modules, for the module tests: how MISP queries a module, what it refuses,
and what it does with the answer when the analyst saves it into an event of a :class:`MISPStandIn`.

Read in MISP 2.5.1 (github.com/MISP/MISP, commit bb0909a3) and reproduced rule by rule:

- ``app/Model/Module.php`` ``queryModuleServer``: one POST to ``/query`` with a timeout of
  ``Plugin.Enrichment_timeout`` / ``Plugin.Import_timeout`` (``app/Model/Server.php``: both
  default to 10 s); no answer in time, or no answer at all, and MISP shows
  "Enrichment service not reachable." / "Import service not reachable.";
- ``app/Controller/EventsController.php`` ``__queryEnrichment`` / ``__queryObjectEnrichment``: the
  payload (``attribute`` or ``object`` with base64 ``data``, ``event_id``, ``config``); an
  ``error`` is flashed; an object enrichment that returns no Attribute and no Object throws
  ``NotImplementedException("No Attribute or Object returned by the module.")``;
- ``EventsController::importModule``: each ``userConfig`` field is validated by its type
  (``Module::validateStringField``: "Field cannot be empty.") unless it declares
  ``"validation": "0"`` (String only); a failed field stops the import before the module is
  called;
- ``app/Model/Event.php`` ``handleMispFormatFromModuleResult`` (``to_ids`` from the type's
  default when absent) and ``processModuleResultsData``: an attribute whose uuid exists is
  refused (``MispAttribute.php``: uuid isUnique on create) and counted in "N attribute could not
  be saved", its tags are dropped (attached only after a successful save), and its uuid is mapped
  back with ``__findOriginalUUID`` so references to it still land; objects and their attributes
  are created; a reference is created when its target is in the event; any save unpublishes.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import requests
from misp_standin import DESCRIBE_TYPES, MISPStandIn

ENRICHMENT_TIMEOUT = 10.0  # seconds, Server.php Plugin.Enrichment_timeout default
IMPORT_TIMEOUT = 10.0  # seconds, Server.php Plugin.Import_timeout default
TYPE_DEFAULTS = DESCRIBE_TYPES["result"]["sane_defaults"]


class MISPRefused(Exception):
    """What MISP shows instead of the results page (an exception page or a flash error)."""


@dataclass
class Saved:
    """What processModuleResultsData did, and the flash message the analyst reads."""

    message: str
    failed_attributes: int = 0
    created: list[dict] = field(default_factory=list)


class ModuleFront:
    def __init__(
        self,
        misp: MISPStandIn,
        modules_url: str,
        enrichment_timeout=ENRICHMENT_TIMEOUT,
        import_timeout=IMPORT_TIMEOUT,
    ):
        self.misp = misp
        self.modules_url = modules_url.rstrip("/")
        self.timeouts = {"Enrichment": enrichment_timeout, "Import": import_timeout}

    # -- querying (EventsController, Module.php) ---------------------------------------------

    def enrich_attribute(self, module: str, event: dict, attribute: dict, config: dict) -> dict:
        payload = {"module": module, "attribute": attribute, "event_id": event["id"], "config": config}
        return self._resolved(self._query(payload, "Enrichment"))

    def enrich_object(self, module: str, event: dict, obj: dict, config: dict) -> dict:
        payload = {"module": module, "object": obj, "event_id": event["id"], "config": config}
        resolved = self._resolved(self._query(payload, "Enrichment"))
        if not resolved.get("Attribute") and not resolved.get("Object"):
            raise MISPRefused("No Attribute or Object returned by the module.")
        return resolved

    def import_file(
        self, module: str, event: dict, data: bytes, filename: str, config: dict, user_config: dict
    ) -> dict:
        """``importModule`` with a file upload: userConfig validated first, then the query."""
        meta = self.module(module)
        for name, spec in (meta["mispattributes"].get("userConfig") or {}).items():
            optional = spec.get("validation") == "0" and spec.get("type") == "String"
            if spec.get("type") == "String" and not optional and not user_config.get(name):
                raise MISPRefused(f"{name.capitalize()}: Field cannot be empty.")  # validateStringField
        payload = {
            "module": module,
            "event_id": event["id"],
            "config": {**config, **user_config},
            "data": base64.b64encode(data).decode(),
            "filename": filename,
        }
        return self._resolved(self._query(payload, "Import"))

    def module(self, name: str) -> dict:
        modules = requests.get(f"{self.modules_url}/modules", timeout=10).json()
        return next(m for m in modules if m["name"] == name)

    def _query(self, payload: dict, family: str) -> dict:
        try:
            answer = requests.post(
                f"{self.modules_url}/query", data=json.dumps(payload), timeout=self.timeouts[family]
            )
            answer.raise_for_status()
            result = answer.json()
        except (requests.RequestException, ValueError):
            raise MISPRefused(f"{family} service not reachable.") from None
        if "error" in result:
            raise MISPRefused(str(result["error"]))  # shown as a flash error, no results
        return result

    @staticmethod
    def _resolved(result: dict) -> dict:
        """handleMispFormatFromModuleResult: attributes get their type's to_ids when absent."""
        content = result.get("results") or {}
        resolved = {key: content[key] for key in ("Attribute", "Object", "Tag") if content.get(key)}
        for attribute in resolved.get("Attribute", []) + [
            a for o in resolved.get("Object", []) for a in o.get("Attribute", [])
        ]:
            attribute.setdefault("to_ids", bool(TYPE_DEFAULTS[attribute["type"]]["to_ids"]))
        return resolved

    # -- saving (Event.php processModuleResultsData) -------------------------------------------

    def save(self, event: dict, resolved: dict) -> Saved:
        saved = Saved(message="")
        recovered: dict[str, str] = {}
        for attribute in resolved.get("Attribute", []):
            if attribute.get("uuid") and self.misp.uuid_taken(attribute["uuid"]):
                saved.failed_attributes += 1
                original = self._original_uuid(event, attribute)
                if original:
                    recovered[attribute["uuid"]] = original
                continue  # tags are attached only after a successful save
            created = self.misp._attribute(event, attribute, None)
            event["Attribute"].append(created)
            saved.created.append(created)
        objects = []
        for obj in resolved.get("Object", []):
            created = self.misp._object(event, obj)
            created["Attribute"] = [self.misp._attribute(event, a, created) for a in obj.get("Attribute", [])]
            event["Object"].append(created)
            saved.created.append(created)
            objects.append((created, obj.get("ObjectReference", [])))
        targets = {t["uuid"]: t for t in event["Attribute"] + event["Object"]}
        for created, references in objects:
            for reference in references:
                target = targets.get(
                    recovered.get(reference["referenced_uuid"], reference["referenced_uuid"])
                )
                if target is not None:
                    created["ObjectReference"].append(
                        {
                            "referenced_uuid": target["uuid"],
                            "relationship_type": reference["relationship_type"],
                            "comment": reference.get("comment", ""),
                            "object_uuid": created["uuid"],
                        }
                    )
        if saved.created:
            self.misp.unpublish(event)
        if saved.failed_attributes == 1:
            saved.message = (
                "1 attribute could not be saved. Reason for the failure: "
                '{"uuid":["The UUID provided is not unique"]}'
            )
        elif saved.failed_attributes:
            saved.message = f"{saved.failed_attributes} attributes could not be saved."
        return saved

    @staticmethod
    def _original_uuid(event: dict, attribute: dict) -> str:
        """__findOriginalUUID: a non-object attribute of the event with the same type and value."""
        same = (
            a
            for a in event["Attribute"]
            if (a["type"], a["value"]) == (attribute["type"], attribute["value"])
        )
        return next((a["uuid"] for a in same), "")
