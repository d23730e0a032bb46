"""The files a command will write, checked before it runs: a missing or unwritable directory is one
line on stderr before any work is done, not a traceback after the run (and its report) is lost."""

import os

# every option, across commands, that names a file or prefix the command writes
OUTPUT_OPTIONS = ("events", "pcap", "pcapng", "html", "svg", "png", "ready_file")


def problem(args) -> str | None:
    """What is wrong with the first output path of `args` that cannot be written, or None."""
    for name in OUTPUT_OPTIONS:
        path = getattr(args, name, None)
        if not isinstance(path, str) or not path:
            continue
        flag = "--" + name.replace("_", "-")
        where = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(where):
            return f"{flag} {path}: no directory {where}"
        if os.path.isdir(path):
            return f"{flag} {path}: is a directory"
        if not os.access(where, os.W_OK | os.X_OK):
            return f"{flag} {path}: cannot write in {where}"
    return None
