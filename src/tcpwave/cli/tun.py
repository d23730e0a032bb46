"""`tcpwave tun add|del DEV`: a persistent TUN device that a user may run tcpwave on without root."""

import grp
import pwd
import sys

from ..aio.workers import STEERING_ENV, steering_wanted
from ..drivers.tun import TunError, add_persistent, delete_persistent
from ..stack import EPHEMERAL


def add_parser(sub) -> None:
    p = sub.add_parser("tun", help="make or remove a persistent TUN device for a user (as root, once)",
                       description="As root, once: `tcpwave tun add DEV --user USER` makes a persistent TUN device "
                                   "owned by USER with the kernel side configured. Then serve, connect and fetch "
                                   "with --tun DEV run as USER with no privileges. `tcpwave tun del DEV` removes it.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("add", help="create a persistent TUN device owned by a user")
    a.add_argument("device", metavar="DEV", help="the device's name (at most 15 characters)")
    a.add_argument("--user", required=True, help="the user (name or uid) who may attach to it")
    a.add_argument("--group", help="also any member of this group (name or gid)")
    a.add_argument("--kernel", "--host", dest="kernel", default="192.0.2.1/24", metavar="ADDR/PREFIX",
                   help="the kernel side, address/prefix (default 192.0.2.1/24); --host is the old name")
    a.add_argument("--mtu", type=int, default=1500, help="the device's MTU (default 1500)")
    a.add_argument("--queues", type=int, default=1, metavar="N",
                   help="the workers it is made for (`serve --workers N`; any number may use it): the device is "
                        "multi-queue, its queues steered by port by an eBPF program that stays with it and gives "
                        "each a lane for new connections' first packets (with $TCPWAVE_STEERING=off: none of that, and "
                        "N = 1 makes a single-queue device) (default 1)")
    d = actions.add_parser("del", help="remove a persistent TUN device")
    d.add_argument("device", metavar="DEV", help="the device's name")
    p.set_defaults(func=run)


def _id(name: str, lookup, what: str) -> int:
    if name.isdigit():
        return int(name)
    try:
        return lookup(name)
    except KeyError:
        raise ValueError(f"no {what} {name!r}") from None


def run(args) -> int:
    try:
        if args.action == "add":
            uid = _id(args.user, lambda n: pwd.getpwnam(n).pw_uid, "user")
            gid = _id(args.group, lambda n: grp.getgrnam(n).gr_gid, "group") if args.group else None
            if args.queues < 1:
                raise ValueError(f"--queues must be at least 1, not {args.queues}")
            steer = steering_wanted()
            multi = args.queues > 1 or steer
            failed = add_persistent(args.device, uid, gid, args.kernel, args.mtu, multi_queue=multi,
                                    steer=EPHEMERAL if steer else None, lanes=steer)
            workers = f" --workers {args.queues}" if args.queues > 1 else ""
            print(f"{args.device}: persistent {'multi' if multi else 'single'}-queue TUN device for {args.user}, "
                  f"kernel side {args.kernel}; as that user: tcpwave serve echo --tun {args.device}{workers}")
            if multi:
                print(f"{args.device}: " + ("queues steered by port, each with a lane for new connections' first "
                                            "packets (eBPF)" if steer and failed is None else
                                            f"not steered ({failed or f'${STEERING_ENV}=off'}): workers hand "
                                            "each other what reaches the wrong one"))
        else:
            delete_persistent(args.device)
            print(f"{args.device}: removed")
    except (TunError, ValueError) as e:
        print(f"tcpwave tun: {e}", file=sys.stderr)
        return 1
    return 0
