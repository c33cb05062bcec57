"""The Quaid facade: add, search, delete, browse; ties store, index, clusters and matcher.

CONTRACT (used by the CLI and the service):

    q = Quaid.open(settings)                     # starts embedded Redis when settings.redis_url is None
    q.add(data: bytes, name: str = "", tags=(), metadata=None) -> AddResult   # .id .name .status ("added"|"duplicate") .cluster ; .to_json()
    q.search(data: bytes, top: int = 10, include_rejected=False) -> SearchResult  # .decision .matches[Match] ; .to_json()
    q.get(id) -> PictureRecord (.to_json())      # raises NotFound
    q.image(id) -> tuple[bytes, str] | None     # stored bytes or thumbnail, with content type
    q.update(id, tags=None, metadata=None) -> PictureRecord
    q.delete(id) -> None                         # raises NotFound
    q.clusters() -> list[dict]; q.cluster(id) -> dict; q.export(fmt: "json"|"graph") -> dict
    q.stats() -> dict
    q.close()
Errors are engine.errors.* exceptions.
"""
