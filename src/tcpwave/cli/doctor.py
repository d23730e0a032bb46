"""`tcpwave doctor [--tun DEV]`: check what silently breaks a TUN set-up, and say how to fix each."""

import ipaddress
import json
import os
import select
import shutil
import subprocess
import sys
import time

from ..drivers import tun as tundrv
from ..wire.errors import MalformedPacket
from ..wire.ip import build_ip, parse_ip
from ..wire.tcp import ACK, RST, SYN, Segment, build_tcp, parse_tcp

CAP_NET_ADMIN = 12
IFF_UP = 0x1


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="check a TUN set-up and say how to fix what is wrong",
                       description="Checks /dev/net/tun and the rights to it, CAP_NET_ADMIN, the device (exists, "
                                   "yours, up), the stack's address against the kernel side's and every local "
                                   "address, the route to it, rp_filter, and sends a SYN to the kernel side to see "
                                   "that our checksums are right and the kernel answers. Exit status 1 if "
                                   "anything failed.")
    p.add_argument("--tun", default="tcpw0", help="the TUN device (default tcpw0)")
    p.add_argument("--addr", default="192.0.2.2", help="tcpwave's address (default 192.0.2.2)")
    p.add_argument("--kernel", "--host", dest="kernel", default="192.0.2.1/24", metavar="ADDR/PREFIX",
                   help="the kernel side when the device does not exist yet (default 192.0.2.1/24); --host is "
                        "the old name")
    p.add_argument("--json", action="store_true",
                   help="print the checks as one JSON document: {\"checks\": [{\"status\": ok|note|fail, \"what\", "
                        "\"fix\"}], \"failed\": N}")
    p.set_defaults(func=run)


class Report:
    def __init__(self, as_json: bool = False) -> None:
        self.failed = 0
        self.as_json = as_json
        self.checks: list[dict] = []

    def _add(self, status: str, what: str, fix: str | None = None) -> None:
        self.checks.append({"status": status, "what": what} | ({"fix": fix} if fix else {}))
        if not self.as_json:
            print({"ok": "ok   ", "note": "--   ", "fail": "FAIL "}[status] + f" {what}"
                  + (f"\n      fix: {fix}" if fix else ""))

    def ok(self, what: str) -> None:
        self._add("ok", what)

    def note(self, what: str) -> None:
        self._add("note", what)

    def fail(self, what: str, fix: str) -> None:
        self.failed += 1
        self._add("fail", what, fix)


def _cap_net_admin() -> bool:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    return False


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _local_addresses() -> dict[str, str]:
    """Every address of this namespace -> its device (from `ip -j addr`)."""
    if shutil.which("ip") is None:
        return {}
    out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True).stdout
    found = {}
    for link in json.loads(out or "[]"):
        for a in link.get("addr_info", []):
            found[a["local"]] = link["ifname"]
    return found


def _route_dev(addr: str) -> str | None:
    if shutil.which("ip") is None:
        return None
    r = subprocess.run(["ip", "-j", "route", "get", addr], capture_output=True, text=True)
    routes = json.loads(r.stdout or "[]") if r.returncode == 0 else []
    return routes[0].get("dev") if routes else None


def run(args) -> int:
    for flag, value, parse in (("--addr", args.addr, ipaddress.ip_address),
                               ("--kernel", args.kernel, ipaddress.ip_interface)):
        try:
            parse(value)
        except ValueError as e:
            print(f"tcpwave doctor: {flag}: {e}", file=sys.stderr)
            return 2
    ours = ipaddress.ip_address(args.addr)
    rep = Report(getattr(args, "json", False))
    dev = args.tun
    cap = _cap_net_admin()
    # /dev/net/tun
    if not os.path.exists("/dev/net/tun"):
        rep.fail("/dev/net/tun does not exist", "load the tun module: sudo modprobe tun")
    elif not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        rep.fail("no read/write rights to /dev/net/tun", "sudo chmod 0666 /dev/net/tun (its usual mode)")
    else:
        rep.ok("/dev/net/tun present, read/write")
    # the device, and whether we may use it
    exists = os.path.exists(f"/sys/class/net/{dev}")
    owner = _read(f"/sys/class/net/{dev}/owner") if exists else None
    mine = owner is not None and owner != "-1" and int(owner) == os.getuid()
    if cap:
        rep.ok("CAP_NET_ADMIN: may create and configure TUN devices")
    elif mine:
        rep.ok(f"no CAP_NET_ADMIN, but {dev} is yours (made by `tcpwave tun add`): no privileges needed")
    elif exists:
        rep.fail(f"no CAP_NET_ADMIN and {dev} is not yours (owner uid {owner})",
                 f"run as root, or: sudo tcpwave tun del {dev} && sudo tcpwave tun add {dev} --user $USER")
    else:
        rep.fail(f"no CAP_NET_ADMIN, and no device {dev} to attach to",
                 f"run as root, or have root make one once: sudo tcpwave tun add {dev} --user $USER")
    kernel = None
    flags = 0
    if exists:
        if _read(f"/sys/class/net/{dev}/tun_flags") is None:
            rep.fail(f"{dev} exists and is not a TUN device", "pick another name with --tun")
            return _end(rep)
        flags = int(_read(f"/sys/class/net/{dev}/flags") or "0", 16)
        if flags & IFF_UP:
            rep.ok(f"{dev} is up (administratively; it has carrier while tcpwave is attached)")
        else:
            rep.fail(f"{dev} is down: the kernel sends it nothing", f"sudo ip link set {dev} up")
        kernel = tundrv.interface_address(dev)
        if kernel is None:
            rep.fail(f"{dev} has no IPv4 address: the kernel does not know the way to {ours}",
                     f"sudo ip addr add {args.kernel} dev {dev}")
    else:
        rep.note(f"no device {dev} yet: serve/connect/fetch create it (as root) with {args.kernel} on the kernel side")
        kernel = args.kernel
    # addresses
    if kernel is not None:
        iface = ipaddress.ip_interface(kernel)
        if iface.ip == ours:
            rep.fail(f"the stack's address {ours} is the kernel side's own: the kernel answers itself over lo, "
                     "tcpwave sees nothing", "give tcpwave another address in the prefix, e.g. --addr "
                     f"{next(h for h in iface.network.hosts() if h != iface.ip)}")
        elif ours not in iface.network and not ours.is_loopback:  # (loopback: its own line below)
            rep.fail(f"the stack's address {ours} is outside the kernel side's prefix {iface.network}",
                     f"--addr inside {iface.network}, or route {ours} via {dev}")
        else:
            rep.ok(f"the stack's address {ours} is in {iface.network}, apart from the kernel side's {iface.ip}")
    owner_dev = _local_addresses().get(str(ours))
    other = _another_address(kernel, ours)
    if ours.is_loopback:
        rep.fail(f"{ours} is a loopback address: traffic to it never leaves this host",
                 f"choose an address in the kernel side's prefix{f', e.g. --addr {other}' if other else ''}")
    elif owner_dev is not None:
        rep.fail(f"{ours} is a local address of this host (on {owner_dev}): traffic to it goes over lo",
                 f"choose another --addr{f' (e.g. {other})' if other else ''}, or if {ours} was put on "
                 f"{owner_dev} by mistake: sudo ip addr del {ours}/… dev {owner_dev}")
    if exists and not ours.is_loopback:
        route = _route_dev(str(ours))
        if route == dev:
            rep.ok(f"the route to {ours} goes through {dev}")
        elif route is not None:
            rep.fail(f"the route to {ours} goes through {route}, not {dev}",
                     f"sudo ip route replace {ours} dev {dev} (or remove the route that wins)")
        elif not flags & IFF_UP:  # (a device that is down has no routes; its line above says so)
            rep.note(f"no route to {ours} while {dev} is down: the kernel adds it when {dev} comes up")
        else:
            rep.fail(f"no route to {ours}: the kernel cannot answer tcpwave", f"sudo ip route add {ours} dev {dev}")
        for scope in ("all", dev):
            rp = _read(f"/proc/sys/net/ipv4/conf/{scope}/rp_filter")
            if rp == "1" and route not in (dev, None):
                rep.fail(f"strict rp_filter ({scope}) drops what comes from {ours} on {dev}",
                         f"sudo sysctl -w net.ipv4.conf.{scope}.rp_filter=2")
        if kernel is not None and (cap or mine) and flags & IFF_UP and _local_addresses().get(str(ours)) is None:
            _syn_test(rep, dev, ours, ipaddress.ip_interface(kernel).ip)
    return _end(rep)


def _another_address(kernel: str | None, ours) -> str | None:
    """An address in the kernel side's prefix other than its own, the stack's and this host's, to
    suggest for --addr."""
    if kernel is None:
        return None
    iface = ipaddress.ip_interface(kernel)
    taken = set(_local_addresses()) | {str(iface.ip), str(ours)}
    return next((str(h) for _, h in zip(range(4096), iface.network.hosts(), strict=False) if str(h) not in taken),
                None)


def _syn_test(rep: Report, dev: str, ours, kernel) -> None:
    """Attach, send the kernel side a SYN to a closed port, and expect its RST with a valid checksum."""
    if others := tundrv.holders(dev):  # (a queue added beside a server's would take some of its packets)
        rep.note(f"SYN test skipped: {dev} is in use (process {', '.join(map(str, others))})")
        return
    try:
        multi = (tundrv._tun_flags(dev) or 0) & tundrv.IFF_MULTI_QUEUE  # (one queue of it: all its packets come here)
        fd = tundrv._attach(dev, tundrv.IFF_TUN | tundrv.IFF_NO_PI | multi, True)
    except tundrv.TunError as e:
        rep.note(f"SYN test skipped: {e}")
        return
    try:
        port, iss = 47_001, 0x1000
        # the kernel turns the device's queue on once it sees the carrier we just brought (linkwatch,
        # up to a second or so later): wait for that, and send the SYN again until it is answered
        wait_until = time.monotonic() + 3.0
        while _read(f"/sys/class/net/{dev}/operstate") not in ("up", "unknown") and time.monotonic() < wait_until:
            time.sleep(0.05)
        syn = build_ip(ours, kernel, 6, build_tcp(Segment(port, 9, iss, 0, SYN, 65535), ours, kernel))
        deadline, resend = time.monotonic() + 4.0, 0.0
        while (left := deadline - time.monotonic()) > 0:
            if time.monotonic() >= resend:
                try:
                    os.write(fd, syn)
                except OSError as e:
                    rep.fail(f"writing a packet to {dev} failed: {e.strerror}", f"sudo ip link set {dev} up")
                    return
                resend = time.monotonic() + 0.5
            if not select.select([fd], [], [], min(left, max(0.0, resend - time.monotonic())))[0]:
                continue
            raw = os.read(fd, 65535)
            try:
                pkt = parse_ip(raw)
                if pkt.proto != 6 or pkt.src != kernel:
                    continue
                seg = parse_tcp(pkt.payload, pkt.src, pkt.dst)  # checks the kernel's checksum too
            except MalformedPacket as e:
                rep.fail(f"the kernel's answer on {dev} did not parse ({e.reason})", "report this")
                return
            if seg.dst_port == port and seg.flags & RST and seg.flags & ACK and seg.ack == iss + 1:
                rep.ok(f"a SYN from {ours} to {kernel}:9 drew the kernel's RST: our checksums are right, the "
                       "kernel answers")
                return
        rep.fail(f"a SYN from {ours} to {kernel}:9 drew no answer in 4 s",
                 ("check the failures above; " if rep.failed else "")
                 + "a firewall may drop it (iptables -S, nft list ruleset)")
    finally:
        os.close(fd)


def _end(rep: Report) -> int:
    if rep.as_json:
        print(json.dumps({"checks": rep.checks, "failed": rep.failed}, indent=1))
    print("all checks passed" if not rep.failed else f"{rep.failed} problem(s) found", file=sys.stderr)
    return 1 if rep.failed else 0
