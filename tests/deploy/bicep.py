"""The Bicep templates in infra/, parsed offline with pycep-parser, and read back as plain expressions.

pycep turns a template into nested dicts. An expression comes back as a tree (property accessors,
function calls, operators); `render` writes it back as the Bicep text a reader would recognise
(`functionApp.identity.principalId`, `tenant().tenantId`), so a test can say what must be wired to what
without walking trees. pycep writes a string literal and an identifier the same way (`'chat'` and `chat`
both come back as "chat"): tests that need an identifier check that the name is declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"


def render(node: Any) -> str:
    """A pycep expression tree as Bicep-like text; literals as they are."""
    if isinstance(node, dict) and "operator" in node:
        operator = node["operator"]
        operands = operator["operands"]
        if operator["type"] == "property_accessor":
            return f"{render(operands['operand_1'])}.{render(operands['operand_2'])}"
        return f"{operator['type']}({', '.join(render(value) for value in operands.values())})"
    if isinstance(node, dict) and "function" in node:
        function = node["function"]
        arguments = (function.get("parameters") or {}).values()
        return f"{function['type']}({', '.join(render(value) for value in arguments if value is not None)})"
    return str(node)


@dataclass(frozen=True)
class Resource:
    """One `resource` declaration: its symbolic name, type, and body (the condition unwrapped)."""

    symbol: str
    type: str
    api_version: str
    body: dict[str, Any]
    condition: str | None

    @property
    def properties(self) -> dict[str, Any]:
        return self.body.get("properties", {})


@dataclass(frozen=True)
class Template:
    """One parsed .bicep file."""

    path: Path
    tree: dict[str, Any]

    @property
    def parameters(self) -> dict[str, Any]:
        return self.tree.get("parameters", {})

    @property
    def variables(self) -> dict[str, Any]:
        return self.tree.get("variables", {})

    @property
    def modules(self) -> dict[str, Any]:
        return self.tree.get("modules", {})

    @property
    def outputs(self) -> dict[str, Any]:
        return self.tree.get("outputs", {})

    @property
    def extensions(self) -> dict[str, Any]:
        return self.tree.get("extensions", {})

    @property
    def resources(self) -> list[Resource]:
        found = []
        for symbol, declaration in self.tree.get("resources", {}).items():
            config = declaration["config"]
            condition = None
            if "condition" in config and "config" in config:
                condition, config = render(config["condition"]), config["config"]
            found.append(Resource(symbol, declaration["type"], declaration["api_version"], config, condition))
        return found

    def resource(self, symbol: str) -> Resource:
        for resource in self.resources:
            if resource.symbol == symbol:
                return resource
        raise KeyError(f"{self.path.name} declares no resource named {symbol}")

    def only(self, resource_type: str) -> Resource:
        """The one resource of this type; fails when there is none or several."""
        matches = [resource for resource in self.resources if resource.type.lower() == resource_type.lower()]
        assert len(matches) == 1, f"{self.path.name}: expected one {resource_type}, found {len(matches)}"
        return matches[0]

    def of_type(self, resource_type: str) -> list[Resource]:
        return [resource for resource in self.resources if resource.type.lower() == resource_type.lower()]

    def literal(self, name: str) -> Any:
        """The value of a variable, or the default of a parameter, named `name`."""
        if name in self.variables:
            return self.variables[name]["value"]
        if name in self.parameters:
            return self.parameters[name].get("default")
        raise KeyError(f"{self.path.name} declares no variable or parameter named {name}")

    def decorators(self, parameter: str) -> dict[str, Any]:
        return {item["type"]: item.get("argument") for item in self.parameters[parameter]["decorators"]}


@cache
def load(name: str) -> Template:
    """infra/<name>, parsed once per test session."""
    path = INFRA / name
    return Template(path, dict(BicepParser().parse(file_path=path)))
