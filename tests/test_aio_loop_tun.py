"""Issue 26 over TUN against Linux: the unchanged aiohttp, websockets and h11 apps on a tcpwave loop
(tcpwave's server with a Linux client, Linux's server with tcpwave's client), and TLS 1.3 echoes
against a Python ssl peer and openssl s_server. In a network namespace each test makes and removes."""

import json
import pathlib
import sys

from netns import namespace, needs_netns
from tls_cert import needs_openssl, self_signed

PEER = pathlib.Path(__file__).parent / "interop" / "loop_peer.py"
pytestmark = needs_netns


def in_namespace(*args: str) -> dict:
    with namespace("tcpwave-loop") as ns:
        proc = ns.call(sys.executable, str(PEER), *args, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_unchanged_apps_over_tun_against_linux():
    r = in_namespace("apps")
    # each connection went through tcpwave: its SYN-ACKs as the server, its SYNs as the client
    assert r.pop("tcpwave opened") == [["SYN", 8100], ["SYN", 8101], ["SYN", 8102],
                                       ["SYN-ACK", 8000], ["SYN-ACK", 8001], ["SYN-ACK", 8002]]
    ok = {"h11_app": {"status": 200, "ok": True}, "websockets_app": {"echoed": 20, "ok": True},
          "aiohttp_app": {"hello": {"hello": "tcpwave"}, "upload_ok": True, "download_ok": True}}
    assert r == {f"{app} tcpwave {side}": {"result": want} for app, want in ok.items()
                 for side in ("server", "client")}


@needs_openssl
def test_tls13_echo_over_tun_against_python_ssl_and_openssl(tmp_path):
    cert, key = self_signed(tmp_path)
    r = in_namespace("tls", cert, key)
    assert r.pop("tcpwave opened") == [["SYN", 4433], ["SYN", 4434], ["SYN-ACK", 443]]
    assert r == {"python ssl peer": {"version": "TLSv1.3", "got": True},
                 "openssl s_server": {"version": "TLSv1.3", "got": "evawpct olleh\n"},
                 "tcpwave server": {"version": "TLSv1.3", "got": "over TLS"}}
