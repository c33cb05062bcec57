"""Batch jobs on Redis streams: submit many files, workers add or search them, results kept.

Why streams and not a hand-rolled loop: douglas-quaid's workers slept one
second per loop and lost work when they died. Here a job is one entry of the
stream ``quaid:jobs`` read by a consumer group (``XREADGROUP ... BLOCK``, so an
idle worker costs nothing and wakes at once):

* the job's files, names and per-file results live in keys sharing the hash
  tag ``{<job>}`` (one Redis Cluster slot), all with a TTL (``JOB_TTL``);
* files are stored one by one as they come (a generator of :class:`JobFile` keeps
  one file in memory at a time) under a total size budget (``max_bytes``); the job
  is queued only once all are stored, and a refused job leaves nothing behind;
* a worker records each file's result as soon as it has it, and refreshes its
  claim on the stream entry (``XCLAIM`` by itself resets the idle time);
* if a worker dies (kill -9, host lost), its entry stays pending in the group;
  any live worker takes it over with ``XAUTOCLAIM`` once it has been idle for
  ``claim_idle`` seconds and *resumes*: files that already have a result are
  skipped, so nothing is added twice (adding is idempotent anyway: ids are the
  SHA-256 of the bytes). After ``MAX_ATTEMPTS`` takeovers the job is marked
  failed instead of looping forever on a poison file.

Everything stored is bytes or JSON; nothing is pickled.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import redis

from engine.errors import BadInput, NotFound, PictureTooLarge, QuaidError, ServiceBusy
from engine.store import keys

log = logging.getLogger("quaid.service.jobs")

JOB_TTL = 7 * 24 * 3600  # seconds a job, its files and its results are kept
MAX_FILES = 1000  # files per job (default of Settings.max_job_files)
MAX_JOB_BYTES = 256 * 1024 * 1024  # bytes of files per job (the service's request limit is lower)
ADMIT_GRACE = 300  # seconds a job counts against its caller before its state is stored
RETRY_AFTER = 30  # seconds a caller refused for a full queue is told to wait
MAX_ATTEMPTS = 3  # takeovers before a job is given up as failed
ACTIONS = ("add", "search")

FileHandler = Callable[[str, bytes, str, dict], dict]  # (action, data, name, options) -> result
# (files as (index, name, bytes), options) -> (index, result) in the same order: adds a job's files in bulk
BatchHandler = Callable[[Iterator[tuple[int, str, bytes]], dict], Iterator[tuple[int, dict]]]
FETCH = 32  # files read from Redis per round trip by a batch handler's feed


class QueueFull(QuaidError):
    """Too many unfinished jobs (for this caller, or in all): 429 with ``Retry-After``."""

    http_status = 429
    retry_after = RETRY_AFTER


@dataclass(frozen=True)
class JobLimits:
    """Bounds on what one caller can queue: a read key may submit search jobs, so these are
    what stops one key from filling Redis with files or starving the other callers."""

    max_files: int = MAX_FILES  # files in one job
    per_caller: int = 10  # unfinished jobs of one API key (or of all anonymous callers)
    queued: int = 200  # unfinished jobs in all


@dataclass(frozen=True)
class JobFile:
    """One file of a job."""

    name: str
    data: bytes


class JobQueue:
    """Submit jobs and read their state; the Redis connection is passed in (binary responses)."""

    def __init__(self, connection: redis.Redis, ttl: int = JOB_TTL, limits: JobLimits | None = None,
                 max_bytes: int = MAX_JOB_BYTES) -> None:
        self.redis = connection
        self.ttl = ttl
        self.limits = limits or JobLimits()
        self.max_bytes = max_bytes

    def submit(self, action: str, files: Iterable[JobFile], options: dict | None = None,
               caller: str = "anonymous") -> str:
        """Store the files one by one, then queue the job; returns its id.

        ``caller`` names who submits (a hash of the API key, never the key): it may have at
        most ``limits.per_caller`` unfinished jobs, else :class:`QueueFull`.
        """
        if action not in ACTIONS:
            raise BadInput(f"action must be one of {', '.join(ACTIONS)}")
        if self.redis.xlen(keys.JOB_STREAM) >= self.limits.queued:
            raise QueueFull(f"the job queue is full ({self.limits.queued} jobs unfinished); retry later")
        job = uuid.uuid4().hex
        self._admit(caller, job)
        try:
            names = self._store_files(job, files)
        except BaseException:
            self.redis.delete(keys.job_files(job))
            self.redis.zrem(keys.jobs_in_flight(caller), job)
            raise
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)  # every key shares the {job} hash tag
        pipe.hset(keys.job(job), mapping={
            "action": action, "status": "queued", "total": len(names), "done": 0, "attempts": 0,
            "created": now, "updated": now, "error": "",
            "names": json.dumps(names), "options": json.dumps(options or {}),
        })
        for key in (keys.job(job), keys.job_files(job)):
            pipe.expire(key, self.ttl)
        pipe.execute()
        ensure_group(self.redis)
        self.redis.xadd(keys.JOB_STREAM, {"job": job})
        return job

    def _store_files(self, job: str, files: Iterable[JobFile]) -> list[str]:
        """Each file in its own write (with the TTL, so a crash mid-way leaves nothing for long)."""
        names: list[str] = []
        stored = 0
        for index, file in enumerate(files):
            if index >= self.limits.max_files:
                raise BadInput(f"a job takes at most {self.limits.max_files} files (setting max_job_files)")
            stored += len(file.data)
            if stored > self.max_bytes:
                raise PictureTooLarge(f"a job takes at most {self.max_bytes} bytes of files")
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(keys.job_files(job), str(index), file.data)
            pipe.expire(keys.job_files(job), self.ttl)
            pipe.execute()
            names.append(file.name)
        if not names:
            raise BadInput("a job needs at least one file")
        return names

    def _admit(self, caller: str, job: str) -> None:
        """Count ``job`` against its caller; add first, then check, so racing submits never
        admit more than the cap (at worst both are refused and retry)."""
        in_flight, now = keys.jobs_in_flight(caller), time.time()
        for member, since in self.redis.zrange(in_flight, 0, -1, withscores=True):
            status = self.redis.hget(keys.job(_text(member)), "status")
            gone = status is None and now - since > ADMIT_GRACE  # expired (not being stored)
            if gone or (status is not None and _text(status) in ("done", "failed")):
                self.redis.zrem(in_flight, member)
        self.redis.zadd(in_flight, {job: now})
        self.redis.expire(in_flight, self.ttl)
        if self.redis.zcard(in_flight) > self.limits.per_caller:
            self.redis.zrem(in_flight, job)
            raise QueueFull(f"{self.limits.per_caller} jobs of this API key are unfinished "
                            "(setting max_jobs_per_key); retry when one is done")

    def status(self, job: str, with_results: bool | None = None) -> dict:
        """The job's state; per-file results once it is done or failed (or when asked)."""
        fields = self.redis.hgetall(keys.job(job)) if _valid_id(job) else {}
        if not fields:
            raise NotFound(f"no job with id {job[:80]}")
        state = {_text(k): _text(v) for k, v in fields.items()}
        out = {
            "job": job, "action": state["action"], "status": state["status"],
            "total": int(state["total"]), "done": int(state["done"]),
            "attempts": int(state["attempts"]),
            "created": float(state["created"]), "updated": float(state["updated"]),
        }
        if state.get("error"):
            out["error"] = state["error"]
        if with_results or (with_results is None and out["status"] in ("done", "failed")):
            out["results"] = self.results(job, json.loads(state["names"]))
        return out

    def results(self, job: str, names: list[str]) -> list[dict]:
        raw = self.redis.hgetall(keys.job_results(job))
        by_index = {int(_text(k)): json.loads(v) for k, v in raw.items()}
        return [by_index[i] for i in range(len(names)) if i in by_index]


class Worker:
    """One consumer of the job stream; run it in a thread with :meth:`run` until ``stop`` is set.

    ``handle(action, data, name, options)`` does the work of one file and returns
    its JSON result; a :class:`QuaidError` becomes that file's error, a Redis
    connection error leaves the job pending for a retry.
    """

    def __init__(self, connection: redis.Redis, handle: FileHandler, stop: threading.Event,
                 claim_idle: float = 60.0, block: float = 2.0, name: str | None = None,
                 batch: BatchHandler | None = None) -> None:
        self.redis = connection
        self.handle = handle
        self.batch = batch  # when set, "add" jobs go through it (engine.ingest: parallel, pipelined)
        self.stop = stop
        self.claim_idle_ms = int(claim_idle * 1000)
        self.block_ms = int(block * 1000)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def run(self) -> None:
        """Serve jobs until ``stop`` is set; survives Redis outages (waits and retries)."""
        backoff = 0.5
        while not self.stop.is_set():
            try:
                ensure_group(self.redis)
                self.step()
                backoff = 0.5
            except redis.exceptions.ConnectionError as exc:
                log.warning("worker %s: store unreachable (%s), retrying in %.1fs", self.name, exc, backoff)
                self.stop.wait(backoff)  # reconnect backoff, not a polling loop
                backoff = min(backoff * 2, 10.0)
            except Exception:  # keep the worker alive; the job stays pending and is retried
                log.exception("worker %s: unexpected error", self.name)
                self.stop.wait(1.0)

    def step(self) -> int:
        """Take over stale entries, then block for a new one; returns the number of jobs run."""
        entries = self._stale() or self._fresh()
        for entry_id, fields in entries:
            self._run(entry_id, _text(fields.get(b"job", fields.get("job", b""))))
        return len(entries)

    def _stale(self) -> list:
        answer = self.redis.xautoclaim(keys.JOB_STREAM, keys.JOB_GROUP, self.name,
                                       min_idle_time=self.claim_idle_ms, count=1)
        return [e for e in answer[1] if e and e[1]]

    def _fresh(self) -> list:
        answer = self.redis.xreadgroup(keys.JOB_GROUP, self.name, {keys.JOB_STREAM: ">"},
                                       count=1, block=self.block_ms)
        return answer[0][1] if answer else []

    def _run(self, entry_id: bytes, job: str) -> None:
        attempts = self.redis.hincrby(keys.job(job), "attempts", 1) if job else 0
        state = {_text(k): _text(v) for k, v in self.redis.hgetall(keys.job(job)).items()} if job else {}
        if not state.get("action"):
            self.redis.delete(keys.job(job))  # expired or never complete: drop the entry
        elif state["status"] in ("done", "failed"):
            pass
        elif attempts > MAX_ATTEMPTS:
            self._finish(job, "failed", f"given up after {MAX_ATTEMPTS} attempts (worker crashes)")
        elif not self._work(entry_id, job, state):
            return  # stopping: the entry stays pending and another worker resumes it
        self.redis.xack(keys.JOB_STREAM, keys.JOB_GROUP, entry_id)
        self.redis.xdel(keys.JOB_STREAM, entry_id)

    def _work(self, entry_id: bytes, job: str, state: dict) -> bool:
        """Process the files without a result yet; False when interrupted by ``stop``."""
        names = json.loads(state["names"])
        options = json.loads(state.get("options") or "{}")
        done = {int(_text(k)) for k in self.redis.hkeys(keys.job_results(job))}
        self._set(job, status="running", done=len(done))
        if state["action"] == "add" and self.batch is not None:
            return self._work_batch(entry_id, job, names, options, done)
        for index, name in enumerate(names):
            if index in done:
                continue
            if self.stop.is_set():
                return False
            data = self.redis.hget(keys.job_files(job), str(index))
            if data is None:
                self._finish(job, "failed", "the job's files expired before they were processed")
                return True
            result = self._one(state["action"], data, name, options)
            if result is None:
                return False  # stopped while waiting for decoding budget
            self._record(entry_id, job, index, result)
        self._finish(job, "done")
        return True

    def _record(self, entry_id: bytes, job: str, index: int, result: dict) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.job_results(job), str(index), json.dumps(result))
        pipe.expire(keys.job_results(job), int(JOB_TTL))
        pipe.hincrby(keys.job(job), "done", 1)
        pipe.hset(keys.job(job), "updated", time.time())
        pipe.execute()
        self._heartbeat(entry_id)

    def _work_batch(self, entry_id: bytes, job: str, names: list[str], options: dict, done: set[int]) -> bool:
        """The files without a result yet, through the batch handler; each result is recorded as it
        comes, so a worker killed mid-job loses none (the rest is resumed like any job)."""
        todo = [i for i in range(len(names)) if i not in done]
        expired = []

        def files() -> Iterator[tuple[int, str, bytes]]:
            for start in range(0, len(todo), FETCH):
                chunk = todo[start: start + FETCH]
                for index, data in zip(chunk, self.redis.hmget(keys.job_files(job), [str(i) for i in chunk]),
                                       strict=True):
                    if data is None:
                        expired.append(index)
                        return
                    yield index, names[index], data

        results = self.batch(files(), options)
        try:
            for index, result in results:
                self._record(entry_id, job, index, result)
                if self.stop.is_set():
                    return False
        finally:
            results.close()
        if expired:
            self._finish(job, "failed", "the job's files expired before they were processed")
        else:
            self._finish(job, "done")
        return True

    def _one(self, action: str, data: bytes, name: str, options: dict) -> dict | None:
        """The file's result; a busy decoding budget (engine.budget) is waited out, not recorded:
        a batch is not in a hurry. None when ``stop`` is set meanwhile."""
        while True:
            try:
                return {"file": name, **self.handle(action, data, name, options)}
            except ServiceBusy as exc:
                if self.stop.wait(exc.retry_after):
                    return None
            except QuaidError as exc:
                return {"file": name, "status": "error", "error": str(exc)}

    def _heartbeat(self, entry_id: bytes) -> None:
        """Claiming our own entry again resets its idle time, so nobody takes it over."""
        self.redis.xclaim(keys.JOB_STREAM, keys.JOB_GROUP, self.name, 0, [entry_id], justid=True)

    def _finish(self, job: str, status: str, error: str = "") -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.job(job), mapping={"status": status, "error": error, "updated": time.time()})
        pipe.delete(keys.job_files(job))  # results stay until the TTL
        pipe.execute()

    def _set(self, job: str, **fields: object) -> None:
        self.redis.hset(keys.job(job), mapping={**fields, "updated": time.time()})


def ensure_group(connection: redis.Redis) -> None:
    """Create the stream and its consumer group once (idempotent across processes)."""
    try:
        connection.xgroup_create(keys.JOB_STREAM, keys.JOB_GROUP, id="0", mkstream=True)
    except redis.exceptions.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def start_workers(connection: redis.Redis, handle: FileHandler, count: int, claim_idle: float = 60.0,
                  batch: BatchHandler | None = None) -> tuple[threading.Event, list[threading.Thread]]:
    """``count`` daemon worker threads; set the returned event to stop them."""
    stop = threading.Event()
    threads = []
    for n in range(count):
        worker = Worker(connection, handle, stop, claim_idle=claim_idle, batch=batch)
        thread = threading.Thread(target=worker.run, name=f"quaid-job-worker-{n}", daemon=True)
        thread.start()
        threads.append(thread)
    return stop, threads


def _valid_id(job: str) -> bool:
    return len(job) == 32 and all(c in "0123456789abcdef" for c in job)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
