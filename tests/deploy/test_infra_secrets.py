"""Nothing secret is read, written or passed on by the deployment: no keys, no keyed connection strings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.bicep import INFRA, REPO_ROOT, Template, load, render

INFRA_FILES = sorted([*INFRA.glob("*.bicep"), *INFRA.glob("*.json"), REPO_ROOT / "azure.yaml"])
TEMPLATES = sorted(path.name for path in INFRA.glob("*.bicep"))

# Functions that return keys or SAS tokens, and the shapes of keyed connection strings.
SECRET_SOURCES = re.compile(
    r"list(Keys|ConnectionStrings|AccountSas|ServiceSas|Secrets)\s*\(|"
    r"AccountKey=|AccessKey=|SharedAccessKey|SharedAccessSignature|primaryKey|secondaryKey",
    re.IGNORECASE,
)
KEYED_VALUE = re.compile(r"AccountKey=|AccessKey=|SharedAccess|DefaultEndpointsProtocol=|sig=", re.IGNORECASE)


def test_the_deployment_files_exist() -> None:
    assert {"main.bicep", "app.bicep"} <= set(TEMPLATES)


@pytest.mark.parametrize("path", INFRA_FILES, ids=[path.name for path in INFRA_FILES])
def test_no_deployment_file_reads_or_writes_a_key(path: Path) -> None:
    found = SECRET_SOURCES.findall(path.read_text(encoding="utf-8"))
    assert not found, f"{path.name} mentions key material: {found}"


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_template_takes_a_secure_parameter(name: str) -> None:
    template = load(name)
    secure = [param for param in template.parameters if "secure" in template.decorators(param)]
    assert not secure, f"{name} takes secrets: {secure}"


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_template_outputs_a_secure_value(name: str) -> None:
    template = load(name)
    secure = [
        output
        for output, declaration in template.outputs.items()
        if any(item["type"] == "secure" for item in declaration.get("decorators", []))
    ]
    assert not secure, f"{name} outputs secrets: {secure}"


def test_app_settings_hold_no_keyed_connection_string(app_template: Template) -> None:
    site = app_template.only("Microsoft.Web/sites")
    for entry in site.properties["siteConfig"]["appSettings"]:
        value = render(entry["value"])
        assert not KEYED_VALUE.search(value), f"{entry['name']} holds key material: {value}"
        assert "connectionString" not in value or entry["name"] == "APPLICATIONINSIGHTS_CONNECTION_STRING", (
            f"{entry['name']} is a connection string; only Application Insights' one (keyless) is allowed"
        )
