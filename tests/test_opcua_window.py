"""The window on the demo plant's OPC UA twin: the virtual plant served by asyncua in another process,
the window's live controller subscribed to it; states colour the 3D view and the status bar says OPC UA."""

from __future__ import annotations

import subprocess
import sys

import pytest
from test_opcua import DEMO_OPCUA, free_port

pytestmark = pytest.mark.gui


def test_the_window_reads_the_plant_over_opcua(qtbot):
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    port = free_port()
    plant = subprocess.Popen([sys.executable, "-m", "viewer.telemetry.virtual_plant", "--opcua-port", str(port),
                              "--speed", "4"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        create_application()
        win = MainWindow()
        win.opcua_endpoint = f"opc.tcp://127.0.0.1:{port}"  # as --opcua does
        qtbot.addWidget(win)
        win.show()
        with qtbot.waitSignal(win.layout_loaded, timeout=30_000):
            win.open_layout(DEMO_OPCUA)
        assert win.telemetry.opcua is not None and win.telemetry.client is None  # OPC UA only: no MQTT section
        machines = [c.id for c in win.plant_layout.components if c.kind in ("station", "robot")]
        qtbot.waitUntil(lambda: all(win.telemetry.displayed.get(m) in ("running", "idle", "fault", "warning")
                                    for m in machines), timeout=60_000)
        qtbot.waitUntil(lambda: "opc.tcp://127.0.0.1" in win.connection_label.text()
                        and win.telemetry.telemetry_status()["state"] == "connected", timeout=30_000)
        assert win.telemetry.store.stats().decode_errors == 0
        win.telemetry.stop()
        assert win.telemetry.opcua is None and not win.telemetry.running
    finally:
        plant.terminate()
        plant.wait(10)


def test_help_shows_the_viewers_opcua_certificate_and_the_command_prints_the_same(qtbot, tmp_path, monkeypatch,
                                                                                  capsys):
    """An administrator asks for the certificate to trust on the server: the Help menu and
    ``twin-viewer opcua-certificate`` show its file and SHA-1 thumbprint (checked against hashlib) and the
    trust folders; it is made once, on first use."""
    import hashlib

    from viewer.cli import main
    from viewer.ui.app import create_application
    from viewer.ui.main_window import MainWindow

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    own = tmp_path / "twin-viewer" / "opcua" / "own" / "cert.der"
    assert main(["opcua-certificate"]) == 0
    printed = capsys.readouterr().out
    sha1 = hashlib.sha1(own.read_bytes()).hexdigest().upper()
    assert str(own) in printed and sha1 in printed and "made just now" in printed
    assert str(tmp_path / "twin-viewer" / "opcua" / "trusted") in printed
    create_application()
    win = MainWindow()
    qtbot.addWidget(win)
    win.opcua_certificate_action.trigger()
    box = win.opcua_certificate_box
    assert sha1 in box.text() and str(own) in box.text() and "made just now" not in box.text()  # the same one
    box.close()
