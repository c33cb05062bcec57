"""Picture commands of the ``quaid`` CLI: add, search, show, delete, stats, export.

Each command opens the local store through :class:`engine.core.Quaid` once (so a
search of many pictures loads the candidate index once), or, for ``add`` and
``search`` with ``--server``, a running service (:mod:`engine.cli.backend`); it
reports one line per input, and keeps going when one input fails: its reason
goes to stderr and the exit code is 1 at the end. A search queues its to-review
matches in the review queue, locally as through the service.

Inputs obey the API's rules (:mod:`engine.validation`): tags and metadata are
checked once before the batch (a bad one stops the command with one line); a
file's name is its path, any byte that is not UTF-8 written as ``\\xNN``, and a
name the rules refuse fails that file alone. Only regular files are read: a
FIFO, device or socket is skipped with its reason, never opened (opening a FIFO
waits for a writer; opening a device can act on it).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm import tqdm

from engine.cli.backend import open_backend
from engine.config import load_settings
from engine.errors import BadInput, PictureTooLarge, QuaidError
from engine.validation import check_metadata, check_name, check_tags, file_name, printable
from quaid_client import ServiceError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the picture commands to the ``quaid`` parser."""
    _register_add(subparsers)
    _register_search(subparsers)
    _register_show(subparsers)
    _register_delete(subparsers)
    _register_stats(subparsers)
    _register_check(subparsers)
    _register_export(subparsers)


# --- argument parsers -------------------------------------------------------------------

def _register_add(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "add", help="add pictures (files or folders, recursively) to the store",
        description="Add pictures to the store. Adding the same bytes twice reports 'duplicate'.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="picture file or folder (recursive)")
    p.add_argument("--tag", action="append", default=[], metavar="T", help="tag to attach (repeatable)")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="metadata entry to attach (repeatable)")
    p.add_argument("--brand", metavar="NAME",
                   help="the pictures are this brand's baseline (its legitimate look; kept in metadata)")
    p.add_argument("--domain", metavar="HOST",
                   help="host name or URL the pictures were captured on (kept in metadata)")
    p.add_argument("--json", action="store_true", help="print one JSON object per line")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes decoding pictures and computing features in parallel "
                        "(local store; default: one per core)")
    _add_server_option(p)
    p.set_defaults(func=run_add)


def _register_search(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search", help="find stored pictures that are the same or nearly the same",
        description="Search the store with one or more pictures, or with a partner's hashes instead "
                    "of a picture (--hash; the answer is then at best to-review: hashes alone cannot "
                    "tell template siblings apart); matches are sorted best first.")
    p.add_argument("paths", nargs="*", metavar="IMAGE", help="picture file or folder (recursive)")
    p.add_argument("--hash", action="append", default=[], metavar="NAME=VALUE", dest="hashes",
                   help="search by this hash instead of a picture (repeatable; names as `quaid hash` "
                        "writes them: pdq, phash, dhash, ahash, whash, phash_dct_base64; "
                        "pdq_quality=N with pdq refuses the search when N is under 50)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="at most N matches per query (10)")
    p.add_argument("--all", action="store_true", dest="include_rejected",
                   help="also list rejected candidates")
    p.add_argument("--domain", action="append", metavar="HOST",
                   help="host name or URL the pictures were seen on (repeatable: a redirect chain): a "
                        "match against a brand baseline is then legitimate (every one is the brand's) "
                        "or phishing-suspected")
    p.add_argument("--json", action="store_true", help="print one JSON object per query and line")
    _add_server_option(p)
    p.set_defaults(func=run_search)


def _register_show(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("show", help="show one stored picture's record",
                              description="Show a stored picture (full id or unique id prefix).")
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=run_show)


def _register_delete(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("delete", help="delete stored pictures",
                              description="Delete stored pictures (full id or unique id prefix).")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.set_defaults(func=run_delete)


def _register_stats(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stats", help="pictures, clusters and store size",
                              description="Counts of pictures and clusters, and the store's size.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_stats)


def _register_check(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check", help="check that Redis and the disk tier agree",
        description="Compare every record's references with the disk tier: data no record refers to "
                    "(left by a process killed mid-add) and records whose data is lost. Run it while "
                    "nothing is being added.")
    p.add_argument("--repair", action="store_true",
                   help="move large values still kept in Redis to the tier, delete the unreferenced "
                        "data, and the records whose data is lost")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_check)


def _register_export(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export pictures and clusters as JSON or as a graph",
        description="Export the store: 'json' lists pictures and clusters; 'graph' gives nodes, "
                    "edges (with distances and decisions) and clusters for a graph viewer.")
    p.add_argument("--format", choices=("json", "graph"), default="json")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=run_export)


# --- commands ---------------------------------------------------------------------------

def run_add(args: argparse.Namespace) -> int:
    tags = check_tags(args.tag)
    metadata = _parse_meta(args.meta)
    metadata.update({key: value for key, value in (("brand", args.brand), ("domain", args.domain)) if value})
    metadata = check_metadata(metadata)
    files = list(iter_files(args.paths))
    if args.workers is not None and args.workers < 1:
        raise BadInput("--workers must be at least 1")
    if not args.server:
        return _add_locally(args, files, tags, metadata)
    limit = load_settings().max_upload_bytes
    failures = 0
    with open_backend(args.server) as quaid:
        for path in tqdm(files, desc="add", unit="pic", file=sys.stderr, disable=_no_bar(files)):
            try:
                name = check_name(file_name(path))
                result = quaid.add(read_picture(path, limit), name=name, tags=tags, metadata=metadata)
            except (QuaidError, ServiceError, OSError) as exc:
                failures += 1
                _fail(args, "add", path, exc, {"id": None, "name": file_name(path), "status": "error",
                                                "cluster": None})
                continue
            if args.json:
                _print_json(result)
            else:
                tqdm.write(_add_line(result), file=sys.stdout)
    return 1 if failures or not files else 0


def _add_line(result: dict) -> str:
    """One added (or duplicate) picture: status, id, cluster, name, and ``[noise: why]`` when noise."""
    return (f"{result['status']:<9} {result['id']}  cluster {result['cluster']}  "
            f"{printable(result['name'])}{_noise_note(result.get('noise'))}")


def _add_locally(args: argparse.Namespace, files: list[Path], tags: list[str], metadata: dict) -> int:
    """Add to the local store through :mod:`engine.ingest` (parallel feature extraction, already
    stored files skipped by SHA-256 without decoding them); the bar shows the rate and time left."""
    from engine.ingest import default_workers, ingest

    limit = load_settings().max_upload_bytes
    workers = min(args.workers or default_workers(), max(1, len(files)))  # one file: no process started
    failures = 0
    bar = tqdm(total=len(files), desc="add", unit="pic", file=sys.stderr, disable=_no_bar(files))
    with _open_quaid() as quaid:
        items = (_item(path, limit) for path in files)
        for path, outcome in zip(files, ingest(quaid, items, tags, metadata, workers), strict=True):
            bar.update()
            if outcome.result is None:
                failures += 1
                _fail(args, "add", path, BadInput(outcome.error), outcome.to_json())
            elif args.json:
                _print_json(outcome.to_json())
            else:
                tqdm.write(_add_line(outcome.result.to_json()), file=sys.stdout)
    bar.close()
    return 1 if failures or not files else 0


def _item(path: Path, limit: int):
    """The ingest input of one file: its checked name and bytes, or why it cannot be read."""
    from engine.ingest import Item

    try:
        return Item(check_name(file_name(path)), read_picture(path, limit))
    except (QuaidError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return Item(file_name(path), None, reason)


def run_search(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise BadInput("--top must be at least 1")
    if args.hashes:
        return _search_hashes(args)
    if not args.paths:
        raise BadInput("give a picture file or folder to search, or --hash NAME=VALUE")
    from engine.brands import query_domains

    query_domains(args.domain)  # a bad domain stops the command once, before any search
    files = list(iter_files(args.paths))
    limit = load_settings().max_upload_bytes
    failures = 0
    with open_backend(args.server) as quaid:
        for path in tqdm(files, desc="search", unit="pic", file=sys.stderr, disable=_no_bar(files)):
            try:
                result = quaid.search(read_picture(path, limit), top=args.top,
                                      include_rejected=args.include_rejected, name=file_name(path),
                                      domain=args.domain)
            except (QuaidError, ServiceError, OSError) as exc:
                failures += 1
                _fail(args, "search", path, exc, {"query": file_name(path), "decision": None,
                                                   "matches": [], "status": "error"})
                continue
            answer = {"query": file_name(path), **result}
            if args.json:
                _print_json(answer)
            else:
                tqdm.write(_search_table(answer), file=sys.stdout)
    return 1 if failures or not files else 0


def _search_hashes(args: argparse.Namespace) -> int:
    if args.paths:
        raise BadInput("search either pictures or --hash values, not both at once")
    hashes = {}
    for item in args.hashes:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise BadInput(f"--hash wants NAME=VALUE, got {printable(item[:80])!r}")
        hashes[name.strip()] = value.strip()
    with open_backend(args.server) as quaid:
        answer = {"query": " ".join(f"{n}={v}" for n, v in hashes.items()),
                  **quaid.search_hashes(hashes, top=args.top, include_rejected=args.include_rejected,
                                        domain=args.domain)}
    if args.json:
        _print_json(answer)
    else:
        print(_search_table(answer) + f"\n  (evidence: {answer['evidence']}; compared: "
              f"{', '.join(answer['compared'])})")
    return 0


def run_show(args: argparse.Namespace) -> int:
    with _open_quaid() as quaid:
        record = quaid.get(quaid.resolve(args.id)).to_json()
    if args.json:
        _print_json(record)
    else:
        width = max(len(k) for k in record)
        for key, value in record.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            print(f"{key:<{width}}  {printable(text)}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    failures = 0
    with _open_quaid() as quaid:
        for ident in args.ids:
            try:
                full = quaid.resolve(ident)
                quaid.delete(full)
            except QuaidError as exc:
                failures += 1
                print(f"quaid delete: {ident}: {exc}", file=sys.stderr)
                continue
            print(f"deleted {full}")
    return 1 if failures else 0


def run_stats(args: argparse.Namespace) -> int:
    with _open_quaid() as quaid:
        stats = quaid.stats()
    if args.json:
        _print_json(stats)
    else:
        width = max(len(k) for k in stats)
        for key, value in stats.items():
            print(f"{key:<{width}}  {value}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Exit code 1 when records have lost their data and were not repaired."""
    with _open_quaid() as quaid:
        report = quaid.check_store(repair=args.repair)
    if args.json:
        _print_json(report.to_json())
    else:
        repaired = f"; repaired ({report.moved} values moved from Redis)" if report.repaired else ""
        print(f"{report.pictures} pictures; {len(report.orphans)} unreferenced tier values; "
              f"{len(report.missing)} records with lost tier data{repaired}")
    deleted = " (record deleted)" if args.repair else ""
    for ident in report.missing:
        print(f"quaid check: {ident}: its disk-tier data is lost{deleted}", file=sys.stderr)
    return 1 if report.missing and not args.repair else 0


def run_export(args: argparse.Namespace) -> int:
    with _open_quaid() as quaid:
        document = quaid.export(args.format)
    text = json.dumps(document, ensure_ascii=False, indent=1)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


# --- helpers ----------------------------------------------------------------------------

def iter_files(paths: Iterable[str]) -> Iterator[Path]:
    """Paths named, and every entry but folders under named folders (sorted, hidden ones skipped).

    A path that does not exist, or is not a regular file (a FIFO, a device, a socket, a broken
    link), is yielded too, so the command reports why it skipped it (:func:`read_picture`).
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path).parts
                if not child.is_dir() and not any(part.startswith(".") for part in relative):
                    yield child
        else:
            yield path


def read_picture(path: Path, limit: int) -> bytes:
    """The bytes of a regular file, refused past ``limit`` without reading further (a 5 GB file
    costs nothing); anything else is refused before it is opened."""
    _regular(os.stat(path).st_mode)
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)  # replaced by a FIFO since?
    with os.fdopen(descriptor, "rb") as handle:
        _regular(os.fstat(descriptor).st_mode)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise PictureTooLarge(f"file larger than the upload limit of {limit} bytes")
    return data


def _regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise BadInput(f"skipped: {_KINDS.get(stat.S_IFMT(mode), 'not a regular file')}, not a picture file")


_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def _open_quaid():
    from engine.core import Quaid  # imported late: `quaid --help` must not need Redis

    return Quaid.open(load_settings())


def _add_server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="URL",
                        help="go through a running `quaid serve` at URL instead of the local store "
                             "(API key from $QUAID_API_KEY)")


def _parse_meta(items: list[str]) -> dict[str, str]:
    metadata = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f"--meta wants KEY=VALUE, got {printable(item[:80])!r}")
        metadata[key] = value
    return metadata


def _fail(args: argparse.Namespace, command: str, path: Path, exc: BaseException, record: dict) -> None:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    tqdm.write(f"quaid {command}: {printable(file_name(path))}: {printable(reason)}", file=sys.stderr)
    if args.json:
        _print_json({**record, "error": reason})


def _no_bar(items: list) -> bool | None:
    """No bar for a single input; otherwise let tqdm decide (none when stderr is not a terminal)."""
    return True if len(items) < 2 else None


def _print_json(value: dict) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _search_table(answer: dict) -> str:
    lines = [f"{printable(answer['query'])}: {answer['decision']}{_brand_note(answer)}"
             f"{_noise_note(answer.get('noise'))}"]
    for rank, match in enumerate(answer["matches"], 1):
        reason = f"  ({match['reason']})" if match.get("reason") else ""
        lines.append(f"  {rank:>3}. {match['decision']:<9} {match['distance']:.4f}  "
                     f"cluster {match['cluster']:<6} {match['id'][:16]}  {printable(match['name'])}{reason}"
                     f"{_brand_note(match)}")
    if not answer["matches"]:
        lines.append("  (no match)")
    return "\n".join(lines)


def _brand_note(answer: dict) -> str:
    """`` [phishing-suspected: PayPal]`` for an answer or match about a brand baseline."""
    brand = answer.get("brand")
    if not brand:
        return ""
    verdict = answer.get("verdict") or "brand"
    domain = f" on {', '.join(answer['domains'])}" if answer.get("domains") else ""
    return f"  [{verdict}: {printable(brand['name'])}{domain}]"
def _noise_note(noise: dict | None) -> str:
    """``  [noise: why]`` after a search answer's decision when the query is noise (engine.noise)."""
    if not noise:
        return ""
    picture = f" {noise['picture'][:16]}" if noise.get("picture") else ""
    return f"  [noise: {noise['reason']}{picture}]"
