"""A signature-authenticated connect loads nothing it does not need: no azure-identity, no token checks,
no telemetry; each comes in only with the setting that asks for it (checked in a fresh child process)."""

from __future__ import annotations

import os
from typing import Any

from tests.events.vectors import CONNECTION_STRING
from tests.keyless.fresh_process import PROJECT, run_scenario
from tests.keyless.local_issuer import TENANT_ID, UPSTREAM_AUDIENCE

KEYED = {"WebPubSubConnectionString": CONNECTION_STRING, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def connect_in_a_fresh_process(settings: dict[str, str]) -> dict[str, Any]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(PROJECT), **settings}
    return run_scenario(PROJECT / "tests" / "keyless" / "import_probe.py", env)


def test_a_signed_connect_with_keys_loads_no_identity_token_check_or_telemetry_package() -> None:
    probe = connect_in_a_fresh_process(KEYED)
    assert probe == {"status": 200, "loaded": []}


def test_upstream_auth_loads_the_token_check_but_not_azure_identity() -> None:
    settings = {
        **KEYED,
        "WebPubSubUpstreamAudience": UPSTREAM_AUDIENCE,
        "WebPubSubUpstreamTenantId": TENANT_ID,
        # Nobody answers here: the connect is refused (no token), which is not what this test looks at.
        "WebPubSubUpstreamAuthority": f"http://127.0.0.1:9/{TENANT_ID}",
    }
    probe = connect_in_a_fresh_process(settings)
    assert probe["loaded"] == ["wps_upstream.entra_tokens"]
