"""The dev host serving the project's own function_app.py (repo root) as `make start` does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from devhost.processes import PROJECT_ROOT

if TYPE_CHECKING:
    from tests.devhost.conftest import DevHost

pytestmark = pytest.mark.skipif(
    not (PROJECT_ROOT / "function_app.py").exists(), reason="the project's function_app.py is not written yet"
)


def test_chat_page_is_served_as_html(project_app: DevHost) -> None:
    answer = project_app.call("GET", "/api/index")
    assert answer.status == 200
    assert (answer.header("Content-Type") or "").startswith("text/html")


def test_contract_routes_are_listed(project_app: DevHost) -> None:
    port = project_app.base_url.rsplit(":", 1)[1]
    for route in ("eventhandler", "negotiate", "messages", "index"):
        assert f"http://localhost:{port}/api/{route}\n" in project_app.log()
