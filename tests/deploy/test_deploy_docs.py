"""The deployment docs: snippets that need Azure are marked for the doc-test harness; nothing is left out."""

from __future__ import annotations

import json
import re

import pytest

from tests.deploy.bicep import INFRA, REPO_ROOT, Template, render

SKIP_MARKER = "<!-- doc-test: skip (needs Azure) -->"
# A shell line that talks to Azure: the Azure CLI, azd, or Core Tools publishing.
NEEDS_AZURE = re.compile(r"(^|\$\(|\s)(az|azd)\s|func azure ", re.MULTILINE)


def deploy_doc() -> str:
    return (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")


def readme_deploy_section() -> str:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Deploying to Azure\n")
    return readme[start : readme.index("\n## ", start + 1)]


DOCS = {"docs/deploy.md": deploy_doc, "README.md#deploying-to-azure": readme_deploy_section}


def fences(text: str) -> list[tuple[str, str, str]]:
    """(line before the fence, info string, body) of every fenced block."""
    lines = text.splitlines()
    found, index = [], 0
    while index < len(lines):
        if lines[index].startswith("```"):
            info, body_start = lines[index][3:].strip(), index + 1
            end = next(i for i in range(body_start, len(lines)) if lines[i].startswith("```"))
            found.append((lines[index - 1] if index else "", info, "\n".join(lines[body_start:end])))
            index = end
        index += 1
    return found


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_every_snippet_that_needs_azure_is_marked_for_skipping(doc: str) -> None:
    unmarked = [
        body for before, _, body in fences(DOCS[doc]()) if NEEDS_AZURE.search(body) and before != SKIP_MARKER
    ]
    assert not unmarked, f"{doc}: put {SKIP_MARKER} on the line before these fences:\n" + "\n---\n".join(
        unmarked
    )


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_every_skip_marker_stands_right_before_a_shell_snippet(doc: str) -> None:
    text = DOCS[doc]()
    marked = [info for before, info, _ in fences(text) if before == SKIP_MARKER]
    assert len(marked) == text.count(SKIP_MARKER)
    assert set(marked) == {"sh"}


def test_deploy_doc_names_every_app_setting(app_template: Template) -> None:
    site = app_template.only("Microsoft.Web/sites")
    names = {entry["name"] for entry in site.properties["siteConfig"]["appSettings"]}
    missing = {name for name in names if f"`{name}`" not in deploy_doc()}
    assert not missing


def test_deploy_doc_names_every_azd_variable() -> None:
    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    variables = {re.sub(r"[${}]|=.*", "", entry["value"]) for entry in document["parameters"].values()}
    documented = variables - {"AZURE_ENV_NAME", "AZURE_LOCATION"}
    missing = {name for name in documented if f"`{name}`" not in deploy_doc()}
    assert not missing


def test_deploy_doc_cites_the_python_default_of_http_concurrency() -> None:
    assert (
        "learn.microsoft.com/azure/azure-functions/functions-concurrency#http-trigger-concurrency"
        in deploy_doc()
    )


def test_every_role_the_app_holds_is_documented(app_template: Template) -> None:
    for assignment in app_template.of_type("Microsoft.Authorization/roleAssignments"):
        role = render(assignment.properties["roleDefinitionId"]).split(", ")[-1].rstrip(")")
        role_id = str(app_template.literal(role))
        assert f"`{role_id[:8]}-…`" in deploy_doc(), f"docs/deploy.md does not list {role}"
