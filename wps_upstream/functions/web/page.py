"""The chat page as one HTML document: script and style inlined, built once per process.

Inlining keeps the page a single route; the Content-Security-Policy allows exactly that script and that
style by their hashes, so nothing else (an injected tag, an inline handler) can run on the page.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parent
STYLE_SLOT = "<style>/* chat.css */</style>"
SCRIPT_SLOT = "<script>/* chat.js */</script>"


@dataclass(frozen=True)
class ChatPage:
    """The page body and the headers it must be served with."""

    html: str
    headers: dict[str, str]


def source_hash(text: str) -> str:
    """The CSP source expression that allows exactly this inline script or style."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def content_security_policy(script: str, style: str) -> str:
    """Only the page's own script and style; fetches to this app; WebSockets to the service."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {source_hash(script)}",
            f"style-src {source_hash(style)}",
            # The client access URL points at the Web PubSub service, another origin.
            "connect-src 'self' ws: wss:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def build_chat_page(assets: Path = ASSETS) -> ChatPage:
    """Read index.html, chat.js and chat.css and put them together."""
    template = (assets / "index.html").read_text(encoding="utf-8")
    script = (assets / "chat.js").read_text(encoding="utf-8")
    style = (assets / "chat.css").read_text(encoding="utf-8")
    for slot in (STYLE_SLOT, SCRIPT_SLOT):
        if template.count(slot) != 1:
            raise RuntimeError(f"{assets / 'index.html'} must contain {slot!r} exactly once")
    html = template.replace(STYLE_SLOT, f"<style>{style}</style>")
    html = html.replace(SCRIPT_SLOT, f"<script>{script}</script>")
    headers = {
        "Content-Security-Policy": content_security_policy(script, style),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return ChatPage(html=html, headers=headers)
