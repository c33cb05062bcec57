"""Worker processes that prepare pictures (:func:`engine.prepared.prepare`) for the store's owner.

Each worker is a process with one pipe. The owner sends a picture's bytes, the worker answers
with the framed result of :mod:`engine.prepared_wire`: only raw bytes cross the pipe
(``send_bytes`` / ``recv_bytes``), so nothing a worker writes is ever unpickled by the owner.
One thread per worker in the owner feeds it jobs from a shared queue, one at a time, so a
worker that dies (out of memory on a hostile picture) fails the one file it held; the next job
starts a new worker.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import queue
import threading
from concurrent.futures import Future
from multiprocessing.connection import Connection

from engine import prepared_wire
from engine.config import Settings
from engine.errors import QuaidError
from engine.matching import Matcher
from engine.prepared import Prepared, prepare

WORKER_DIED = "a worker process died (out of memory?) while this file was prepared"
MALFORMED = "a worker process answered with a malformed result"
_STOP = None  # queued once per feeder thread by close()


class Preparer:
    """Runs :func:`engine.prepared.prepare` in ``workers`` processes (in this one when 1); safe to
    share between threads.

    Workers are forked from a *fork server*, a fresh process that has imported this module: the
    caller holds an LMDB environment, Redis connections and threads that must not cross a fork.
    As with any ``multiprocessing`` start method but ``fork``, a script calling this with more
    than one worker needs the ``if __name__ == "__main__":`` guard. Workers start on first use,
    so a re-run that finds everything stored starts none.
    """

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings, self.workers = settings, max(1, workers)
        self.matcher: Matcher | None = None
        self._jobs: queue.SimpleQueue[tuple[bytes, Future] | None] = queue.SimpleQueue()
        self._feeders: list[_Feeder] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Preparer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers; jobs not started yet are cancelled."""
        with self._lock:
            feeders, self._feeders = self._feeders, []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP:
                job[1].cancel()
        for _ in feeders:
            self._jobs.put(_STOP)
        for feeder in feeders:
            feeder.join()

    def worker_pids(self) -> list[int]:
        """Process ids of the running workers (for measuring their CPU time)."""
        return [pid for feeder in self._feeders if (pid := feeder.pid) is not None]

    def submit(self, data: bytes) -> Future:
        """A future of the :class:`Prepared` picture, or of the one-line reason it failed."""
        future: Future = Future()
        if self.workers == 1:
            with self._lock:
                self.matcher = self.matcher or Matcher(self.settings)
            future.set_result(prepare_or_reason(self.matcher, self.settings, data))
            return future
        with self._lock:
            while len(self._feeders) < self.workers:
                self._feeders.append(_Feeder(self.settings, self._jobs))
        self._jobs.put((data, future))
        return future


class _Feeder(threading.Thread):
    """Feeds one worker process with jobs, one at a time, and reads back its framed answers."""

    def __init__(self, settings: Settings, jobs: queue.SimpleQueue) -> None:
        super().__init__(daemon=True, name="quaid-prepare-feeder")
        self.settings, self.jobs = settings, jobs
        self.process: multiprocessing.process.BaseProcess | None = None
        self.connection: Connection | None = None
        self.start()

    @property
    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None and process.is_alive() else None

    def run(self) -> None:
        try:
            while (job := self.jobs.get()) is not _STOP:
                data, future = job
                if future.set_running_or_notify_cancel():
                    future.set_result(self._prepared(data))
        finally:
            self._stop_worker()

    def _prepared(self, data: bytes) -> Prepared | str:
        """The worker's answer for ``data``: decoded without pickle, and checked to be about ``data``."""
        try:
            answer = self._ask(data)
        except (EOFError, OSError):
            self._stop_worker()  # the next job starts a new one
            return WORKER_DIED
        try:
            result = prepared_wire.decode(answer)
        except prepared_wire.MalformedResult:
            self._stop_worker()
            return MALFORMED
        if isinstance(result, Prepared) and result.id != hashlib.sha256(data).hexdigest():
            self._stop_worker()
            return MALFORMED
        return result

    def _ask(self, data: bytes) -> bytes:
        if self.process is not None and not self.process.is_alive():
            self._stop_worker()  # died between jobs: not this file's doing
        if self.connection is None:
            self._start_worker()
        self.connection.send_bytes(data)
        return self.connection.recv_bytes()

    def _start_worker(self) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        ours, theirs = context.Pipe(duplex=True)
        self.process = context.Process(target=_serve, args=(theirs, self.settings), daemon=True,
                                       name="quaid-prepare")
        self.process.start()
        theirs.close()
        self.connection = ours

    def _stop_worker(self) -> None:
        connection, process = self.connection, self.process
        self.connection = self.process = None
        if connection is not None:
            connection.close()  # the worker reads end-of-file and exits
        if process is not None:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()


def _serve(connection: Connection, settings: Settings) -> None:
    """A worker's loop: picture bytes in, framed result out, until the owner closes the pipe."""
    from engine.memory import keep_freed_memory

    keep_freed_memory()
    matcher = Matcher(settings)
    while True:
        try:
            data = connection.recv_bytes()
        except EOFError:
            return
        connection.send_bytes(prepared_wire.encode(prepare_or_reason(matcher, settings, data)))


def prepare_or_reason(matcher: Matcher, settings: Settings, data: bytes) -> Prepared | str:
    """A failure is the file's alone: any error becomes its one-line reason (a decoder's crash
    on a hostile file included), so that the batch goes on."""
    try:
        return prepare(matcher, settings, data)
    except QuaidError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - reported with the file, never lost
        return f"cannot process this picture: {type(exc).__name__}: {exc}".splitlines()[0]
