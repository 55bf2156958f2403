"""TLS serving: the emulator answers https and wss with a certificate you give it (`--tls-cert`, `--tls-key`).

Clients of a keyless app need it: azure-core sends an Entra bearer token only over https, so a service
SDK built with a credential refuses an `http://` endpoint. The certificate must name the host clients
use (`localhost`, `127.0.0.1`) and be trusted by them (its authority in their trust store or bundle).
"""

from __future__ import annotations

import ssl

from .config import ConfigError, EmulatorConfig


def server_context(config: EmulatorConfig) -> ssl.SSLContext | None:
    """The server side TLS context of `config`; None when it serves plain http and ws."""
    if not config.tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        # A key with a passphrase is refused rather than asked for: the emulator runs without a terminal.
        context.load_cert_chain(config.tls_certificate, config.tls_key, password=_no_passphrase)
    except (OSError, ssl.SSLError, _PassphraseAsked) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"cannot serve TLS with certificate {config.tls_certificate!r} and key {config.tls_key!r} "
            f"(--tls-cert, --tls-key): {reason}; give a PEM certificate and the PEM private key that "
            "belongs to it, without a passphrase"
        ) from None
    return context


class _PassphraseAsked(Exception):
    """The private key is encrypted."""


def _no_passphrase() -> bytes:
    raise _PassphraseAsked("the private key has a passphrase")
