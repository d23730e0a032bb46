"""Run the conformance corpus against the Linux kernel and write the Linux column of the corpus table.

    sudo .venv/bin/python docs/linux_results.py          # both modes, every script (about 5 minutes)
    .venv/bin/python docs/linux_results.py --table-only  # rewrite the table from linux-results.tsv

Each script runs with `tcpwave packetdrill --kernel`, in its default mode and with --portable. The
results go to docs/linux-results.tsv (script, seconds of script time, default, portable); the table
in docs/packetdrill.md gets its "Linux" column from them, with the reason a script's header gives
in a `// Linux: ...` comment where Linux differs. tests/test_packetdrill_kernel.py runs the short
scripts marked ok, so the table stays true.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "conformance"
RESULTS = ROOT / "docs" / "linux-results.tsv"
DOCS = ROOT / "docs" / "packetdrill.md"
LONGEST = 300  # seconds: longer scripts are not run against the kernel
sys.path.insert(0, str(ROOT / "src"))


def script_seconds(path: Path) -> float:
    """How long the script runs (its time on tcpwave's virtual clock): the kernel takes that long."""
    from tcpwave.packetdrill.runner import Runner
    from tcpwave.packetdrill.script import parse_script

    runner = Runner(parse_script(path.read_text(), str(path)))
    runner.run()
    return runner.now


def run_kernel(files: list[Path], portable: bool) -> dict[str, str]:
    cmd = [sys.executable, "-m", "tcpwave.cli.main", "packetdrill", "--kernel", "-j", "4"]
    out = subprocess.run(cmd + (["--portable"] if portable else []) + [str(f) for f in files],
                         capture_output=True, text=True, cwd=ROOT).stdout
    results = {}
    for line in out.splitlines():
        m = re.match(r"(ok|FAIL)\s+\S*/([\w.-]+\.pkt)(?::(\d+))?:?\s*(.*)", line)
        if m:
            results[m[2]] = "ok" if m[1] == "ok" else f"{m[3] or '-'}\t{m[4]}"
    return results


def reason(name: str) -> str:
    """The script's own `// Linux: ...` comment (one or more lines), if it has one."""
    lines = (CORPUS / name).read_text().splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("// Linux:"):
            out.append(line[len("// Linux:"):].strip())
            for more in lines[i + 1:]:
                if not more.startswith("//   "):
                    break
                out.append(more[2:].strip())
    return " ".join(out)


def profile_of(path: Path) -> str:
    """The profile a script's header names (`--profile=freebsd`); linux when it names none."""
    m = re.search(r"^--profile=(\w+)$", path.read_text(), re.M)
    return m[1] if m else "linux"


def not_run(profile: str) -> str:
    """A script written for another stack's profile is not run against Linux."""
    stack = {"freebsd": "FreeBSD's", "rfc": "the RFC's"}.get(profile, profile + "'s")
    return f"not run: a `--profile={profile}` script ({stack} choices, not Linux's)"


def cell(name: str, default: str, portable: str) -> str:
    if portable.partition("\t")[2].startswith("not run:"):
        return portable.partition("\t")[2]
    if default == "ok":
        return "ok"
    if portable == "ok":
        return "ok with --portable"
    line, _, message = portable.partition("\t")  # (the fairer comparison: --portable's first difference)
    why = reason(name) or message.replace("|", "\\|")
    if "no result within" in message:
        return f"not run: {why}"
    return f"differs (line {line}): {why}"


def write_table() -> None:
    rows = {}
    for line in RESULTS.read_text().splitlines()[1:]:
        name, seconds = line.split("\t", 2)[:2]
        rows[name] = (float(seconds), *_split(line))
    text = DOCS.read_text()
    out = []
    for line in text.splitlines():
        m = re.match(r"(\|[^|]*\| `([\w.-]+\.pkt)` \|[^|]*\|[^|]*\|)", line)
        if m and m[2] in rows:
            seconds, default, portable = rows[m[2]]
            out.append(f"{m[1]} {cell(m[2], default, portable)} |")
        elif line.startswith("| RFC section(s) | script |"):
            out.append("| RFC section(s) | script | what it checks | runs over | Linux 6.18 (`--kernel`) |")
        elif line.startswith("|---|---|---|---|") and out and out[-1].startswith("| RFC section(s) | script |"):
            out.append("|---|---|---|---|---|")
        else:
            out.append(line)
    DOCS.write_text("\n".join(out) + "\n")


def _split(line: str) -> tuple[str, str]:
    """A results line: name, seconds, then the default and the portable results, each 'ok' or
    'LINE<tab>MESSAGE', separated by ' || '."""
    rest = line.split("\t", 2)[2]
    default, _, portable = rest.partition(" || ")
    return default, portable


def main() -> None:
    if "--table-only" not in sys.argv:
        files = sorted(CORPUS.glob("*.pkt"))
        seconds = {f.name: script_seconds(f) for f in files}
        runnable = [f for f in files if seconds[f.name] <= LONGEST and profile_of(f) == "linux"]
        default, portable = run_kernel(runnable, False), run_kernel(runnable, True)
        lines = ["script\tseconds\tdefault || portable"]
        for f in files:
            missing = (f"-\t{not_run(profile_of(f))}" if profile_of(f) != "linux" else
                       f"-\tno result within {LONGEST} s: the script runs {seconds[f.name]:,.0f} s")
            d, p = default.get(f.name, missing), portable.get(f.name, missing)
            lines.append(f"{f.name}\t{seconds[f.name]:.1f}\t{d} || {p}")
        RESULTS.write_text("\n".join(lines) + "\n")
    write_table()


if __name__ == "__main__":
    main()
