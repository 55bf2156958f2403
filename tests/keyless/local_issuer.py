"""A local token issuer shaped like a Microsoft Entra tenant, and a test credential that gets its tokens.

`LocalIssuer` is a real HTTP server on 127.0.0.1 (free port, a thread) that publishes what Entra publishes
for a tenant: the v2 OpenID metadata at `<authority>/v2.0/.well-known/openid-configuration`, the v1
metadata at `<authority>/.well-known/openid-configuration`, and the signing keys (JWKS) they point to. It
signs RS256 tokens the way Entra does: v2 tokens with issuer `<authority>/v2.0` and `azp`, v1 tokens with
issuer `https://sts.windows.net/<tenant>/` and `appid`. Pointing `WebPubSubUpstreamAuthority` at it lets
the app check the tokens "the Web PubSub service" sends, as it checks Entra's in Azure.

`LocalIssuerCredential` is a test double of the app's managed identity: an async token credential whose
tokens come from the local issuer (v1, as managed identity tokens for Azure resources are).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from azure.core.credentials import AccessToken
from cryptography.hazmat.primitives.asymmetric import rsa

from devhost.processes import free_port

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SERVICE_OBJECT_ID = "5b0d4e2a-1c3f-4a6b-8d9e-0f1a2b3c4d5e"  # the Web PubSub service's identity
SERVICE_CLIENT_ID = "9c1e2d3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5"
APP_OBJECT_ID = "0d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"  # the function app's identity
UPSTREAM_AUDIENCE = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"  # the client id of the upstream application


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        return cls(kid or uuid.uuid4().hex, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict[str, Any]:
        entry = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {**entry, "kid": self.kid, "use": "sig", "alg": "RS256"}


class LocalIssuer:
    """A local stand-in for an Entra tenant: OpenID metadata, signing keys, and tokens signed with them."""

    def __init__(self, tenant_id: str = TENANT_ID) -> None:
        self.tenant_id = tenant_id
        self.port = free_port()
        self.first_key = SigningKey.generate()  # the key reset() goes back to
        self.key = self.first_key
        self.published: list[SigningKey] = [self.key]  # what the JWKS lists
        self.requests: Counter[str] = Counter()  # path -> times asked
        self.fail_with: int | None = None  # fault injection: answer every request with this status
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-issuer", daemon=True)

    @property
    def authority(self) -> str:
        """What WebPubSubUpstreamAuthority is set to: http://127.0.0.1:<port>/<tenant>."""
        return f"http://127.0.0.1:{self.port}/{self.tenant_id}"

    @property
    def v2_issuer(self) -> str:
        return f"{self.authority}/v2.0"

    @property
    def v1_issuer(self) -> str:
        return f"https://sts.windows.net/{self.tenant_id}/"

    @property
    def jwks_path(self) -> str:
        return f"/{self.tenant_id}/discovery/v2.0/keys"

    def start(self) -> LocalIssuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        """Back to the first key, alone published and signing; no faults, no requests counted.

        Always the same key, as a tenant keeps its keys for weeks: a server that keeps the keys it fetched
        (the emulator) goes on accepting tokens from test to test.
        """
        with self._lock:
            self.key = self.first_key
            self.published = [self.key]
            self.requests.clear()
            self.fail_with = None

    def rotate(self) -> SigningKey:
        """Publish a new key and sign with it from now on (the old one stays published)."""
        with self._lock:
            self.key = SigningKey.generate()
            self.published.append(self.key)
            return self.key

    def token(
        self,
        audience: str = UPSTREAM_AUDIENCE,
        *,
        version: int = 2,
        object_id: str = SERVICE_OBJECT_ID,
        client_id: str = SERVICE_CLIENT_ID,
        lifetime_s: int = 3600,
        not_before_in_s: int = 0,
        key: SigningKey | None = None,
        issuer: str | None = None,
        **claims: Any,
    ) -> str:
        """An access token for `audience`, shaped as Entra issues it to a managed identity."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "aud": audience,
            "iss": issuer or (self.v2_issuer if version == 2 else self.v1_issuer),
            "iat": now,
            "nbf": now + not_before_in_s,
            "exp": now + lifetime_s,
            "oid": object_id,
            "sub": object_id,
            "tid": self.tenant_id,
            "ver": f"{version}.0",
            "azp" if version == 2 else "appid": client_id,
        }
        payload.update(claims)
        signer = key or self.key
        return jwt.encode(payload, signer.private_key, algorithm="RS256", headers={"kid": signer.kid})

    def _documents(self) -> dict[str, dict[str, Any]]:
        base = f"http://127.0.0.1:{self.port}"
        keys = {"keys": [key.jwk() for key in self.published]}
        return {
            f"/{self.tenant_id}/v2.0/.well-known/openid-configuration": {
                "issuer": self.v2_issuer,
                "jwks_uri": f"{base}{self.jwks_path}",
                "token_endpoint": f"{self.authority}/oauth2/v2.0/token",
                "id_token_signing_alg_values_supported": ["RS256"],
            },
            f"/{self.tenant_id}/.well-known/openid-configuration": {
                "issuer": self.v1_issuer,
                "jwks_uri": f"{base}/common/discovery/keys",
                "token_endpoint": f"{self.authority}/oauth2/token",
            },
            self.jwks_path: keys,
            "/common/discovery/keys": keys,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with issuer._lock:
                    issuer.requests[self.path] += 1
                    failure = issuer.fail_with
                    document = issuer._documents().get(self.path)
                status = failure or (200 if document is not None else 404)
                body = json.dumps(document).encode() if status == 200 else b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # requests are counted in issuer.requests

        return Handler


class LocalIssuerCredential:
    """Test double of the app's managed identity: `get_token` answers with a token of the local issuer.

    The token's audience is the scope's resource (`https://storage.azure.com/.default` gives
    `https://storage.azure.com`), its issuer the v1 one (`https://sts.windows.net/<tenant>/`), as for a
    managed identity; Azurite accepts only such issuers. The scopes asked for are kept in `scopes`.
    """

    def __init__(self, issuer: LocalIssuer, *, object_id: str = APP_OBJECT_ID) -> None:
        self.issuer = issuer
        self.object_id = object_id
        self.scopes: list[str] = []
        self.closes = 0  # times close() was called

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        resource = scopes[0].removesuffix("/.default")
        token = self.issuer.token(resource, version=1, object_id=self.object_id, lifetime_s=3600)
        return AccessToken(token, int(time.time()) + 3600)

    async def close(self) -> None:
        self.closes += 1

    async def __aenter__(self) -> LocalIssuerCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
