"""A signature-authenticated connect loads nothing it does not need: no azure-identity, no token checks,
no telemetry; each comes in only with the setting that asks for it (checked in a fresh child process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.events.vectors import CONNECTION_STRING
from tests.keyless.local_issuer import TENANT_ID, UPSTREAM_AUDIENCE

PROJECT = Path(__file__).resolve().parents[2]
KEYED = {"WebPubSubConnectionString": CONNECTION_STRING, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def connect_in_a_fresh_process(settings: dict[str, str]) -> dict[str, Any]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(PROJECT), **settings}
    done = subprocess.run(
        [sys.executable, str(PROJECT / "tests" / "keyless" / "import_probe.py")],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


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
