"""A decision log forwarded to an HTTPS webhook: each batch is one POST of
``{"records": [...]}`` (JSON). Any answer but 2xx, or no answer, is retried with exponential
backoff by the base class; the batch's decision ids make a repeated delivery recognisable.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from dmr.errors import ConfigError
from dmr.store.logger import BufferedLogger

__all__ = ["WebhookLogger", "WebhookLoggerBackend"]


class WebhookLogger(BufferedLogger):
    """``WebhookLogger("https://hooks.example.com/dmr", headers={"Authorization": "Bearer …"})``.

    ``verify`` is httpx's (a CA bundle path, an ``ssl.SSLContext`` or True); plain ``http://`` is
    refused unless ``allow_http=True``, because the records hold task text."""

    backend = "webhook"

    def __init__(self, url: str, *, headers: Mapping[str, str] | None = None, timeout_s: float = 10.0,
                 verify: Any = True, allow_http: bool = False, client: Any = None, **options: Any) -> None:
        super().__init__(**options)
        if not url.startswith("https://") and not (allow_http and url.startswith("http://")):
            raise ConfigError(f"WebhookLogger: {url!r} is not an https:// URL (allow_http=True permits http://)",
                              [("decision_logger.url", "must be https://")])
        self.url = url
        self.headers = dict(headers or {})
        self.timeout_s = timeout_s
        self._verify = verify
        self._client = client

    def _connect(self) -> Any:
        if self._client is None:
            import ssl

            import httpx

            verify = self._verify
            if isinstance(verify, (str, bytes)) or hasattr(verify, "__fspath__"):  # a CA bundle
                verify = ssl.create_default_context(cafile=verify)
            self._client = httpx.Client(timeout=self.timeout_s, verify=verify, follow_redirects=False)
        return self._client

    def _post(self, payload: dict[str, Any]) -> None:
        response = self._connect().post(self.url, json=payload, headers=self.headers)
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"webhook answered HTTP {response.status_code}")

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        self._post({"records": records})

    def write_gap(self, count: int) -> None:
        self._post({"records": [], "event": "records_dropped", "count": count, "ts": time.time()})

    def close_backend(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __repr__(self) -> str:
        return f"WebhookLogger({self.url.split('?')[0]!r})"


# The README's name for it.
WebhookLoggerBackend = WebhookLogger
