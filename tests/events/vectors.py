"""Load the fixed CloudEvents requests in this folder (one JSON file per case).

File shape: {"description", "method", "url", "headers": {...}, "body": "<text>"} or "bodyBase64" for
binary bodies. Signatures in the files are made with the emulator's default key for connection conn1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from pathlib import Path

from tests.constants import ACCESS_KEY, HUB, web_pubsub_connection_string
from wps_upstream.webhook_auth import WebhookAuth

EVENTS_DIR = Path(__file__).resolve().parent
DEFAULT_KEY = ACCESS_KEY
# The settings the vectors are made for: the service host used in the protocol reference.
ORIGIN = "xxx.webpubsub.azure.com"
CONNECTION_STRING = web_pubsub_connection_string(f"https://{ORIGIN}")
AUTH = WebhookAuth.of({ORIGIN}, DEFAULT_KEY)

__all__ = ["AUTH", "CONNECTION_STRING", "DEFAULT_KEY", "HUB", "ORIGIN", "EventVector", "load", "names"]


@dataclass(frozen=True)
class EventVector:
    name: str
    description: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def with_headers(self, **changes: str | None) -> EventVector:
        """A copy with headers set (underscores in names become dashes) or removed (None)."""
        headers = dict(self.headers)
        for name, value in changes.items():
            name = name.replace("_", "-")
            for existing in [key for key in headers if key.lower() == name.lower()]:
                del headers[existing]
            if value is not None:
                headers[name] = value
        return replace(self, headers=headers)

    def for_connection(self, connection_id: str, key: str = DEFAULT_KEY) -> EventVector:
        """The same event from another connection, signed for it."""
        return self.with_headers(
            ce_connectionId=connection_id,
            ce_source=f"/hubs/{HUB}/client/{connection_id}",
            ce_signature=signature(connection_id, key),
        )

    def with_body(self, body: bytes) -> EventVector:
        return replace(self, body=body)


def signature(connection_id: str, key: str = DEFAULT_KEY) -> str:
    digest = hmac.new(key.encode("utf-8"), connection_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def load(name: str) -> EventVector:
    """The vector stored as tests/events/<name>.json."""
    raw = json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    body = base64.b64decode(raw["bodyBase64"]) if "bodyBase64" in raw else raw.get("body", "").encode("utf-8")
    return EventVector(
        name=name,
        description=raw["description"],
        method=raw["method"],
        url=raw["url"],
        headers=dict(raw["headers"]),
        body=body,
    )


def names() -> list[str]:
    return sorted(path.stem for path in EVENTS_DIR.glob("*.json"))
