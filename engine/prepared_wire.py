"""A prepared picture as framed bytes: how a worker process hands its result to the store's owner.

Why not pickle: a worker decodes attacker-supplied pictures, so what it sends back is treated as
untrusted by the process that holds the store. Unpickling runs whatever opcodes the stream holds;
this format is read by a plain parser that only slices bytes and checks lengths, and a stream it
cannot read is one file's failure, never code run in the owner.

Layout: one tag byte, then fields. Tag ``P``: a :class:`~engine.prepared.Prepared` as a sequence
of length-prefixed fields (4-byte big-endian length, then the bytes; integers are 8-byte signed
fields; last, the low-information detector's measures as a JSON object, empty when it did not
flag the picture); tag ``E``: the UTF-8 reason the picture could not be prepared.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

from engine.prepared import Prepared

PREPARED, REASON = b"P", b"E"
LENGTH = struct.Struct(">I")
INTEGER = struct.Struct(">q")
MAX_ENTRIES = 4096  # algorithms, codes or orientations in one result: far above any real one


class MalformedResult(ValueError):
    """The bytes are not a result this module wrote."""


def encode(result: Prepared | str) -> bytes:
    """``result`` (a prepared picture, or the reason it failed) as framed bytes."""
    if isinstance(result, str):
        return REASON + result.encode("utf-8", "replace")
    return PREPARED + b"".join(_frame(field) for field in _fields(result))


def decode(data: bytes) -> Prepared | str:
    """The result :func:`encode` wrote; anything else raises :class:`MalformedResult`."""
    tag, body = data[:1], memoryview(data)[1:]
    if tag == REASON:
        return bytes(body).decode("utf-8", "replace")
    if tag != PREPARED:
        raise MalformedResult("unknown result tag")
    fields = _Reader(body)
    prepared = Prepared(
        id=fields.text(), size=fields.count(1 << 62), width=fields.count(1 << 31),
        height=fields.count(1 << 31), format=fields.text(),
        query_features=fields.lists(), codes=fields.lists(), image=fields.image(),
        low_information=fields.measures())
    fields.finish()
    return prepared


def _fields(prepared: Prepared) -> Iterator[bytes]:
    yield prepared.id.encode()
    for number in (prepared.size, prepared.width, prepared.height):
        yield INTEGER.pack(number)
    yield prepared.format.encode()
    for mapping in (prepared.query_features, prepared.codes):
        yield INTEGER.pack(len(mapping))
        for name, values in mapping.items():
            yield name.encode()
            yield INTEGER.pack(len(values))
            yield from values
    if prepared.image is None:
        yield INTEGER.pack(0)
    else:
        yield INTEGER.pack(1)
        yield prepared.image[0]
        yield prepared.image[1].encode()
    yield json.dumps(prepared.low_information).encode() if prepared.low_information is not None else b""


def _frame(field: bytes) -> bytes:
    return LENGTH.pack(len(field)) + field


class _Reader:
    """Reads fields in order; every length and count is checked against what is left."""

    def __init__(self, body: memoryview) -> None:
        self.body, self.at = body, 0

    def field(self) -> bytes:
        if self.at + LENGTH.size > len(self.body):
            raise MalformedResult("truncated field length")
        (size,) = LENGTH.unpack_from(self.body, self.at)
        start, self.at = self.at + LENGTH.size, self.at + LENGTH.size + size
        if self.at > len(self.body):
            raise MalformedResult("truncated field")
        return bytes(self.body[start:self.at])

    def text(self) -> str:
        try:
            return self.field().decode()
        except UnicodeDecodeError:
            raise MalformedResult("a text field is not UTF-8") from None

    def count(self, limit: int = MAX_ENTRIES) -> int:
        field = self.field()
        if len(field) != INTEGER.size:
            raise MalformedResult("an integer field has the wrong length")
        (number,) = INTEGER.unpack(field)
        if not 0 <= number <= limit:
            raise MalformedResult(f"a count out of range: {number}")
        return number

    def lists(self) -> dict[str, list[bytes]]:
        return {self.text(): [self.field() for _ in range(self.count())] for _ in range(self.count())}

    def image(self) -> tuple[bytes, str] | None:
        if not self.count(1):
            return None
        return self.field(), self.text()

    def measures(self) -> dict[str, float] | None:
        text = self.text()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            raise MalformedResult("the measures are not JSON") from None
        if not isinstance(value, dict) or not all(isinstance(v, (int, float)) for v in value.values()):
            raise MalformedResult("the measures are not an object of numbers")
        return value

    def finish(self) -> None:
        if self.at != len(self.body):
            raise MalformedResult("bytes left after the last field")
