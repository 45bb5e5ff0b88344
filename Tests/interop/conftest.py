"""Fixtures: the built medic-echo binary on a free loopback port, plain and TLS."""
import subprocess

import pytest

from interop_support import binary, free_port, wait_for_port


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """A self-signed localhost certificate made with the openssl CLI (Debian's openssl package)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True)
    return str(cert), str(key)


@pytest.fixture(scope="session")
def echo_server():
    port = free_port()
    proc = subprocess.Popen([binary("MEDIC_ECHO_BIN"), "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_port(port)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def echo_tls_server(tls_files):
    cert, key = tls_files
    port = free_port()
    proc = subprocess.Popen([binary("MEDIC_ECHO_BIN"), "--listen", f"127.0.0.1:{port}", "--tls-cert", cert, "--tls-key", key],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_port(port)
    yield port, cert
    proc.terminate()
    proc.wait(timeout=10)
