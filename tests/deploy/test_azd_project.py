"""azure.yaml and the parameters file: what `azd up` deploys, and which azd values reach the templates."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.deploy.bicep import INFRA, REPO_ROOT, Template

AZD_VARIABLE = re.compile(r"^\$\{(?P<name>[A-Z_][A-Z0-9_]*)(=(?P<default>[^}]*))?\}$")


@pytest.fixture(scope="module")
def azure_yaml() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO_ROOT / "azure.yaml").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def parameters() -> dict[str, str]:
    """Template parameter -> the azd expression that feeds it (main.parameters.json)."""
    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    return {name: entry["value"] for name, entry in document["parameters"].items()}


def test_azure_yaml_deploys_the_project_root_as_a_python_function_app(
    azure_yaml: dict[str, Any], app_template: Template
) -> None:
    services = azure_yaml["services"]
    assert list(services) == [app_template.literal("serviceName")]
    service = services["api"]
    assert service["project"] in {".", "./"}
    assert service["host"] == "function"
    assert service["language"] == "python"


def test_azure_yaml_provisions_infra_main_with_bicep(azure_yaml: dict[str, Any]) -> None:
    infra = azure_yaml.get("infra", {})
    assert infra.get("provider", "bicep") == "bicep"
    assert (REPO_ROOT / infra.get("path", "infra") / f"{infra.get('module', 'main')}.bicep").is_file()


def test_the_deployed_project_root_holds_the_function_app() -> None:
    assert (REPO_ROOT / "function_app.py").is_file()
    assert (REPO_ROOT / "host.json").is_file()
    assert (REPO_ROOT / "requirements.txt").is_file()


@pytest.mark.parametrize(
    ("parameter", "variable"),
    [
        ("environmentName", "AZURE_ENV_NAME"),
        ("location", "AZURE_LOCATION"),
        ("principalId", "AZURE_PRINCIPAL_ID"),
    ],
)
def test_azd_environment_values_reach_the_template(
    parameter: str, variable: str, parameters: dict[str, str]
) -> None:
    match = AZD_VARIABLE.match(parameters[parameter])
    assert match and match["name"] == variable


def test_parameters_file_names_only_declared_parameters(
    parameters: dict[str, str], main_template: Template
) -> None:
    assert set(parameters) <= set(main_template.parameters)


def test_every_required_parameter_gets_a_value(parameters: dict[str, str], main_template: Template) -> None:
    required = {
        name for name, declaration in main_template.parameters.items() if "default" not in declaration
    }
    assert required <= set(parameters)


def test_parameter_file_defaults_match_the_template_defaults(
    parameters: dict[str, str], main_template: Template
) -> None:
    for name, expression in parameters.items():
        match = AZD_VARIABLE.match(expression)
        assert match, f"{name}: {expression!r} is not an azd ${{VARIABLE}} reference"
        if match["default"] is not None:
            assert match["default"] == str(main_template.literal(name)), f"{name} has two different defaults"


def test_main_passes_every_app_parameter(main_template: Template, app_template: Template) -> None:
    module = main_template.modules["app"]
    assert module["detail"]["path"] == "app.bicep"
    assert set(module["config"]["params"]) == set(app_template.parameters)


def test_graph_extension_alias_is_pinned_to_a_release(app_template: Template) -> None:
    config = json.loads((INFRA / "bicepconfig.json").read_text(encoding="utf-8"))
    reference = config["extensions"]["microsoftGraphV1"]
    assert re.fullmatch(
        r"br:mcr\.microsoft\.com/bicep/extensions/microsoftgraph/v1\.0:\d+\.\d+\.\d+", reference
    )
    assert set(app_template.extensions) == {"microsoftGraphV1"}


@pytest.mark.parametrize("path", ["infra", "azure.yaml", ".azure", ".venv-py313"])
def test_deployment_files_stay_out_of_the_app_package(path: str) -> None:
    ignored = (REPO_ROOT / ".funcignore").read_text(encoding="utf-8").split()
    assert path in ignored
