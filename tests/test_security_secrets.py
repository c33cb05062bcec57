"""No secret in any answer or log line, against a real ``quaid serve`` and the real CLI on a real Redis
that needs a password (Debian's ``redis-server --requirepass``, on a loopback port).

Every answer the service gives (health, API document, data, each kind of error, the store going
down) and every line it logs is searched for the Redis password and the API keys; so are the CLI's
output and its errors. Blank keys stop ``quaid serve`` before it starts.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
import redis as redis_lib
from drawing import drawn
from serverproc import ServerProcess, run_quaid

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PASSWORD = "secretpw-7f3a91"
READ, WRITE = "read-key-secret-5521", "write-key-secret-9034"
SECRETS = (PASSWORD, READ, WRITE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PasswordRedis:
    def __init__(self, directory) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", PASSWORD,
             "--save", "", "--appendonly", "no", "--dir", str(directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis_lib.Redis(port=self.port, password=PASSWORD)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis_lib.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server with a password did not start")

    def url(self, password: str = PASSWORD) -> str:
        return f"redis://:{password}@127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def password_redis(tmp_path):
    server = PasswordRedis(tmp_path)
    yield server
    server.stop()


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} shows a secret"


def test_no_answer_or_log_line_of_the_service_shows_a_secret(tmp_path, password_redis):
    env = {"QUAID_REDIS_URL": password_redis.url(), "QUAID_READ_KEYS": READ, "QUAID_WRITE_KEYS": WRITE}
    with ServerProcess(tmp_path / "home", env) as quaid:
        write, read = {"Authorization": f"Bearer {WRITE}"}, {"Authorization": f"Bearer {READ}"}
        answers = [
            quaid.get("/status"), quaid.get("/status/live"), quaid.get("/api/v1/openapi.json"),
            quaid.get("/"),
            quaid.post("/api/v1/pictures", files={"file": ("a.png", drawn(51))}, headers=write),
            quaid.get("/api/v1/export", headers=read),
            quaid.get("/api/v1/export", headers={"Authorization": f"Bearer {READ}x"}),  # 401
            quaid.post("/api/v1/pictures", files={"file": ("b.png", drawn(52))}, headers=read),  # 403
            quaid.post("/api/v1/pictures", files={"file": ("c.png", b"not a picture")}, headers=write),
            quaid.get("/api/v1/clusters/" + "9" * 30, headers=read),
            quaid.get("/api/v1/export", headers={**read, "Host": "rebind.example"}),  # 421
            quaid.get("/nowhere"),
        ]
        assert "***" in answers[0].json()["stats"]["redis"]
        assert [a.status_code for a in answers[6:]] == [401, 403, 415, 404, 421, 404]
        password_redis.stop()  # the store goes away: its errors must not show the URL either
        answers += [quaid.get("/status"), quaid.get("/api/v1/export", headers=read)]
        assert answers[-2].status_code == 503 and answers[-1].status_code == 503
        for answer in answers:
            assert_no_secret(answer.text + str(answer.headers), f"{answer.request.method} {answer.url}")
        log = quaid.log()
    assert "refused" in log and "store unreachable" in log  # the log did record these events
    assert_no_secret(log, "the service log")


def test_the_cli_shows_no_secret_in_output_or_errors(tmp_path, password_redis):
    stats = run_quaid(tmp_path, "stats", env={"QUAID_REDIS_URL": password_redis.url()})
    assert stats.returncode == 0, stats.stderr
    assert "***" in stats.stdout
    assert_no_secret(stats.stdout + stats.stderr, "quaid stats")
    wrong = run_quaid(tmp_path, "stats", env={"QUAID_REDIS_URL": password_redis.url(PASSWORD[::-1])})
    assert wrong.returncode != 0 and "***" in wrong.stderr
    assert PASSWORD[::-1] not in wrong.stderr + wrong.stdout
    password_redis.stop()
    down = run_quaid(tmp_path, "stats", env={"QUAID_REDIS_URL": password_redis.url()})
    assert down.returncode != 0 and "Traceback" not in down.stderr
    assert_no_secret(down.stdout + down.stderr, "quaid stats with the store down")


@pytest.mark.parametrize("env", [{"QUAID_WRITE_KEYS": " "}, {"QUAID_READ_KEYS": "ok-read-key-1,"},
                                 {"QUAID_WRITE_KEYS": ""}])
def test_serve_refuses_blank_keys_with_one_line_and_starts_nothing(tmp_path, env):
    done = run_quaid(tmp_path, "serve", "--host", "0.0.0.0", "--port", "0", env=env, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "empty or blank API key" in lines[0], done.stderr
    assert not (tmp_path / "redis" / "redis.pid").exists()
