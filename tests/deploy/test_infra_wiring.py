"""infra/app.bicep wires the app to the hub, storage and telemetry by identity, with the app's settings."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.deploy.bicep import REPO_ROOT, Resource, Template, render

SITE = "Microsoft.Web/sites"
WEB_PUBSUB = "Microsoft.SignalRService/webPubSub"
HUB = "Microsoft.SignalRService/webPubSub/hubs"
STORAGE = "Microsoft.Storage/storageAccounts"
APP_INSIGHTS = "Microsoft.Insights/components"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"

# The settings contract of the app in Azure (README, Settings): exactly these, keyless.
APP_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
    "WebPubSubEndpoint",
    "WebPubSubHub",
    "WebPubSubUpstreamAudience",
    "WebPubSubUpstreamTenantId",
    "WebPubSubUpstreamAllowedCallers",
}
# Keys, local-only switches, and settings whose defaults are right in Azure.
NEVER_SET = {
    "WebPubSubConnectionString",
    "AzureWebJobsStorage",
    "NegotiateAllowQueryUserId",
    "WebPubSubUpstreamAuthority",
    "PresenceReconcileSchedule",
}


@pytest.fixture(scope="module")
def site(app_template: Template) -> Resource:
    return app_template.only(SITE)


@pytest.fixture(scope="module")
def web_pubsub(app_template: Template) -> Resource:
    return app_template.only(WEB_PUBSUB)


@pytest.fixture(scope="module")
def event_handler(app_template: Template) -> dict[str, Any]:
    handlers = app_template.only(HUB).properties["eventHandlers"]
    assert len(handlers) == 1, "the hub has one event handler: the app"
    return dict(handlers[0])


@pytest.fixture(scope="module")
def settings(site: Resource) -> dict[str, str]:
    """App setting name -> the value as Bicep text."""
    entries = site.properties["siteConfig"]["appSettings"]
    return {entry["name"]: render(entry["value"]) for entry in entries}


def role_assignments(template: Template, role_variable: str) -> list[Resource]:
    return [
        resource
        for resource in template.of_type(ROLE_ASSIGNMENT)
        if render(resource.properties["roleDefinitionId"])
        == f"subscription_resource_id(Microsoft.Authorization/roleDefinitions, {role_variable})"
    ]


# --- the function app -----------------------------------------------------------------------------------


def test_function_app_runs_on_a_linux_flex_consumption_plan(app_template: Template, site: Resource) -> None:
    plan = app_template.only("Microsoft.Web/serverfarms")
    assert plan.body["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert plan.properties["reserved"] is True
    assert site.body["kind"] == "functionapp,linux"
    assert render(site.properties["serverFarmId"]) == f"{plan.symbol}.id"


def test_function_app_has_a_system_assigned_identity(site: Resource) -> None:
    assert site.body["identity"] == {"type": "SystemAssigned"}


def test_function_app_serves_https_only(site: Resource) -> None:
    assert site.properties["httpsOnly"] is True


def test_function_app_runs_python_3_11_or_3_12(
    app_template: Template, main_template: Template, site: Resource
) -> None:
    runtime = site.properties["functionAppConfig"]["runtime"]
    assert runtime["name"] == "python"
    assert runtime["version"] == "pythonVersion" and "pythonVersion" in app_template.parameters
    allowed = main_template.decorators("pythonVersion")["allowed"]
    assert set(allowed) <= {"3.11", "3.12"}
    assert main_template.literal("pythonVersion") in allowed


def test_http_per_instance_concurrency_is_set_explicitly(
    app_template: Template, main_template: Template, site: Resource
) -> None:
    scale = site.properties["functionAppConfig"]["scaleAndConcurrency"]
    assert scale["triggers"]["http"]["perInstanceConcurrency"] == "httpPerInstanceConcurrency"
    assert "httpPerInstanceConcurrency" in app_template.parameters
    # Chosen from the benchmark (docs/performance.md); Flex's Python default is 1.
    assert main_template.literal("httpPerInstanceConcurrency") == 32


def test_deployment_package_goes_to_a_blob_container_reached_by_the_app_identity(
    app_template: Template, site: Resource
) -> None:
    storage = site.properties["functionAppConfig"]["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {"type": "SystemAssignedIdentity"}
    account = app_template.only(STORAGE).symbol
    assert storage["value"] == f"${{{account}.properties.primaryEndpoints.blob}}${{deploymentContainerName}}"
    container = app_template.only("Microsoft.Storage/storageAccounts/blobServices/containers")
    assert container.body["name"] == "deploymentContainerName"
    assert app_template.literal("deploymentContainerName") == "app-package"


def test_function_app_is_tagged_as_the_azd_service(app_template: Template, site: Resource) -> None:
    extra_tags = site.body["tags"]["function"]["parameters"]["arg_2"]
    assert extra_tags == {"'azd-service-name'": "serviceName"}
    assert app_template.literal("serviceName") == "api"


# --- app settings ---------------------------------------------------------------------------------------


def test_app_settings_are_exactly_the_keyless_contract(settings: dict[str, str]) -> None:
    assert set(settings) == APP_SETTINGS


@pytest.mark.parametrize("name", sorted(NEVER_SET))
def test_keys_and_local_only_switches_are_not_set(name: str, settings: dict[str, str]) -> None:
    assert name not in settings


def test_storage_is_named_for_identity_based_access(app_template: Template, settings: dict[str, str]) -> None:
    assert settings["AzureWebJobsStorage__accountName"] == f"{app_template.only(STORAGE).symbol}.name"


def test_web_pubsub_endpoint_is_the_https_endpoint_of_the_resource(
    web_pubsub: Resource, settings: dict[str, str]
) -> None:
    assert settings["WebPubSubEndpoint"] == f"https://${{{web_pubsub.symbol}.properties.hostName}}"


def test_hub_setting_names_the_hub_that_sends_events(
    app_template: Template, settings: dict[str, str]
) -> None:
    hub = app_template.only(HUB)
    assert settings["WebPubSubHub"] == hub.body["name"] == "hubName"
    assert app_template.literal("hubName") == "chat"
    assert hub.body["parent"] == app_template.only(WEB_PUBSUB).symbol


def test_upstream_tenant_is_the_tenant_of_the_deployment(settings: dict[str, str]) -> None:
    assert settings["WebPubSubUpstreamTenantId"] in {"tenant().tenantId", "subscription().tenantId"}


def test_allowed_caller_is_the_web_pubsub_system_identity(
    web_pubsub: Resource, settings: dict[str, str]
) -> None:
    assert web_pubsub.body["identity"] == {"type": "SystemAssigned"}
    assert settings["WebPubSubUpstreamAllowedCallers"] == f"{web_pubsub.symbol}.identity.principalId"


# --- the hub's event handler ----------------------------------------------------------------------------


def test_event_handler_points_at_the_app_eventhandler_route(
    site: Resource, event_handler: dict[str, Any]
) -> None:
    assert (
        event_handler["urlTemplate"]
        == f"https://${{{site.symbol}.properties.defaultHostName}}/api/eventhandler"
    )


def test_event_handler_url_carries_no_function_key(event_handler: dict[str, Any]) -> None:
    assert "?" not in event_handler["urlTemplate"]


def test_event_handler_receives_the_system_events_and_every_user_event(event_handler: dict[str, Any]) -> None:
    assert sorted(event_handler["systemEvents"]) == ["connect", "connected", "disconnected"]
    assert event_handler["userEventPattern"] == "*"


def test_event_handler_authenticates_with_the_web_pubsub_managed_identity(
    event_handler: dict[str, Any],
) -> None:
    assert event_handler["auth"]["type"] == "ManagedIdentity"


def test_upstream_audience_is_one_value_for_the_hub_and_the_app(
    app_template: Template, event_handler: dict[str, Any], settings: dict[str, str]
) -> None:
    audience = event_handler["auth"]["managedIdentity"]["resource"]
    assert audience == settings["WebPubSubUpstreamAudience"]
    assert audience in app_template.variables, "the audience is one variable, not two literals that can drift"


def test_upstream_audience_is_an_application_registered_by_the_deployment_unless_one_is_given(
    app_template: Template,
) -> None:
    given = "empty(webPubSubUpstreamExistingAudience)"
    application = app_template.only("Microsoft.Graph/applications")
    principal = app_template.only("Microsoft.Graph/servicePrincipals")
    assert application.condition == principal.condition == given
    assert render(principal.body["appId"]) == f"{application.symbol}.appId"
    assert render(app_template.literal("upstreamAudience")) == (
        f"conditional({given}, {application.symbol}.appId, webPubSubUpstreamExistingAudience)"
    )
    assert "microsoftGraphV1" in app_template.extensions


# --- keyless resources ----------------------------------------------------------------------------------


def test_storage_refuses_shared_key_access(app_template: Template) -> None:
    assert app_template.only(STORAGE).properties["allowSharedKeyAccess"] is False


def test_web_pubsub_refuses_access_keys(web_pubsub: Resource) -> None:
    assert web_pubsub.properties["disableLocalAuth"] is True


def test_web_pubsub_sku_is_a_parameter_that_defaults_to_free(
    main_template: Template, app_template: Template, web_pubsub: Resource
) -> None:
    assert web_pubsub.body["sku"]["name"] == "webPubSubSku" and "webPubSubSku" in app_template.parameters
    assert main_template.literal("webPubSubSku") == "Free_F1"


def test_application_insights_accepts_only_entra_authenticated_telemetry(app_template: Template) -> None:
    properties = {key.lower(): value for key, value in app_template.only(APP_INSIGHTS).properties.items()}
    assert properties["disablelocalauth"] is True
    workspace = app_template.only("Microsoft.OperationalInsights/workspaces")
    assert render(properties["workspaceresourceid"]) == f"{workspace.symbol}.id"


def test_telemetry_settings_authenticate_with_the_app_identity(
    app_template: Template, settings: dict[str, str]
) -> None:
    insights = app_template.only(APP_INSIGHTS).symbol
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == f"{insights}.properties.ConnectionString"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"


def test_the_python_worker_sends_the_apps_telemetry_with_opentelemetry(settings: dict[str, str]) -> None:
    """Microsoft's documented setup: the worker setting, host.json's telemetry mode, the distro installed."""
    assert settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"
    host = json.loads((REPO_ROOT / "host.json").read_text(encoding="utf-8"))
    assert host["telemetryMode"] == "OpenTelemetry"
    requirements = (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^azure-monitor-opentelemetry[>=<\[ ]", requirements, re.MULTILINE)


# --- roles ----------------------------------------------------------------------------------------------

APP_ROLES = [
    # (role variable, built-in role id, resource type it is scoped to)
    ("storageTableDataContributor", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", STORAGE),
    ("storageBlobDataOwner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b", STORAGE),
    ("webPubSubServiceOwner", "12cf5a90-567b-43ae-8102-96cf46c7d9b4", WEB_PUBSUB),
    ("monitoringMetricsPublisher", "3913510d-42f4-4e42-8a64-420c390055eb", APP_INSIGHTS),
]


@pytest.mark.parametrize(("role", "role_id", "scope_type"), APP_ROLES, ids=[row[0] for row in APP_ROLES])
def test_app_identity_holds_its_role(
    role: str, role_id: str, scope_type: str, app_template: Template, site: Resource
) -> None:
    assert app_template.literal(role) == role_id
    held = [
        assignment
        for assignment in role_assignments(app_template, role)
        if render(assignment.properties["principalId"]) == f"{site.symbol}.identity.principalId"
    ]
    assert len(held) == 1, f"the function app identity holds {role} once"
    assert held[0].body["scope"] == app_template.only(scope_type).symbol
    assert held[0].properties["principalType"] == "ServicePrincipal"
    assert held[0].condition is None


@pytest.mark.parametrize("role", ["storageTableDataContributor", "storageBlobDataOwner"])
def test_deploying_principal_gets_storage_data_access_only_when_given(
    role: str, app_template: Template
) -> None:
    granted = [
        assignment
        for assignment in role_assignments(app_template, role)
        if render(assignment.properties["principalId"]) == "principalId"
    ]
    assert len(granted) == 1
    assert granted[0].condition == "not(empty(principalId))"
    assert granted[0].body["scope"] == app_template.only(STORAGE).symbol
