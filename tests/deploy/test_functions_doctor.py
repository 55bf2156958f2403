"""azure-functions-doctor (full profile) finds nothing wrong with the project and reads its infra/.

Its warnings on this project, none of which the deployment can remove: local.settings.json, Core Tools and
a venv are absent on a fresh clone; Application Insights is judged from local.settings.json or the
environment only (the app setting is in infra/app.bicep); and the blueprint check does not follow
`app.register_functions(module.blueprint)` as function_app.py writes it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.bicep import Template


def items(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["rule_id"]: item for group in report["results"] for item in group["items"]}


@pytest.fixture(scope="module")
def checks(doctor_report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return items(doctor_report)


def test_doctor_reports_no_failure(doctor_report: dict[str, Any], checks: dict[str, dict[str, Any]]) -> None:
    failed = {rule: item["value"] for rule, item in checks.items() if item["status"] == "fail"}
    assert not failed
    assert doctor_report["exit_code"] == 0


def test_doctor_reads_the_flex_consumption_plan_from_infra(checks: dict[str, dict[str, Any]]) -> None:
    lifecycle = checks["check_hosting_plan_lifecycle"]
    assert lifecycle["status"] == "pass"
    assert "flex-consumption" in lifecycle["value"]


def test_doctor_finds_no_setting_that_flex_consumption_ignores(checks: dict[str, dict[str, Any]]) -> None:
    assert checks["check_flex_deprecated_settings"]["status"] == "pass"


def test_doctor_finds_no_emulator_connection_in_deployable_config(checks: dict[str, dict[str, Any]]) -> None:
    assert checks["check_dev_storage_connection"]["status"] == "pass"


def test_doctor_judges_the_python_version_the_deployment_uses(
    checks: dict[str, dict[str, Any]], main_template: Template
) -> None:
    lifecycle = checks["check_python_runtime_lifecycle"]
    assert lifecycle["status"] == "pass"
    assert f"Python {main_template.literal('pythonVersion')} " in lifecycle["value"]
