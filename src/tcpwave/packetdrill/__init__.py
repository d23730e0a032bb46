"""packetdrill-format conformance scripts, run against tcpwave in virtual time.

`run_file(path)` / `run_text(text)` return a Result; `tcpwave packetdrill FILE...` is the command.
The grammar supported and the `--portable` rules are in docs/packetdrill.md.
"""

from .runner import Result, run_file, run_text
from .script import ScriptError, parse_script

__all__ = ["Result", "ScriptError", "parse_script", "run_file", "run_text"]
