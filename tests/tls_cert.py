"""A throwaway self-signed certificate for the TLS tests, made with the openssl command."""

import pathlib
import shutil
import subprocess

import pytest

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def self_signed(directory: pathlib.Path, ip: str = "192.0.2.2") -> tuple[str, str]:
    """(certificate, key) paths: an EC P-256 certificate for `ip` (and server.test), valid a day."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=server.test", "-addext",
                    f"subjectAltName=IP:{ip},DNS:server.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)
