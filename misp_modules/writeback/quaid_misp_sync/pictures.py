"""Finding the picture attachments of a MISP event.

MISP stores files as ``attachment`` attributes (bytes base64 in ``data`` when the event is
fetched with ``withAttachments``) and malware as ``malware-sample`` attributes (a zip with the
password ``infected``). Both may stand alone or sit in an object (``image``, ``file``,
``screenshot`` relations...). Only files whose first bytes are a picture format's signature
are sent to quaid: the rest (documents, executables) would only cost a refused upload.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass

from pymisp import MISPAttribute, MISPEvent, MISPObject

MALWARE_SAMPLE_PASSWORD = b"infected"
MAX_PICTURE_BYTES = 50 * 1024 * 1024
READ_CHUNK = 1024 * 1024  # bytes decompressed at a time
# File signatures of the formats quaid decodes (PNG, JPEG, GIF, BMP, TIFF, WebP).
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


@dataclass
class PictureRef:
    """One picture attachment of an event, and where it sits."""

    event: MISPEvent
    attribute: MISPAttribute
    obj: MISPObject | None  # the object holding the attachment, None for a bare attribute
    data: bytes
    hashes: dict | None = None  # its hashes as partners' tools write them (quaid's POST /api/v1/hash)

    @property
    def name(self) -> str:
        return str(self.attribute.value).split("|")[0]

    @property
    def picture_id(self) -> str:
        """quaid's id of the picture: the SHA-256 of its bytes."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def location(self) -> dict:
        """The metadata quaid keeps with the picture: how to find it again in MISP."""
        return misp_location(
            event_uuid=self.event.uuid,
            event_id=str(getattr(self.event, "id", "") or ""),
            attribute_uuid=self.attribute.uuid,
            object_uuid=self.obj.uuid if self.obj is not None else "",
        )


# The one metadata schema of every MISP-side path (write-back, expansion ``register``, import):
# the event by uuid and/or by this instance's id, the attachment attribute, its object if any.
LOCATION_KEYS = ("misp_event_uuid", "misp_event_id", "misp_attribute_uuid", "misp_object_uuid")


def misp_location(
    event_uuid: str = "", event_id: str = "", attribute_uuid: str = "", object_uuid: str = ""
) -> dict:
    """quaid metadata naming a MISP attachment; empty fields left out."""
    values = (event_uuid, event_id, attribute_uuid, object_uuid)
    return {key: str(value) for key, value in zip(LOCATION_KEYS, values, strict=True) if value}


def is_picture(data: bytes) -> bool:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return True
    return any(data.startswith(signature) for signature in SIGNATURES)


def attachment_bytes(attribute: MISPAttribute) -> bytes | None:
    """The file of an attachment or malware-sample attribute, None when absent, unreadable or
    not a picture. A malware-sample is decompressed chunk by chunk: a member that does not
    start like a picture is dropped after its first chunk, one that passes
    ``MAX_PICTURE_BYTES`` as soon as it does (a zip bomb never sits whole in memory)."""
    data = getattr(attribute, "data", None)
    if data is None:
        return None
    raw = data.getvalue() if isinstance(data, io.BytesIO) else bytes(data)
    if attribute.type == "attachment":
        return raw
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = [i for i in archive.infolist() if not i.filename.endswith(".filename.txt")]
            return _picture_member(archive, members[0]) if members else None
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, zlib.error):
        return None


def _picture_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | None:
    chunks, size = [], 0
    with archive.open(info, pwd=MALWARE_SAMPLE_PASSWORD) as member:
        while chunk := member.read(READ_CHUNK):
            size += len(chunk)
            if (not chunks and not is_picture(chunk)) or size > MAX_PICTURE_BYTES:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def event_pictures(event: MISPEvent) -> list[PictureRef]:
    """Every picture attachment of ``event``, bare or inside an object."""
    found = []
    holders: list[tuple[MISPObject | None, list[MISPAttribute]]] = [(None, event.attributes)]
    holders += [(obj, obj.attributes) for obj in event.objects]
    for obj, attributes in holders:
        for attribute in attributes:
            if attribute.type not in ("attachment", "malware-sample") or getattr(attribute, "deleted", False):
                continue
            data = attachment_bytes(attribute)
            if data and len(data) <= MAX_PICTURE_BYTES and is_picture(data):
                found.append(PictureRef(event, attribute, obj, data))
    return found
