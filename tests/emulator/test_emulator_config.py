"""Emulator settings: command line, WPS_EMULATOR_* environment, JSON file; event handler matching."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.constants import ACCESS_KEY, web_pubsub_connection_string
from tests.keyless.tls import TlsFiles, make_tls_files
from wps_emulator.config import ConfigError, EventHandler, HubSettings, load_config

OTHER_KEY = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"


def test_defaults_match_microsofts_emulator() -> None:
    config = load_config([], environ={})
    assert (config.host, config.port, config.access_key) == ("127.0.0.1", 8080, ACCESS_KEY)
    assert config.connection_string == web_pubsub_connection_string("http://localhost:8080")
    assert config.retry_delays == (1.0, 3.0, 5.0)


def test_public_endpoint_sets_connection_string_and_origin() -> None:
    config = load_config(["--port", "9000", "--public-endpoint", "http://127.0.0.1:9000/"], environ={})
    assert config.connection_string.startswith("Endpoint=http://127.0.0.1:9000;")
    assert config.origin == "127.0.0.1:9000"


def test_hub_flags_build_ordered_handlers_with_defaults() -> None:
    config = load_config(
        [
            "--hub", "chat", "--upstream", "http://a/{event}", "--user-events", "message,join",
            "--upstream", "http://b/{hub}/{event}", "--system-events", "connected",
            "--hub", "other", "--upstream", "http://c/api",
        ],
        environ={},
    )  # fmt: skip
    chat = config.hub_settings("CHAT")
    assert [h.url_template for h in chat.handlers] == ["http://a/{event}", "http://b/{hub}/{event}"]
    assert chat.handlers[0].system_events == ("connect", "connected", "disconnected")
    assert chat.handlers[1].user_events == "*"
    assert chat.handlers[1].system_events == ("connected",)
    assert config.hub_settings("other").handlers[0].url_template == "http://c/api"


def test_handler_flags_need_a_hub_first() -> None:
    with pytest.raises(SystemExit):
        load_config(["--upstream", "http://a"], environ={})


def test_environment_is_used_when_the_flag_is_absent() -> None:
    environ = {
        "WPS_EMULATOR_PORT": "9100",
        "WPS_EMULATOR_ACCESS_KEY": OTHER_KEY,
        "WPS_EMULATOR_HUB": "chat",
        "WPS_EMULATOR_UPSTREAM": "http://localhost:7071/api/eventhandler",
        "WPS_EMULATOR_USER_EVENTS": "message",
    }
    config = load_config([], environ=environ)
    assert (config.port, config.access_key) == (9100, OTHER_KEY)
    handler = config.hub_settings("chat").handlers[0]
    assert (handler.url_template, handler.user_events) == (
        "http://localhost:7071/api/eventhandler",
        "message",
    )


def test_command_line_beats_environment_beats_json_file(tmp_path: Path) -> None:
    file = tmp_path / "emulator.json"
    file.write_text(
        json.dumps({"port": 9200, "host": "127.0.0.3", "accessKey": OTHER_KEY, "logLevel": "debug"})
    )
    config = load_config(
        ["--config", str(file), "--port", "9300"], environ={"WPS_EMULATOR_HOST": "127.0.0.2"}
    )
    assert (config.port, config.host, config.access_key, config.log_level) == (
        9300,
        "127.0.0.2",
        OTHER_KEY,
        "DEBUG",
    )


def test_json_file_declares_hubs_and_command_line_replaces_one(tmp_path: Path) -> None:
    file = tmp_path / "emulator.json"
    hubs = {
        "chat": {
            "eventHandlers": [
                {"urlTemplate": "http://file/chat", "userEventPattern": "*", "systemEvents": ["connect"]}
            ]
        },
        "news": {"eventHandlers": [{"urlTemplate": "http://file/news"}]},
    }
    file.write_text(json.dumps({"hubs": hubs}))
    config = load_config(
        ["--hub", "chat", "--upstream", "http://cli/chat"], environ={"WPS_EMULATOR_CONFIG": str(file)}
    )
    assert config.hub_settings("chat").handlers[0].url_template == "http://cli/chat"
    assert config.hub_settings("news").handlers[0].url_template == "http://file/news"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--access-key", "short"], "at least 32 bytes"),
        (["--hub", "chat", "--upstream", "http://{hub}.example.com/x"], "not allowed in the upstream host"),
        (["--hub", "chat", "--upstream", "ftp://example.com/x"], "http(s) URL"),
        (
            ["--hub", "chat", "--upstream", "http://a/x", "--system-events", "connect,joined"],
            "unknown system events",
        ),
        (["--hub", "1chat", "--upstream", "http://a/x"], "hub name"),
        (["--public-endpoint", "localhost:8080"], "public endpoint"),
        (["--upstream-retry-delays", "1,soon"], "retry delays"),
        (["--allowed-hosts", "http://myhost:3000"], "not a host name"),
    ],
)
def test_invalid_settings_are_refused_with_a_clear_message(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(argv, environ={})


def test_allowed_hosts_come_as_a_comma_list_or_a_json_list(tmp_path: Path) -> None:
    assert load_config(["--allowed-hosts", "a.test, b.test"], environ={}).allowed_hosts == (
        "a.test",
        "b.test",
    )
    file = tmp_path / "emulator.json"
    file.write_text(json.dumps({"allowedHosts": ["c.test"]}))
    assert load_config(["--config", str(file)], environ={}).allowed_hosts == ("c.test",)


def test_unknown_json_keys_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "emulator.json"
    file.write_text(json.dumps({"prot": 1}))
    with pytest.raises(ConfigError, match="unknown keys"):
        load_config(["--config", str(file)], environ={})


def test_user_event_pattern_matches_star_one_name_or_a_list_case_insensitively() -> None:
    assert EventHandler("http://a", user_events="*").takes_user_event("anything")
    assert EventHandler("http://a", user_events="Message").takes_user_event("message")
    listed = EventHandler("http://a", user_events="message, join")
    assert listed.takes_user_event("JOIN") and not listed.takes_user_event("leave")
    assert not EventHandler("http://a", user_events="").takes_user_event("message")


def test_first_matching_handler_wins() -> None:
    hub = HubSettings("chat", (EventHandler("http://first", user_events="a"), EventHandler("http://second")))
    assert hub.handler_for("a", system=False).url_template == "http://first"  # type: ignore[union-attr]
    assert hub.handler_for("b", system=False).url_template == "http://second"  # type: ignore[union-attr]
    assert hub.handler_for("connect", system=True).url_template == "http://first"  # type: ignore[union-attr]


def test_url_template_fills_hub_and_event_escaped() -> None:
    handler = EventHandler("http://h/api/{hub}/{event}?x=1")
    assert handler.url("chat", "my event") == "http://h/api/chat/my%20event?x=1"


def test_star_hub_is_the_fallback_for_other_hubs() -> None:
    config = load_config(
        ["--hub", "*", "--upstream", "http://any/{hub}", "--hub", "chat", "--upstream", "http://chat"],
        environ={},
    )
    assert config.hub_settings("chat").handlers[0].url_template == "http://chat"
    assert config.hub_settings("whatever").handlers[0].url_template == "http://any/{hub}"


@pytest.mark.parametrize(
    ("environ", "setting"),
    [
        ({"WPS_EMULATOR_PORT": "abc"}, "WPS_EMULATOR_PORT"),
        ({"WPS_EMULATOR_PORT": "70000"}, "WPS_EMULATOR_PORT"),
        ({"WPS_EMULATOR_UPSTREAM_TIMEOUT": "soon"}, "WPS_EMULATOR_UPSTREAM_TIMEOUT"),
        ({"WPS_EMULATOR_ENABLE_TEST_HOOKS": "maybe"}, "WPS_EMULATOR_ENABLE_TEST_HOOKS"),
        ({"WPS_EMULATOR_HUB": "chat"}, "WPS_EMULATOR_UPSTREAM"),
    ],
)
def test_a_bad_environment_value_is_refused_naming_the_variable(
    environ: dict[str, str], setting: str
) -> None:
    with pytest.raises(ConfigError, match=setting):
        load_config([], environ=environ)


def test_a_bad_json_value_is_refused_naming_the_key_and_file(tmp_path: Path) -> None:
    file = tmp_path / "emulator.json"
    file.write_text(json.dumps({"port": "eighty"}))
    with pytest.raises(ConfigError, match=r"port in emulator\.json: 'eighty' is not a port number"):
        load_config(["--config", str(file)], environ={})


def test_a_local_public_endpoint_in_the_file_follows_the_port_given_on_the_command_line(
    tmp_path: Path,
) -> None:
    file = tmp_path / "emulator.json"
    file.write_text(json.dumps({"port": 8080, "publicEndpoint": "http://localhost:8080"}))
    config = load_config(["--config", str(file), "--port", "8082"], environ={})
    assert config.port == 8082
    assert config.connection_string.startswith("Endpoint=http://localhost:8082;")


def test_a_public_endpoint_on_another_host_is_kept_whatever_the_port(tmp_path: Path) -> None:
    file = tmp_path / "emulator.json"
    file.write_text(json.dumps({"publicEndpoint": "https://emulator.example.com"}))
    config = load_config(["--config", str(file), "--port", "8082"], environ={})
    assert config.endpoint == "https://emulator.example.com"


def test_a_public_endpoint_given_beside_the_port_is_kept_as_given() -> None:
    config = load_config(["--port", "8082", "--public-endpoint", "http://localhost:9000"], environ={})
    assert config.endpoint == "http://localhost:9000"


def test_without_a_public_endpoint_the_connection_string_names_the_port() -> None:
    assert load_config(["--port", "8082"], environ={}).endpoint == "http://localhost:8082"


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        ([str(Path(sys.executable).parent / "wps-emulator"), "--help"], "usage: wps-emulator"),
        ([sys.executable, "-m", "wps_emulator", "--help"], "usage: python -m wps_emulator"),
    ],
)
def test_help_names_the_command_that_was_run(argv: list[str], usage: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.startswith(usage)


# --- TLS and Entra tokens -------------------------------------------------------------------------------

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("config-tls"))


def tls_flags(tls: TlsFiles) -> list[str]:
    return ["--tls-cert", str(tls.server_certificate), "--tls-key", str(tls.server_key)]


def test_tls_and_entra_are_off_by_default() -> None:
    config = load_config([], environ={})
    assert (config.tls, config.entra_authority_url) == (False, None)


def test_with_tls_the_connection_string_names_an_https_endpoint(tls: TlsFiles) -> None:
    config = load_config(["--port", "8443", *tls_flags(tls)], environ={})
    assert config.connection_string == web_pubsub_connection_string("https://localhost:8443")


def test_tls_files_may_come_from_the_environment_or_the_json_file(tls: TlsFiles, tmp_path: Path) -> None:
    file = tmp_path / "emulator.json"
    file.write_text(json.dumps({"tlsKey": str(tls.server_key)}))
    environ = {"WPS_EMULATOR_TLS_CERT": str(tls.server_certificate)}
    config = load_config(["--config", str(file)], environ=environ)
    assert (config.tls_certificate, config.tls_key) == (str(tls.server_certificate), str(tls.server_key))


def test_a_tls_certificate_without_its_key_is_refused_naming_what_is_missing(tls: TlsFiles) -> None:
    with pytest.raises(ConfigError, match="--tls-cert needs --tls-key too"):
        load_config(["--tls-cert", str(tls.server_certificate)], environ={})


def test_a_tls_file_that_does_not_exist_is_refused_naming_the_setting(tls: TlsFiles, tmp_path: Path) -> None:
    environ = {"WPS_EMULATOR_TLS_KEY": str(tmp_path / "missing.pem")}
    with pytest.raises(ConfigError, match=r"WPS_EMULATOR_TLS_KEY: .* is not a file"):
        load_config(["--tls-cert", str(tls.server_certificate)], environ=environ)


def test_an_http_public_endpoint_is_refused_when_serving_tls(tls: TlsFiles) -> None:
    with pytest.raises(ConfigError, match="must be https:// when the emulator serves TLS"):
        load_config(["--public-endpoint", "http://localhost:8080", *tls_flags(tls)], environ={})


def run_emulator_until_it_stops(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wps_emulator", "--port", "1", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_a_certificate_that_is_not_pem_stops_the_emulator_saying_why(tls: TlsFiles, tmp_path: Path) -> None:
    garbage = tmp_path / "not-a-certificate.pem"
    garbage.write_text("not a certificate\n")
    done = run_emulator_until_it_stops("--tls-cert", str(garbage), "--tls-key", str(tls.server_key))
    assert (done.returncode, done.stdout) == (2, "")
    assert "cannot serve TLS with certificate" in done.stderr
    assert "give a PEM certificate and the PEM private key that belongs to it" in done.stderr


def test_a_key_with_a_passphrase_stops_the_emulator_instead_of_asking_for_it(
    tls: TlsFiles, tmp_path: Path
) -> None:
    key = serialization.load_pem_private_key(tls.server_key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted-key.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"a passphrase"),
        )
    )
    done = run_emulator_until_it_stops("--tls-cert", str(tls.server_certificate), "--tls-key", str(encrypted))
    assert done.returncode == 2
    assert "the private key has a passphrase" in done.stderr


def test_an_entra_tenant_alone_accepts_the_public_clouds_tokens() -> None:
    config = load_config(["--entra-tenant", TENANT.upper()], environ={})
    assert config.entra_authority_url == f"https://login.microsoftonline.com/{TENANT}"


def test_entra_settings_may_come_from_the_environment_or_the_json_file(tmp_path: Path) -> None:
    file = tmp_path / "emulator.json"
    file.write_text(json.dumps({"entraAuthority": f"http://127.0.0.1:9999/{TENANT}/"}))
    config = load_config(["--config", str(file)], environ={"WPS_EMULATOR_ENTRA_TENANT": TENANT})
    assert (config.entra_tenant, config.entra_authority_url) == (TENANT, f"http://127.0.0.1:9999/{TENANT}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--entra-authority", f"https://login.microsoftonline.us/{TENANT}"], "--entra-authority needs"),
        (["--entra-tenant", "contoso.onmicrosoft.com"], "is not a tenant id; give the GUID"),
        (
            ["--entra-tenant", TENANT, "--entra-authority", f"http://login.example.com/{TENANT}"],
            "on this machine",
        ),
        (
            ["--entra-tenant", TENANT, "--entra-authority", "https://login.microsoftonline.us"],
            "authority URL",
        ),
    ],
)
def test_invalid_entra_settings_are_refused_with_a_clear_message(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(argv, environ={})
