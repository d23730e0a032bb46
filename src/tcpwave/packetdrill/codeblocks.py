"""`%{ }%` blocks with packetdrill's semantics.

At a block's time only the tcp_info of the socket under test is taken (no socket yet: the script fails
there, "no socket to use for code", as packetdrill's runtime error). The blocks run after the script's
last line, in order, as one Python program (a name one block sets, the next sees), each with the
tcpi_* names of its own moment. A failing block fails the script at the block's line, and only if
everything else passed: packetdrill writes the blocks to one file and runs it at the end.
"""

import contextlib
import io
import textwrap

from ..core import tcpinfo
from .script import SkippedEvent


class CodeFailure(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


def _code(event: SkippedEvent) -> tuple[str, int]:
    """The block's code, dedented, and how many lines of the block come before it."""
    lines = event.body.split("\n")
    first = next((i for i, text in enumerate(lines) if text.strip()), 0)
    return textwrap.dedent("\n".join(lines[first:])).strip(), first


class CodeBlocks:
    def __init__(self) -> None:
        self.taken: list[tuple[SkippedEvent, dict, float]] = []

    def take(self, event: SkippedEvent, info: dict | None, at: float) -> str:
        """The block's moment: its tcp_info, kept for the run at the end; a line for the -v log."""
        if info is None:
            raise CodeFailure(event.line, "runtime error in code: no socket to use for code (tcp_info is taken "
                                          "from the socket under test, as in packetdrill)")
        self.taken.append((event, info, at))
        code, _ = _code(event)
        return f"{at:.3f} %{{ {code.splitlines()[0] if code else ''} }}% (tcp_info taken; run after the last line)"

    def run(self) -> list[str]:
        """Run every block in order; the -v log of the run. CodeFailure at the first that fails."""
        names: dict = tcpinfo.constants()
        log: list[str] = []
        for event, info, at in self.taken:
            names.update(info)
            code, first = _code(event)
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):
                    exec(compile(code, f"<%{{ }}% at line {event.line}>", "exec"), names)  # noqa: S102 - the script's own code
            except AssertionError as e:
                tb = e.__traceback__
                while tb is not None and tb.tb_next is not None:
                    tb = tb.tb_next
                offset = (tb.tb_lineno - 1) if tb is not None else 0
                failed = code.splitlines()[offset].strip() if offset < len(code.splitlines()) else code
                detail = f" ({e})" if str(e) else ""
                shown = {k: int(v) for k, v in sorted(info.items()) if k.startswith("tcpi_") and k in failed}
                raise CodeFailure(event.line, f"error in Python code (run after the last line, with the tcp_info of "
                                              f"{at:.3f} s): line {event.line + first + offset}: assertion failed: "
                                              f"{failed}{detail}; tcp_info: {shown}") from None
            except Exception as e:
                raise CodeFailure(event.line, f"error in Python code (run after the last line): "
                                              f"{type(e).__name__}: {e}") from None
            log.append(f"{at:.3f} %{{ {code.splitlines()[0] if code else ''} }}% ok")
            log.extend(f"        | {line}" for line in printed.getvalue().splitlines())
        return log
