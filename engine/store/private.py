"""Private files: quaid's data directory is readable by its owner only, whatever the umask.

Why: the store holds the intelligence (names, tags, metadata, thumbnails) and
the Redis socket gives full access to it. Under the usual umask 022 a plain
``mkdir`` gives 0755 and Redis writes its dump and append-only file 0644, so
every local user could read them. Here:

* :func:`private_dir` creates a directory 0700, or takes an existing one that
  this user owns and narrows it to 0700; a directory owned by another user is
  refused (it may hold files that user controls), and so is a shared one that
  must stay open (``/tmp``, ``/``, the home folder);
* :data:`PRIVATE_UMASK` is the umask the embedded ``redis-server`` runs with, so
  its dump, append-only file, log, pid file and socket are created 0600/0700;
* :func:`narrow_tree` narrows files a previous version left readable;
* :func:`check_private` is the check made before trusting a path someone else
  could have prepared (the socket and its directory): owned by this user and
  neither group- nor other-writable, else :class:`engine.errors.StoreUnavailable`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.errors import StoreUnavailable

PRIVATE_UMASK = 0o077  # files 0600, directories 0700
DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) 0700, or narrow an existing one of ours to 0700."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass  # another process made it meanwhile: checked below like any existing directory
    info = _stat(path, follow=True)
    if not stat.S_ISDIR(info.st_mode):
        raise StoreUnavailable(f"{path} is not a directory")
    if info.st_uid != os.geteuid():
        raise StoreUnavailable(f"{path} belongs to user id {info.st_uid}, not to this user: "
                               "refusing to use it")
    if stat.S_IMODE(info.st_mode) != DIR_MODE:
        if _shared(path, info):
            raise StoreUnavailable(f"{path} is a shared folder (mode {stat.S_IMODE(info.st_mode):o}): "
                                   "set QUAID_HOME to a folder of its own")
        os.chmod(path, DIR_MODE)
    return path


def _shared(path: Path, info: os.stat_result) -> bool:
    """A folder others rely on being open (``/tmp``: sticky; ``/``; the home folder): never narrowed."""
    if info.st_mode & stat.S_ISVTX:
        return True
    resolved = path.resolve()
    return resolved == Path(resolved.anchor) or resolved == Path.home().resolve()


def narrow_tree(root: Path) -> None:
    """Files under ``root`` 0600 and directories 0700 (only those this user owns; links not followed)."""
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            entry = Path(folder) / name
            try:
                info = entry.lstat()
            except FileNotFoundError:
                continue
            if info.st_uid != os.geteuid() or stat.S_ISLNK(info.st_mode):
                continue
            wanted = DIR_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
            if stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode):
                if stat.S_IMODE(info.st_mode) & ~wanted:
                    os.chmod(entry, stat.S_IMODE(info.st_mode) & wanted)


def check_private(path: Path, what: str, kind: int) -> None:
    """Refuse ``path`` unless it is a ``kind`` (``stat.S_IFDIR``, ``stat.S_IFSOCK``) of this user that
    nobody else can write to. Symbolic links are not followed: a link is refused."""
    info = _stat(path, follow=False)
    if stat.S_IFMT(info.st_mode) != kind:
        raise StoreUnavailable(f"{what} {path} is not a {_KINDS.get(kind, 'file')}: refusing to use it")
    if info.st_uid != os.geteuid():
        raise StoreUnavailable(f"{what} {path} belongs to user id {info.st_uid}, not to this user: "
                               "refusing to use it")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StoreUnavailable(f"{what} {path} is writable by other users "
                               f"(mode {stat.S_IMODE(info.st_mode):o}): refusing to use it")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` created 0600 (an existing file is narrowed to 0600 first)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(descriptor, FILE_MODE)
        handle.write(text)


def open_private(path: Path, flags: int = os.O_RDWR | os.O_CREAT):
    """A binary file object on ``path``, created 0600 (used for lock files)."""
    descriptor = os.open(path, flags | os.O_NOFOLLOW, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)
    return os.fdopen(descriptor, "rb+")


_KINDS = {stat.S_IFDIR: "directory", stat.S_IFSOCK: "socket"}


def _stat(path: Path, follow: bool) -> os.stat_result:
    try:
        return os.stat(path, follow_symlinks=follow)
    except OSError as exc:
        raise StoreUnavailable(f"cannot use {path}: {exc.strerror or exc}") from None
