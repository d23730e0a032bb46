"""Entry point: `tcpwave COMMAND ...`."""

import argparse
import sys

from . import bench, connect, demo, fetch, sandbox, serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tcpwave", description="A user-space TCP/IP stack that shows its work.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo.add_parser(sub)
    bench.add_parser(sub)
    serve.add_parser(sub)
    sandbox.add_parser(sub)
    connect.add_parser(sub)
    fetch.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
