"""OPC UA security end to end: the viewer's own certificate, the server's certificate checked against the trust
folder, and every way a connection fails said in words, each against a real asyncua server in its own process
(``tests/opcua_test_server.py`` with certificates made here). Also the server's news inside a session: a node it
deletes, a subscription it ends.

Expected thumbprints are computed here from the certificate files (hashlib, and ``openssl x509`` where it is
installed), never read back from the code under test; the server checks the viewer's certificate with asyncua's
own validator (time, application URI, key usage, trust).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from test_opcua import JOINTS, SERVER_SCRIPT, STATE, VIBRATION, OpcUaTestServer, free_port, opcua_doc, wait_for

from viewer.model.layout_io import parse_layout
from viewer.telemetry.mqtt_client import ConnectionState, SettingsError
from viewer.telemetry.opcua_client import OpcUaClient, describe_opcua_failure, make_client
from viewer.telemetry.opcua_client import settings_for as opcua_settings_for
from viewer.telemetry.opcua_security import (
    CertificateFileError,
    PkiFolders,
    ServerCertificateChangedError,
    UntrustedServerCertificateError,
    application_uri_for,
    check_server_certificate,
    client_certificate_info,
    ensure_own_certificate,
)
from viewer.telemetry.pipeline import TelemetryPipeline

SERVER_URI = "urn:twin-viewer:test-server"
VIB_LABEL = "2:Line1/2:ST10/2:Spindle/2:Vibration"  # the layout binds the vibration by browse path


# --------------------------------------------------------------------------- certificates made here


def make_server_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A CA-less self-signed server certificate with OPC UA's extensions (asyncua's helper), DER + PEM key."""
    from asyncua.crypto import cert_gen

    key = cert_gen.generate_private_key()
    cert = cert_gen.generate_self_signed_app_certificate(
        key, name, {}, [x509.UniformResourceIdentifier(SERVER_URI), x509.DNSName("localhost")],
        [ExtendedKeyUsageOID.SERVER_AUTH], days=30)
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{name}.der", folder / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))
    key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
    return cert_path, key_path


@pytest.fixture(scope="module")
def server_certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("server-certs")
    return {name: make_server_certificate(folder, name) for name in ("plant-server-a", "plant-server-b")}


def sha1_of(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest().upper()


@pytest.fixture
def pki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PkiFolders:
    """The user's configuration folder in tmp_path (XDG_CONFIG_HOME), as the viewer finds it."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    folders = PkiFolders.default()
    assert folders.root == tmp_path / "config" / "twin-viewer" / "opcua"
    return folders


# --------------------------------------------------------------------------- servers and clients


class SecureServer(OpcUaTestServer):
    """tests/opcua_test_server.py with options (policies, certificate, trusted clients, user)."""

    def __init__(self, port: int, *options: str) -> None:
        self.port = port
        self.proc = subprocess.Popen([sys.executable, str(SERVER_SCRIPT), str(port), *options],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        assert self._line() == "ready"

    def revoke(self) -> int:
        answer = self.command({"revoke": True})
        assert answer.startswith("ok ")
        return int(answer.split()[1])


def secure_options(cert: tuple[Path, Path], *policies: str, trusted_clients: Path | None = None) -> list[str]:
    out = ["--certificate", str(cert[0]), "--private-key", str(cert[1]), "--application-uri", SERVER_URI]
    for policy in policies:
        out += ["--policy", policy]
    if trusted_clients is not None:
        out += ["--trusted-clients", str(trusted_clients)]
    return out


@pytest.fixture
def servers() -> Iterator[list[SecureServer]]:
    """Servers a test starts; all killed at its end."""
    started: list[SecureServer] = []
    yield started
    for server in started:
        server.kill()


def start(servers: list[SecureServer], port: int, *options: str) -> SecureServer:
    server = SecureServer(port, *options)
    servers.append(server)
    return server


def opcua_client(port: int, **opcua: Any) -> tuple[TelemetryPipeline, OpcUaClient]:
    """The test layout's client for the server on ``port``, its opcua section updated with ``opcua``."""
    doc = opcua_doc()
    doc["opcua"].update(endpoint=f"opc.tcp://127.0.0.1:{port}", **opcua)
    layout = parse_layout(doc)
    pipeline = TelemetryPipeline(layout)
    settings = opcua_settings_for(layout, None)
    assert settings is not None
    settings.reconnect_min_s = settings.reconnect_max_s = 0.5
    settings.remonitor_s = 0.5
    return pipeline, OpcUaClient(settings, pipeline.router)


@pytest.fixture
def clients() -> Iterator[list[OpcUaClient]]:
    started: list[OpcUaClient] = []
    yield started
    for client in started:
        client.stop()


def detail_of(client: OpcUaClient) -> str:
    return client.status().detail


def stepped_value(pipeline: TelemetryPipeline, key: str, expected: Any) -> bool:
    pipeline.step(time.time())
    return pipeline.snapshot()["values"].get(key) == expected


def trust_viewer(folder: Path) -> Path:
    """What an administrator does on the server: copy the viewer's certificate into its trusted folder."""
    path, _thumbprint = client_certificate_info()
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(path, folder / "twin-viewer.der"))


# --------------------------------------------------------------------------- the viewer's own certificate


def test_the_own_certificate_is_made_once_private_and_with_opcua_extensions(pki: PkiFolders) -> None:
    own = ensure_own_certificate()
    assert own.created and own.certificate == pki.root / "own" / "cert.der" and own.private_key == pki.own / "key.pem"
    if os.name == "posix":
        assert stat.S_IMODE(own.private_key.stat().st_mode) == 0o600
        assert stat.S_IMODE(pki.own.stat().st_mode) & 0o077 == 0
    cert = x509.load_der_x509_certificate(own.certificate.read_bytes())
    uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)
    assert uris == [application_uri_for()] and uris[0].startswith(f"urn:{socket.gethostname()}:twin-viewer:")
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and usage.key_encipherment and usage.data_encipherment
    assert ExtendedKeyUsageOID.CLIENT_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert cert.issuer == cert.subject  # self-signed, no CA
    path, thumbprint = client_certificate_info()
    assert path == own.certificate and thumbprint == sha1_of(path)
    assert own.info.sha256 == ":".join(f"{b:02X}" for b in hashlib.sha256(path.read_bytes()).digest())
    if shutil.which("openssl"):
        done = subprocess.run(["openssl", "x509", "-inform", "DER", "-in", str(path), "-noout", "-fingerprint",
                               "-sha1"], capture_output=True, text=True, check=True)
        assert done.stdout.strip().split("=", 1)[1].replace(":", "") == thumbprint
    again = ensure_own_certificate()
    assert not again.created and again.info.thumbprint == thumbprint  # made once, then reused
    assert "made this viewer's OPC UA certificate" in own.announcement() and thumbprint in own.announcement()


def test_a_damaged_own_certificate_is_said_and_never_overwritten(pki: PkiFolders) -> None:
    ensure_own_certificate()
    pki.own_certificate.write_bytes(b"not a certificate")
    with pytest.raises(CertificateFileError) as err:
        ensure_own_certificate()
    assert str(pki.own_certificate) in str(err.value) and "not an X.509 certificate" in str(err.value)
    assert pki.own_certificate.read_bytes() == b"not a certificate"  # nothing lost
    pki.own_certificate.unlink()  # one of the pair lost: a new pair, the old key kept aside
    old_key = pki.own_key.read_bytes()
    assert ensure_own_certificate().created
    kept = [p for p in pki.root.iterdir() if p.name.startswith("own.incomplete-")]
    assert len(kept) == 1 and (kept[0] / "key.pem").read_bytes() == old_key


# --------------------------------------------------------------------------- end to end with security


@pytest.mark.parametrize(("policy", "mode", "server_policy"), [
    ("Basic256Sha256", "SignAndEncrypt", "Basic256Sha256_SignAndEncrypt"),
    ("Basic256Sha256", "Sign", "Basic256Sha256_Sign"),
    ("Aes128_Sha256_RsaOaep", "SignAndEncrypt", "Aes128Sha256RsaOaep_SignAndEncrypt"),
    ("Aes128_Sha256_RsaOaep", "Sign", "Aes128Sha256RsaOaep_Sign"),
])
def test_a_secured_session_delivers_values_and_never_writes(pki: PkiFolders, server_certs: Any, servers: Any,
                                                           clients: Any, tmp_path: Path, policy: str, mode: str,
                                                           server_policy: str) -> None:
    """Both sides trust each other's certificate (the server with asyncua's validator, which also checks that
    the viewer's application URI is its certificate's); values arrive; not one write or method call."""
    cert = server_certs["plant-server-a"]
    trust_viewer(tmp_path / "server-trusts")
    pki.trusted.mkdir(parents=True)
    shutil.copy(cert[0], pki.trusted / "plant.der")
    port = free_port()
    server = start(servers, port, *secure_options(cert, server_policy, trusted_clients=tmp_path / "server-trusts"))
    pipeline, client = opcua_client(port, security_policy=policy, security_mode=mode)
    clients.append(client)
    client.start()
    wait_for(lambda: client.status().subscribed, what=f"the subscription ({detail_of(client)})")
    assert client.status().detail == f"connected to opc.tcp://127.0.0.1:{port} ({policy}, {mode})"
    assert client.server_certificate is not None and client.server_certificate.thumbprint == sha1_of(cert[0])
    server.set(VIBRATION, 4.25)
    server.set(JOINTS, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 4.25), what="the vibration")
    wait_for(lambda: stepped_value(pipeline, "R1/joints", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), what="the joints")
    client.stop()
    assert server.requests() == {"writes": 0, "calls": 0}
    known = json.loads(pki.known_servers.read_text())
    assert known[f"opc.tcp://127.0.0.1:{port}"]["thumbprint"] == sha1_of(cert[0])


def test_a_new_own_certificate_is_announced_in_the_connection_detail(pki: PkiFolders, server_certs: Any,
                                                                     servers: Any, clients: Any) -> None:
    port = free_port()
    start(servers, port, *secure_options(server_certs["plant-server-a"], "Basic256Sha256_SignAndEncrypt"))
    _pipeline, client = opcua_client(port, security_policy="Basic256Sha256")
    clients.append(client)
    client.start()  # first use: made now, said at once
    detail = client.status().detail
    assert str(pki.own_certificate) in detail and sha1_of(pki.own_certificate) in detail
    assert client.own_certificate is not None and client.own_certificate.created


# --------------------------------------------------------------------------- the server's certificate


def test_an_untrusted_server_certificate_is_refused_saved_and_trusted_by_copying_it(
        pki: PkiFolders, server_certs: Any, servers: Any, clients: Any, tmp_path: Path) -> None:
    cert = server_certs["plant-server-a"]
    port = free_port()
    server = start(servers, port, *secure_options(cert, "Basic256Sha256_SignAndEncrypt"))
    pipeline, client = opcua_client(port, security_policy="Basic256Sha256")
    clients.append(client)
    client.start()
    thumbprint = sha1_of(cert[0])
    wait_for(lambda: thumbprint in detail_of(client), what="the refusal")
    detail = detail_of(client)
    assert "does not trust" in detail and "CN=plant-server-a" in detail and SERVER_URI in detail
    rejected = pki.rejected / f"{thumbprint}.der"
    assert f"copy {rejected} into {pki.trusted}{os.sep}" in detail
    assert rejected.read_bytes() == cert[0].read_bytes()
    assert client.status().state is ConnectionState.CONNECTING and not client.status().subscribed
    assert "Traceback" not in detail
    shutil.move(rejected, pki.trusted / rejected.name)  # what the administrator does
    wait_for(lambda: client.status().subscribed, what="the connection once trusted")
    server.set(VIBRATION, 2.5)
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 2.5), what="a value")


def test_a_changed_server_certificate_is_refused_as_changed(pki: PkiFolders, server_certs: Any, servers: Any,
                                                           clients: Any) -> None:
    """The server restarts with another certificate: refused with the old and new thumbprints, until the new
    one is trusted; the session before kept working."""
    old, new = server_certs["plant-server-a"], server_certs["plant-server-b"]
    pki.trusted.mkdir(parents=True)
    shutil.copy(old[0], pki.trusted / "plant.der")
    port = free_port()
    server = start(servers, port, *secure_options(old, "Basic256Sha256_SignAndEncrypt"))
    _pipeline, client = opcua_client(port, security_policy="Basic256Sha256")
    clients.append(client)
    client.start()
    wait_for(lambda: client.status().subscribed, what="the first session")
    server.kill()
    start(servers, port, *secure_options(new, "Basic256Sha256_SignAndEncrypt"))
    wait_for(lambda: "changed" in detail_of(client), timeout=30, what="the changed certificate")
    detail = detail_of(client)
    assert f"the server's certificate changed: was {sha1_of(old[0])}" in detail
    assert f"now {sha1_of(new[0])}" in detail and "CN=plant-server-b" in detail
    assert (pki.rejected / f"{sha1_of(new[0])}.der").read_bytes() == new[0].read_bytes()
    shutil.copy(new[0], pki.trusted / "plant-renewed.der")
    wait_for(lambda: client.status().subscribed, timeout=30, what="the session with the renewed certificate")
    assert json.loads(pki.known_servers.read_text())[f"opc.tcp://127.0.0.1:{port}"]["thumbprint"] == sha1_of(new[0])


def test_make_client_checks_the_layouts_server_certificate_as_the_browser_uses_it(
        pki: PkiFolders, server_certs: Any, servers: Any) -> None:
    """make_client (the editor's browser calls it) refuses a server whose certificate is not the layout's
    server_certificate, and accepts it when it is."""
    old, new = server_certs["plant-server-a"], server_certs["plant-server-b"]
    port = free_port()
    start(servers, port, *secure_options(new, "Basic256Sha256_SignAndEncrypt"))
    _pipeline, client = opcua_client(port, security_policy="Basic256Sha256", server_certificate=str(old[0]))
    with pytest.raises(ServerCertificateChangedError) as err:
        asyncio.run(make_client(client.settings, None))
    assert f"was {sha1_of(old[0])}" in str(err.value) and "the layout's server_certificate" in str(err.value)
    assert err.value.saved_to == pki.rejected / f"{sha1_of(new[0])}.der"
    client.settings.server_certificate = new[0]
    ua_client = asyncio.run(make_client(client.settings, None))
    assert ua_client.twin_server_certificate.thumbprint == sha1_of(new[0])


def test_the_trust_folder_skips_what_is_not_a_certificate(pki: PkiFolders, server_certs: Any,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    cert = server_certs["plant-server-a"]
    pki.trusted.mkdir(parents=True)
    (pki.trusted / "broken.der").write_bytes(b"\x30\x03junk")
    (pki.trusted / "notes.txt").write_text("not looked at")
    shutil.copy(cert[0], pki.trusted / "plant.der")
    pki.known_servers.write_text("{ damaged")
    info = check_server_certificate(cert[0].read_bytes(), endpoint="opc.tcp://plc:4840", server="plc")
    assert info.thumbprint == sha1_of(cert[0])
    assert any("broken.der" in r.getMessage() and "skipped" in r.getMessage() for r in caplog.records)
    assert json.loads(pki.known_servers.read_text())["opc.tcp://plc:4840"]["thumbprint"] == sha1_of(cert[0])
    (pki.trusted / "plant.der").unlink()
    with pytest.raises(UntrustedServerCertificateError):
        check_server_certificate(cert[0].read_bytes(), endpoint="opc.tcp://plc:4840", server="plc")


# --------------------------------------------------------------------------- the failures, in words


def _refusal(client: OpcUaClient, words: str) -> str:
    client.start()
    wait_for(lambda: words in detail_of(client), what=f"{words!r} (detail: {detail_of(client)})")
    detail = detail_of(client)
    assert client.status().state is ConnectionState.CONNECTING and "Traceback" not in detail
    return detail


def test_a_server_that_does_not_trust_the_viewer_says_which_certificate_to_trust(
        pki: PkiFolders, server_certs: Any, servers: Any, clients: Any, tmp_path: Path) -> None:
    cert = server_certs["plant-server-a"]
    (tmp_path / "server-trusts").mkdir()
    pki.trusted.mkdir(parents=True)
    shutil.copy(cert[0], pki.trusted / "plant.der")
    port = free_port()
    start(servers, port, *secure_options(cert, "Basic256Sha256_SignAndEncrypt",
                                         trusted_clients=tmp_path / "server-trusts"))
    _pipeline, client = opcua_client(port, security_policy="Basic256Sha256")
    clients.append(client)
    detail = _refusal(client, "does not trust this viewer's certificate")
    assert "(BadCertificateUntrusted)" in detail
    assert str(pki.own_certificate) in detail and sha1_of(pki.own_certificate) in detail
    trust_viewer(tmp_path / "server-trusts")  # the server's administrator trusts it: the next attempt connects
    wait_for(lambda: client.status().subscribed, what="the session once trusted")


def test_a_wrong_password_is_said_as_such(pki: PkiFolders, server_certs: Any, servers: Any, clients: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cert = server_certs["plant-server-a"]
    pki.trusted.mkdir(parents=True)
    shutil.copy(cert[0], pki.trusted / "plant.der")
    port = free_port()
    start(servers, port, *secure_options(cert, "Basic256Sha256_SignAndEncrypt"), "--user", "operator:right")
    monkeypatch.setenv("TEST_OPCUA_PASSWORD", "wrong")
    _pipeline, client = opcua_client(port, security_policy="Basic256Sha256", username="operator",
                                     password_env="TEST_OPCUA_PASSWORD")
    clients.append(client)
    detail = _refusal(client, "refused user 'operator'")
    assert "(BadUserAccessDenied): wrong user name or password" in detail and "$TEST_OPCUA_PASSWORD" in detail
    client.stop()
    monkeypatch.setenv("TEST_OPCUA_PASSWORD", "right")
    _pipeline, right = opcua_client(port, security_policy="Basic256Sha256", username="operator",
                                    password_env="TEST_OPCUA_PASSWORD")
    clients.append(right)
    right.start()
    wait_for(lambda: right.status().subscribed, what="the session with the right password")
    _pipeline, anonymous = opcua_client(port, security_policy="Basic256Sha256")
    clients.append(anonymous)
    assert "refused anonymous access" in _refusal(anonymous, "refused anonymous access")


def test_a_user_without_a_password_is_refused_before_connecting(pki: PkiFolders, server_certs: Any,
                                                                servers: Any) -> None:
    port = free_port()
    start(servers, port, "--user", "operator:right")
    _pipeline, client = opcua_client(port, username="operator")
    with pytest.raises(SettingsError) as err:
        client.start()
    assert "'operator' has no password" in str(err.value) and "password_env" in str(err.value)
    with pytest.raises(SettingsError, match="has no password"):  # the browser's way in says the same
        asyncio.run(make_client(client.settings, None))


@pytest.mark.parametrize(("policy", "mode", "offers", "wanted"), [
    ("Basic256Sha256", "Sign", "Basic256Sha256 SignAndEncrypt", "Basic256Sha256 Sign"),
    ("None", "None", "Basic256Sha256 SignAndEncrypt", "None (no security)"),
])
def test_a_policy_the_server_does_not_offer_is_said_with_what_it_offers(
        pki: PkiFolders, server_certs: Any, servers: Any, clients: Any, policy: str, mode: str, offers: str,
        wanted: str) -> None:
    port = free_port()
    start(servers, port, *secure_options(server_certs["plant-server-a"], "Basic256Sha256_SignAndEncrypt"))
    _pipeline, client = opcua_client(port, security_policy=policy, security_mode=mode)
    clients.append(client)
    detail = _refusal(client, "offers no endpoint")
    assert f"offers no endpoint with security {wanted}; it offers: {offers}." in detail
    assert not pki.rejected.exists()  # nothing was offered to trust


def test_an_endpoint_that_cannot_be_reached_is_said(pki: PkiFolders, clients: Any) -> None:
    port = free_port()  # nothing listens there
    _pipeline, client = opcua_client(port)
    clients.append(client)
    detail = _refusal(client, "connection refused")
    assert f"connection refused by opc.tcp://127.0.0.1:{port}: no OPC UA server listens there" in detail
    settings = client.settings
    settings.endpoint = "opc.tcp://plc-that-does-not-exist.invalid:4840"
    with pytest.raises(OSError) as err:
        asyncio.run(make_client(settings, None))
    assert describe_opcua_failure(err.value, settings) == (
        "cannot find the host 'plc-that-does-not-exist.invalid' of opc.tcp://plc-that-does-not-exist.invalid:4840: "
        "check the endpoint's host name")


# --------------------------------------------------------------------------- the server's news in a session


@pytest.mark.parametrize("tell", ["item", "subscription"])
def test_a_deleted_node_is_named_shows_no_data_and_is_monitored_again_when_it_returns(
        pki: PkiFolders, servers: Any, clients: Any, tell: str) -> None:
    """The server deletes a bound node while subscribed and says so, the standard's way (the monitored item's
    status) or asyncua's (the subscription's status, which node not said); later adds it again."""
    port = free_port()
    server = start(servers, port)
    pipeline, client = opcua_client(port)
    clients.append(client)
    client.start()
    wait_for(lambda: client.status().subscribed, what="the subscription")
    server.set(VIBRATION, 3.5)
    server.set(STATE, "running")
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 3.5), what="a value")
    assert server.command({"delete": VIBRATION, "tell": tell}) == "ok"
    wait_for(lambda: f"opcua:{VIB_LABEL}" in pipeline.store.stats().errors_by_topic, what="the node named")
    error = pipeline.store.stats().errors_by_topic[f"opcua:{VIB_LABEL}"]
    assert error.last_reason == "the server no longer has the node (BadNodeIdUnknown): no data until it returns"
    assert client.node_quality() == {VIB_LABEL: "BadNodeIdUnknown"}
    wait_for(lambda: f"node {VIB_LABEL} is not on the server (BadNodeIdUnknown)" in detail_of(client),
             what="the detail")
    wait_for(lambda: (pipeline.step(time.time()), pipeline.component_states()["VIB"])[1] == "stale",
             what="no data for the vibration")
    server.set(STATE, "fault")  # the other nodes carry on
    wait_for(lambda: stepped_value(pipeline, "ST10/state", "fault"), what="the state still")
    assert server.command({"add": VIBRATION, "value": 6.5}) == "ok"
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 6.5), what="the returned node's value")
    wait_for(lambda: detail_of(client) == f"connected to opc.tcp://127.0.0.1:{port} (no security)", what="the detail")
    assert client.node_quality() == {} and client.status().connects == 1  # the same session
    assert server.command({"delete": VIBRATION, "tell": tell}) == "ok"  # gone again, then the server restarts with it
    wait_for(lambda: "is not on the server" in detail_of(client), what="gone again")
    server.kill()
    restarted = start(servers, port)
    wait_for(lambda: client.status().connects == 2 and client.status().subscribed, timeout=30,
             what="the new session")
    restarted.set(VIBRATION, 7.0)
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 7.0), what="monitored after the reconnect")


def test_a_subscription_the_server_ends_is_made_again_and_counted_as_a_gap(pki: PkiFolders, servers: Any,
                                                                          clients: Any) -> None:
    port = free_port()
    server = start(servers, port)
    pipeline, client = opcua_client(port)
    clients.append(client)
    client.start()
    wait_for(lambda: client.status().subscribed, what="the subscription")
    server.set(VIBRATION, 1.25)
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 1.25), what="before")
    before = client.status()
    assert server.revoke() == 1
    wait_for(lambda: client.status().gaps_total == before.gaps_total + 1, what="the gap")
    gap = client.status().gaps[-1]
    assert gap.reason == "the server ended the subscription (BadTimeout); re-subscribing"
    wait_for(lambda: client.status().subscribed and client.status().gaps[-1].end is not None, what="re-subscribed")
    server.set(VIBRATION, 2.5)
    wait_for(lambda: stepped_value(pipeline, "VIB/vibration", 2.5), what="values on the new subscription")
    after = client.status()
    assert after.connects == before.connects == 1 and after.state is ConnectionState.CONNECTED
    assert server.requests() == {"writes": 0, "calls": 0}
