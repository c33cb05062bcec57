"""The Redis store: key names (:mod:`.keys`), the embedded server (:mod:`.embedded`),
connection (:mod:`.connect`), picture records (:mod:`.records`) and the change stream
(:mod:`.changes`) that keeps every process's in-memory index in sync.
"""

from engine.store.changes import ChangeLog
from engine.store.connect import Connection, connect
from engine.store.embedded import EmbeddedRedis
from engine.store.records import IndexEntry, PictureRecord, RecordStore

__all__ = [
    "ChangeLog", "Connection", "EmbeddedRedis", "IndexEntry", "PictureRecord", "RecordStore", "connect",
]
