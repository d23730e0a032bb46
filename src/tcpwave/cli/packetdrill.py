"""`tcpwave packetdrill [options] FILE...`: run packetdrill-format scripts against tcpwave."""

import re
import sys

from ..packetdrill import run_file


def add_parser(sub) -> None:
    p = sub.add_parser(
        "packetdrill", help="run packetdrill-format scripts against tcpwave in virtual time",
        description="Run each script against a fresh tcpwave stack on a virtual clock; print one line per script "
                    "and 'N passed, N failed'. Flags such as --ip_version=ipv6, --tolerance_usecs=N, --mss=N, "
                    "--portable or any tcpwave Config field (--msl=1) are defaults; a script's own header lines "
                    "win over them.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show each run step by step, and the lines and flags that were skipped")
    p.set_defaults(func=run)


def split_flags(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """packetdrill's own `--name=value` flags, taken out of argv before argparse sees it."""
    rest, flags = [], {}
    for arg in argv:
        m = re.fullmatch(r"--([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?", arg)
        if m and m[1] not in ("verbose", "help"):
            flags[m[1]] = m[2] if m[2] is not None else "true"
        else:
            rest.append(arg)
    return rest, flags


def run(args) -> int:
    passed = failed = 0
    for path in args.files:
        result = run_file(path, getattr(args, "drill_flags", {}))
        print(result.summary())
        if args.verbose:
            for line in result.notes + result.log:
                print(f"      {line}")
        passed += result.ok
        failed += not result.ok
    print(f"{passed} passed, {failed} failed")
    sys.stdout.flush()
    return 0 if failed == 0 else 1
