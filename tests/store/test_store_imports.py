"""The store stays light: client libraries load only when a backend is used, and nothing reaches
the network unless a networked backend is configured."""

import json
import socket
import subprocess
import sys

from dmr import Router
from dmr.store import RedisCache, SQLiteLogger

CLIENTS = ["redis", "psycopg", "confluent_kafka", "boto3", "botocore", "matplotlib", "httpx"]


def test_building_backends_imports_no_client_library():
    code = (
        "import sys, json, dmr\n"
        "from dmr.store import RedisCache, PostgresLogger, KafkaLogger, S3Logger, SQLiteLogger, JSONLLogger\n"
        "RedisCache(url='redis://127.0.0.1:1/0'); PostgresLogger('postgresql://x@127.0.0.1:1/db')\n"
        "KafkaLogger(brokers=['127.0.0.1:1'], topic='t'); S3Logger('bucket')\n"
        "import tempfile, os\n"
        "d = tempfile.mkdtemp()\n"
        "with dmr.Router(cache_enabled=True, decision_logger=SQLiteLogger(os.path.join(d, 'l.sqlite3'))) as r:\n"
        "    r.classify('Design a distributed cache')\n"
        f"print(json.dumps([m for m in {CLIENTS!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_memory_cache_and_sqlite_log_open_no_socket(tmp_path, monkeypatch):
    opened = []
    real = socket.socket.connect

    def connect(self, address):
        opened.append(address)
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    with Router(cache_enabled=True, decision_logger=SQLiteLogger(tmp_path / "l.sqlite3"), pii_scrub=True) as router:
        for task in ("Hello", "Hello", "Write a sorting function in Go"):
            router.classify(task)
    assert opened == []


def test_redis_url_password_is_not_shown():
    assert "s3cret" not in repr(RedisCache(url="redis://:s3cret@127.0.0.1:6379/0"))
