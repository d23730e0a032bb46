"""Entry point: `tcpwave COMMAND ...`."""

import argparse
import difflib
import importlib
import sys

from .. import __version__
from . import allocator, outputs

# each command's module, in `tcpwave --help`'s order: a run imports only its own command's (with the
# stack, views or simulator that one needs), so `tcpwave serve` does not load the lab, bench and demo
COMMANDS = ("demo", "lab", "bench", "sweep", "serve", "sandbox", "connect", "fetch", "packetdrill", "trace", "ss",
            "tun", "doctor", "watch")


class _Version(argparse.Action):
    """--version: the version and the build, computed only when asked (it loads the stack)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from .build_info import describe

        print(f"tcpwave {__version__}, {describe()}")
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser; only `only`'s when it names a command."""
    parser = argparse.ArgumentParser(prog="tcpwave", description="A user-space TCP/IP stack that shows its work.")
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="print tcpwave's version and which build runs (compiled or pure Python), and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (only,) if only in COMMANDS else COMMANDS:
        importlib.import_module(f"{__package__}.{name}").add_parser(sub)
    return parser


def _command_parser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(command) if command else None
    return None


def main(argv: list[str] | None = None) -> int:
    as_program, argv = argv is None, list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    drill_flags: dict[str, str] = {}
    if argv[:1] == ["packetdrill"]:  # packetdrill's --name=value flags are open-ended
        from .packetdrill import split_flags

        argv, drill_flags = split_flags(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:  # a command's own usage, not the top-level one, and the flag meant when it is a typo
        command = _command_parser(parser, getattr(args, "command", None)) or parser
        known = [o for a in command._actions for o in a.option_strings]
        meant = [f" (did you mean {m}?)" for x in extra[:1] for m in difflib.get_close_matches(x, known, 1)]
        command.error(f"unrecognized arguments: {' '.join(extra)}{''.join(meant)}")
    args.drill_flags = drill_flags
    if as_program and args.command == "serve":
        allocator.use_system_malloc()  # (a long-running server: see cli/allocator.py)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if problem := outputs.problem(args):  # before the run, not after it
        print(f"tcpwave {args.command}: {problem}", file=sys.stderr)
        return 2
    try:
        return args.func(args) or 0
    except BrokenPipeError:
        return 0
    except OSError as e:  # the system said no (a file, a device, the network): one line, not a traceback
        print(f"tcpwave {args.command}: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""),
              file=sys.stderr)
        return 1
    except argparse.ArgumentTypeError as e:  # a --set/--cc value that does not fit
        print(f"tcpwave {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
