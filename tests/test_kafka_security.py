"""Kafka security settings: SASL (PLAIN, SCRAM) and TLS reach Faust's broker credentials, a
half configuration is refused by name, and no failure prints a password or a traceback."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
import trustme
from commands import pipeline_cli
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from pipeline.runtime.app import broker_credentials, build_app, faust_app
from pipeline.runtime.broker import EmbeddedBroker
from pipeline.runtime.worker import pipeline_topics
from pipeline.settings import Kafka, Settings, configuration_problems
from pipeline.sinks.warehouse import Warehouse

PASSWORD = "kafka-test-password-7f3c"  # a test value, looked for in every output


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as files."""
    out = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1", "localhost")
    client = authority.issue_cert("pipeline-worker@example.com")
    files = {
        "ca": out / "ca.pem",
        "server": out / "server.pem",
        "client_cert": out / "client.pem",
        "client_key": out / "client.key",
        "other_ca": out / "other-ca.pem",
    }
    authority.cert_pem.write_to_path(str(files["ca"]))
    server.private_key_and_cert_chain_pem.write_to_path(str(files["server"]))
    client.cert_chain_pems[0].write_to_path(str(files["client_cert"]))
    client.private_key_pem.write_to_path(str(files["client_key"]))
    trustme.CA().cert_pem.write_to_path(str(files["other_ca"]))
    return files


def test_sasl_scram_over_tls_reaches_faust_and_aiokafka(certificates: dict[str, Path]) -> None:
    kafka = Kafka(
        bootstrap="kafka-1.example.com:9096",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="pipeline",
        sasl_password=PASSWORD,
        ssl_cafile=certificates["ca"],
    )
    auth = credentials_to_aiokafka_auth(broker_credentials(kafka))
    assert {key: value for key, value in auth.items() if key != "ssl_context"} == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "pipeline",
        "sasl_plain_password": PASSWORD,
    }
    context = auth["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [cert["subject"] for cert in context.get_ca_certs()] != []
    # The same settings in kafka-python's spelling (topic creation, the simulator's producer).
    assert kafka.client_options() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "pipeline",
        "sasl_plain_password": PASSWORD,
        "ssl_cafile": str(certificates["ca"]),
    }
    # And the Faust app the worker builds carries them.
    app = faust_app(Settings(kafka=kafka), kafka.bootstrap or "")
    assert app.conf.broker_credentials.mechanism.value == "SCRAM-SHA-512"
    assert app.conf.broker_credentials.protocol.value == "SASL_SSL"


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_sasl_without_tls(mechanism: str) -> None:
    kafka = Kafka(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_username="pipeline",
        sasl_password=PASSWORD,
    )
    auth = credentials_to_aiokafka_auth(broker_credentials(kafka))
    assert auth["security_protocol"] == "SASL_PLAINTEXT"
    assert auth["sasl_mechanism"] == mechanism
    assert auth["ssl_context"] is None


def test_plaintext_has_no_credentials() -> None:
    assert broker_credentials(Kafka()) is None
    assert Kafka().client_options() == {"security_protocol": "PLAINTEXT"}


def _serve_tls_once(context: ssl.SSLContext) -> tuple[int, dict[str, object]]:
    """A TLS listener on loopback that accepts one connection and records the peer."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: dict[str, object] = {}

    def accept() -> None:
        connection, _ = listener.accept()
        try:
            with context.wrap_socket(connection, server_side=True) as tls:
                seen["peer"] = tls.getpeercert()
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            seen["error"] = exc
        finally:
            listener.close()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1], seen


def _server_context(certificates: dict[str, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certificates["server"]))
    context.load_verify_locations(str(certificates["ca"]))
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS, as a locked-down broker asks
    return context


def test_tls_settings_complete_a_mutual_handshake(certificates: dict[str, Path]) -> None:
    kafka = Kafka(
        security_protocol="SSL",
        ssl_cafile=certificates["ca"],
        ssl_certfile=certificates["client_cert"],
        ssl_keyfile=certificates["client_key"],
    )
    auth = credentials_to_aiokafka_auth(broker_credentials(kafka))
    assert auth["security_protocol"] == "SSL"
    port, seen = _serve_tls_once(_server_context(certificates))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        auth["ssl_context"].wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.recv(2) == b"ok"
    assert "error" not in seen
    # The broker saw the worker's own certificate.
    assert ("email", "pipeline-worker@example.com") in seen["peer"]["subjectAltName"]  # type: ignore[index]


def test_tls_refuses_a_broker_signed_by_another_authority(certificates: dict[str, Path]) -> None:
    kafka = Kafka(security_protocol="SSL", ssl_cafile=certificates["other_ca"])
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(certificates["server"]))
    port, _ = _serve_tls_once(server)
    context = kafka.ssl_context()
    assert context is not None
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        (
            {"security_protocol": "SASL_SSL", "sasl_password": PASSWORD},
            "PIPELINE_KAFKA_SASL_MECHANISM, PIPELINE_KAFKA_SASL_USERNAME",
        ),
        ({"sasl_username": "pipeline", "sasl_password": PASSWORD}, "uses no SASL"),
        ({"ssl_cafile": "/etc/ssl/ca.pem"}, "PIPELINE_KAFKA_SSL_CAFILE set, but"),
    ],
)
def test_half_a_configuration_is_refused_by_name(variables: dict[str, str], named: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Kafka(**variables)
    assert named in configuration_problems(refused.value)
    assert PASSWORD not in str(refused.value)


def test_the_cli_says_what_is_wrong_without_the_password(tmp_path: Path) -> None:
    ran = pipeline_cli(
        "migrate",
        env={
            "PIPELINE_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'wh'}",
            "PIPELINE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "PIPELINE_KAFKA_SASL_PASSWORD": PASSWORD,
        },
        timeout=60,
    )
    assert ran.returncode == 2
    assert ran.stderr.strip() == (
        "pipeline: configuration: PIPELINE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs "
        "PIPELINE_KAFKA_SASL_MECHANISM, PIPELINE_KAFKA_SASL_USERNAME"
    )
    assert PASSWORD not in ran.stdout + ran.stderr


def test_a_broker_that_refuses_the_security_settings_stops_the_worker_in_one_line(
    tmp_path: Path,
) -> None:
    """The embedded broker speaks no SASL: a worker configured for SASL cannot set up its
    topics. It says where and what to check, in one line, and exits."""
    with EmbeddedBroker() as broker:
        ran = pipeline_cli(
            "worker",
            env={
                "PIPELINE_KAFKA_BOOTSTRAP": broker.bootstrap,
                "PIPELINE_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'wh'}",
                "PIPELINE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "PIPELINE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                "PIPELINE_KAFKA_SASL_USERNAME": "pipeline",
                "PIPELINE_KAFKA_SASL_PASSWORD": PASSWORD,
                "PIPELINE_KAFKA_CONNECT_TIMEOUT": "3",
            },
            timeout=120,
        )
    assert ran.returncode == 2, ran.stderr
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith(f"pipeline: cannot set up the Kafka topics at {broker.bootstrap}")
    assert "PIPELINE_KAFKA_SECURITY_PROTOCOL" in last
    assert "Traceback" not in ran.stderr
    assert PASSWORD not in ran.stdout + ran.stderr


# Azure Event Hubs' Kafka endpoint, as README step 2 sets it (Azure/azure-event-hubs-for-kafka
# README: port 9093, SASL_SSL, PLAIN, username `$ConnectionString`, the connection string as
# the password, session.timeout.ms >= 30000; the event hub's name is the topic).
EVENT_HUBS_CONNECTION = (
    "Endpoint=sb://contoso-logs.servicebus.windows.net/;SharedAccessKeyName=pipeline-listen;"
    f"SharedAccessKey={PASSWORD}"
)
EVENT_HUBS = {
    "PIPELINE_KAFKA_BOOTSTRAP": "contoso-logs.servicebus.windows.net:9093",
    "PIPELINE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "PIPELINE_KAFKA_SASL_MECHANISM": "PLAIN",
    "PIPELINE_KAFKA_SASL_USERNAME": "$ConnectionString",
    "PIPELINE_KAFKA_SASL_PASSWORD": EVENT_HUBS_CONNECTION,
    "PIPELINE_KAFKA_SESSION_TIMEOUT": "30",
    "PIPELINE_APP_ID": "passwordless-pipeline-entra",
    "PIPELINE_TOPIC_ENTRA": "entra-signin-logs",
    "PIPELINE_READ_SOURCES": "entra",
}


def test_event_hubs_settings_reach_faust_and_aiokafka(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in EVENT_HUBS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path / "faust"))
    settings = Settings()
    assert pipeline_topics(settings) == ["entra-signin-logs", "pipeline.dead-letter"]
    with Warehouse(f"chdb://{tmp_path / 'wh'}") as warehouse:
        app = build_app(settings, warehouse, settings.kafka.bootstrap or "")
    assert app.conf.id == "passwordless-pipeline-entra"  # the consumer group
    assert [str(url) for url in app.conf.broker] == [
        "kafka://contoso-logs.servicebus.windows.net:9093"
    ]
    assert app.conf.broker_session_timeout == 30.0
    (agent,) = app.agents.values()
    assert agent.channel.topics == ("entra-signin-logs",)
    expected = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "$ConnectionString",
        "sasl_plain_password": EVENT_HUBS_CONNECTION,
    }
    for auth in (
        credentials_to_aiokafka_auth(app.conf.broker_credentials),  # Faust's consumer, producer
        settings.kafka.aiokafka_options(),  # the continuity check, lag, the receiver
    ):
        context = auth["ssl_context"]
        assert {key: value for key, value in auth.items() if key != "ssl_context"} == expected
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_the_sources_a_worker_reads_are_checked_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIPELINE_READ_SOURCES", "entra, sharepoint")
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert "PIPELINE_READ_SOURCES: unknown source sharepoint" in configuration_problems(
        raised.value
    )
