"""The real services the store tests run against (see tests/services.py)."""

from services import kafka_server, postgres_server, redis_server, s3_server  # noqa: F401
