"""`tcpwave packetdrill [options] FILE...`: run packetdrill-format scripts against tcpwave."""

import concurrent.futures
import os
import re
import subprocess
import sys

from ..packetdrill import run_file
from ..packetdrill.kernel import run_kernel_file


def add_parser(sub) -> None:
    p = sub.add_parser(
        "packetdrill", help="run packetdrill-format scripts against tcpwave in virtual time",
        description="Run each script against a fresh tcpwave stack on a virtual clock; print one line per script "
                    "and 'N passed, N failed'. Flags such as --ip_version=ipv6, --tolerance_usecs=N, --mss=N, "
                    "--portable, --profile freebsd|linux|rfc or any tcpwave Config field (--msl=1) are defaults; "
                    "a script's own header lines "
                    "win over them. --kernel runs them against the Linux kernel instead (as root; each in a "
                    "network namespace of its own, over a TUN device tun0 (--tun_device=NAME) with TSO, in real time, "
                    "as packetdrill runs them: init and cleanup commands, PACKETDRILL_PID, %{ }% blocks run at the "
                    "end; --strict_segments: one packet per > line).")
    p.add_argument("files", nargs="+", metavar="FILE", help="packetdrill scripts (.pkt) to run")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show each run step by step, and the lines and flags that were skipped")
    p.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME[=VALUE]",
                   help="define NAME for the scripts' #ifdef NAME / #ifndef NAME / #else / #endif blocks "
                        "(repeatable; --define=NAME=VALUE, packetdrill's spelling, works too)")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="with --kernel: run N scripts at once (each has its own namespace; results print "
                        "in the order of the files)")
    p.set_defaults(func=run)


def split_flags(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """packetdrill's own `--name=value` flags, taken out of argv before argparse sees it."""
    rest, flags = [], {}
    args = iter(argv)
    for arg in args:
        m = re.fullmatch(r"--([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?", arg)
        if m and m[1] == "profile" and m[2] is None:  # `--profile freebsd`, as the other commands take it
            flags["profile"] = next(args, "")
        elif m and m[1] == "define" and m[2]:  # packetdrill's --define=NAME=VALUE is our -D NAME=VALUE
            rest.append(f"-D{m[2]}")
        elif m and m[1] not in ("verbose", "help"):
            flags[m[1]] = m[2] if m[2] is not None else "true"
        else:
            rest.append(arg)
    return rest, flags


def run(args) -> int:
    passed = failed = 0
    flags = dict(getattr(args, "drill_flags", {}))
    kernel = flags.pop("kernel", "false").lower() in ("1", "true", "yes")
    defines = dict(d.partition("=")[::2] for d in getattr(args, "defines", []))
    if kernel and os.geteuid() != 0:
        print("tcpwave packetdrill --kernel: needs root (it makes a network namespace and a TUN device "
              "for each script)", file=sys.stderr)
        return 2
    if kernel and args.jobs > 1:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            results = pool.map(lambda p: _in_child(p, flags, defines, args.verbose), args.files)
            for ok, text in results:
                sys.stdout.write(text)
                sys.stdout.flush()
                passed += ok
                failed += not ok
        print(f"{passed} passed, {failed} failed")
        return 0 if failed == 0 else 1
    for path in args.files:
        result = run_kernel_file(path, flags, defines=defines) if kernel else run_file(path, flags, defines)
        print(result.summary())
        if args.verbose:
            for line in result.notes + result.log:
                print(f"      {line}")
        passed += result.ok
        failed += not result.ok
    print(f"{passed} passed, {failed} failed")
    sys.stdout.flush()
    return 0 if failed == 0 else 1


def _in_child(path: str, flags: dict[str, str], defines: dict[str, str], verbose: bool) -> tuple[bool, str]:
    """One script against the kernel in a process of its own (for --jobs)."""
    cmd = [sys.executable, "-m", "tcpwave.cli.main", "packetdrill", "--kernel", path]
    cmd += [f"-D{k}={v}" for k, v in defines.items()]
    cmd += [f"--{k}={v}" for k, v in flags.items()] + (["-v"] if verbose else [])
    done = subprocess.run(cmd, capture_output=True, text=True)
    lines = done.stdout.splitlines()
    body = "\n".join(lines[:-1]) + "\n" if lines else f"FAIL  {path}: {done.stderr.strip()[-200:]}\n"
    return done.returncode == 0, body
