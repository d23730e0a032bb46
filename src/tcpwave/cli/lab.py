"""`tcpwave lab`: a page on 127.0.0.1 (a free port) where a learner picks a scenario, steps through
it, clicks any segment to drop, delay or duplicate it and sees the rerun at once, toggles knobs and
downloads the run. Served by the standard library; opened in the browser when there is one.

GET /?QUERY        the page with that run        GET /run?QUERY   the run as JSON (html, query, state)
GET /export/NAME.{pcapng,svg,html}?QUERY, NAME-states.svg?QUERY   the run's files
A bad query is a 400 with one line saying why; only 127.0.0.1/localhost Host headers are served.
"""

import http.server
import json
import os
import re
import signal
import sys
import threading
import webbrowser
from urllib.parse import urlsplit

from ..scenarios import SCENARIOS
from ..views.html import report
from ..views.lab import fragment, page
from ..views.svg import ladder_svg, state_svg
from .lab_runs import PROFILES, LabError, Run, Runs

MAX_CLIENTS = 8  # connections served at once; more are answered 503 at once
IDLE = 15.0  # seconds a connection may sit without sending its request
_EXPORT = re.compile(r"/export/[A-Za-z0-9_.-]+?(?P<kind>-states\.svg|\.svg|\.pcapng|\.html)")


def add_parser(sub) -> None:
    p = sub.add_parser("lab", help="an interactive page: step through a scenario, drop any segment, see the rerun",
                       description="Serve the TCP lab on 127.0.0.1 and open it in the browser: pick a scenario, "
                                   "step through its ladder and state diagram, click a segment to drop, delay or "
                                   "duplicate it and watch TCP recover. The URL holds the whole run.")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="only print the URL")
    p.set_defaults(func=run)


def run(args) -> int:
    if not 0 <= args.port <= 65535:
        print(f"tcpwave lab: --port {args.port}: 0 to 65535", file=sys.stderr)
        return 2

    def stop(signum, frame):
        raise KeyboardInterrupt  # SIGTERM as Ctrl-C

    old = signal.signal(signal.SIGTERM, stop)
    server = None
    try:
        server = LabServer(("127.0.0.1", args.port), Runs())
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        print(f"tcpwave lab: {url}  (Ctrl-C to stop)", flush=True)
        if not args.no_browser:
            if _browser_here():
                threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
            else:
                print("tcpwave lab: no graphical browser here; open the URL above in one", flush=True)
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        print("tcpwave lab: stopped", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, old)
        if server is not None:
            server.server_close()
    return 0


def _browser_here() -> bool:
    """A browser that opens a window (not a text browser taking over this terminal)."""
    return sys.platform in ("darwin", "win32") or any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY",
                                                                                  "BROWSER"))


class LabServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, runs: Runs):
        self.runs = runs
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            try:  # (read the request first: closing on unread bytes would reset the answer away)
                request.settimeout(0.5)
                request.recv(65536)
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address):  # one line, never a traceback
        print(f"tcpwave lab: request from {client_address[0]} failed: {sys.exc_info()[1]}", file=sys.stderr)


class Handler(http.server.BaseHTTPRequestHandler):
    server: LabServer
    timeout = IDLE
    server_version = "tcpwave-lab"

    def log_message(self, format, *args):  # quiet: the terminal shows only the URL and errors
        pass

    def do_GET(self) -> None:
        try:
            self._get()
        except (BrokenPipeError, ConnectionResetError):  # the browser went away: nothing to answer
            pass
        except Exception as e:  # a fault in the lab itself: one line here, a 500 there
            print(f"tcpwave lab: {self.path[:200]!r} failed: {type(e).__name__}: {e}", file=sys.stderr)
            self._send(500, "text/plain", b"the lab failed on this run; the terminal says why\n")

    def _get(self) -> None:
        parts = urlsplit(self.path)
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "localhost"):  # (a rebound DNS name is not this page)
            return self._send(400, "text/plain", b"tcpwave lab answers only to 127.0.0.1 and localhost\n")
        runs = self.server.runs
        try:
            if parts.path == "/":
                return self._page(runs, parts.query)
            if parts.path == "/run":
                return self._json(runs, parts.query)
            m = _EXPORT.fullmatch(parts.path)
            if m:
                return self._export(runs.get(parts.query), m["kind"])
            if parts.path == "/favicon.ico":
                return self._send(204, "text/plain", b"")
            return self._send(404, "text/plain", f"no page {parts.path}; the lab is at /\n".encode())
        except LabError as e:
            if parts.path == "/run":
                return self._send(400, "application/json", json.dumps({"error": str(e)}).encode())
            if parts.path == "/":
                return self._page(runs, "", error=f"{e} (showing the default run instead)", status=400)
            return self._send(400, "text/plain", f"{e}\n".encode())

    def _page(self, runs: Runs, query: str, error: str = "", status: int = 200) -> None:
        lab = runs.get(query)
        offered = {name: SCENARIOS[name].summary for name in runs.offered}
        html = page(offered, lab.query.state(), _fragment(lab), error, list(PROFILES))
        self._send(status, "text/html; charset=utf-8", html.encode())

    def _json(self, runs: Runs, query: str) -> None:
        lab = runs.get(query)
        body = {"html": _fragment(lab), "query": lab.query.text(), "state": lab.query.state()}
        self._send(200, "application/json", json.dumps(body).encode())

    def _export(self, lab: Run, kind: str) -> None:
        title = f"tcpwave lab: {lab.query.scenario} (seed {lab.query.seed})" + (
            f"; {'; '.join(lab.said)}" if lab.said else "")
        main = lab.views[-1]
        if kind == ".pcapng":
            body, kind_type = lab.pcapng, "application/octet-stream"
        elif kind == ".svg":
            body, kind_type = ladder_svg(main.events, main.left, main.right, title).encode(), "image/svg+xml"
        elif kind == "-states.svg":
            body, kind_type = state_svg(main.events, [main.left, main.right], title).encode(), "image/svg+xml"
        else:
            with self.server.runs.locked():
                body, kind_type = report(lab.views, title, lab.msl).encode(), "text/html; charset=utf-8"
        name = f"tcpwave-{lab.query.scenario}-seed{lab.query.seed}{kind}"
        self._send(200, kind_type, body, {"Content-Disposition": f'attachment; filename="{name}"'})

    def _send(self, status: int, kind: str, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; "
                         "style-src 'unsafe-inline'; img-src data:; connect-src 'self'; form-action 'self'")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


def _fragment(lab: Run) -> str:
    q = lab.query
    marks = {said.split()[1]: said for said in lab.said}  # "drop client:ACK#1": the segment it names
    run = {"query": q.text(), "state": q.state(), "faults": [list(f) for f in q.faults], "said": lab.said,
           "checks": lab.checks, "closed": lab.closed, "end": lab.end,
           "stem": f"tcpwave-{q.scenario}-seed{q.seed}"}
    return fragment(lab.views, lab.titles, lab.names, marks, run, lab.msl)

