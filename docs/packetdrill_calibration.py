"""Calibrate `tcpwave packetdrill --kernel` against real packetdrill: the same scripts, both tools.

    sudo .venv/bin/python docs/packetdrill_calibration.py   # every script of tests/calibration (~1 min)

Real packetdrill is built from the source beside the clone (../shared/tools/packetdrill-src, or
$TCPWAVE_PACKETDRILL_SRC) into a cache directory ($XDG_CACHE_HOME/tcpwave or ~/.cache/tcpwave), never
into the repository; it needs bison, flex and a C compiler. Each script runs with `unshare -n
packetdrill SCRIPT`, and all of them with one `tcpwave packetdrill --kernel SCRIPT...` (each in a
namespace of its own, one after another) beside those runs; a script agrees when both give the
same verdict and, when it fails, the same line. The results go to docs/packetdrill-calibration.tsv
(script, real packetdrill, tcpwave --kernel, agree); the exit status is 1 when any script disagrees.
tests/test_packetdrill_calibration.py runs a few of them in CI.
"""

import concurrent.futures
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "tests" / "calibration"
RESULTS = ROOT / "docs" / "packetdrill-calibration.tsv"


def source_dir() -> Path:
    """packetdrill's source: $TCPWAVE_PACKETDRILL_SRC, else ../shared/tools/packetdrill-src beside the clone."""
    given = os.environ.get("TCPWAVE_PACKETDRILL_SRC")
    return Path(given) if given else ROOT.parent / "shared" / "tools" / "packetdrill-src"


def missing_tools() -> list[str]:
    return [tool for tool in ("bison", "flex", "gcc", "make") if shutil.which(tool) is None]


def build() -> Path:
    """The packetdrill binary, built once per source version into the cache directory."""
    src = source_dir()
    digest = hashlib.sha256()
    for path in sorted(src.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tcpwave"
    binary = cache / f"packetdrill-{digest.hexdigest()[:12]}" / "packetdrill"
    if binary.exists():
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=cache, prefix="build-"))
    try:
        shutil.copytree(src, work / "pd")
        for step in (["./configure"], ["make", "-j2", "packetdrill"]):
            done = subprocess.run(step, cwd=work / "pd", capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"building packetdrill: {' '.join(step)} failed: {done.stderr[-500:]}")
        binary.parent.mkdir(exist_ok=True)
        shutil.copy2(work / "pd" / "packetdrill", binary)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return binary


def real(binary: Path, script: Path) -> tuple[str, str]:
    """Real packetdrill's verdict: ('ok' or 'FAIL:LINE', its first line of explanation)."""
    done = subprocess.run(["unshare", "-n", str(binary), script.name], cwd=script.parent,
                          capture_output=True, text=True, timeout=120)
    if done.returncode == 0:
        return "ok", ""
    # a failing %{ }% block: "NAME:LINE: error in Python code" (packetdrill runs the blocks at the end)
    for line in done.stderr.splitlines():
        m = re.match(rf"{re.escape(script.name)}:(\d+): (.*)", line)
        if m:
            return f"FAIL:{m[1]}", m[2]
    return "FAIL:-", (done.stderr.strip().splitlines() or ["(no output)"])[-1]


def ours(script: Path) -> tuple[str, str]:
    """`tcpwave packetdrill --kernel`'s verdict, in the same form."""
    return ours_many([script])[script.name]


def ours_many(scripts: list[Path]) -> dict[str, tuple[str, str]]:
    """`tcpwave packetdrill --kernel`'s verdicts on scripts of one directory, by name: one run of the
    command over all of them, one after another (each still in a namespace of its own), so that Python
    starts once, not once a script."""
    if not scripts:
        return {}
    cwd = scripts[0].parent
    assert all(script.parent == cwd for script in scripts), "scripts of one directory"
    done = subprocess.run([sys.executable, "-m", "tcpwave.cli.main", "packetdrill", "--kernel",
                           *(script.name for script in scripts)],
                          cwd=cwd, capture_output=True, text=True, timeout=300 * len(scripts),
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    verdicts = {}
    for script in scripts:
        m = next(filter(None, (re.match(rf"(ok|FAIL)\s+{re.escape(script.name)}(?::(\d+))?(?::\s*(.*)|$)", line)
                               for line in done.stdout.splitlines())), None)
        if m is None:
            verdicts[script.name] = ("FAIL:-", done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                                     else f"no result line for {script.name}")
        else:
            verdicts[script.name] = ("ok", "") if m[1] == "ok" else (f"FAIL:{m[2] or '-'}", m[3] or "")
    return verdicts


def compare(binary: Path, scripts: list[Path]) -> list[tuple[str, str, str, bool]]:
    """Both tools' verdicts on each script: real packetdrill's one after another while tcpwave's run
    in one process beside them (each script in a namespace of its own: they cannot meet)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        mine = pool.submit(ours_many, scripts)
        theirs = [real(binary, script) for script in scripts]
        have = mine.result()
    rows = []
    for script, (want, why) in zip(scripts, theirs, strict=True):
        have_verdict, our_why = have[script.name]
        rows.append((script.name, f"{want} {why}".strip(), f"{have_verdict} {our_why}".strip(),
                     want == have_verdict))
    return rows


def main() -> int:
    if not source_dir().is_dir():
        print(f"no packetdrill source at {source_dir()}", file=sys.stderr)
        return 2
    binary = build()
    rows = compare(binary, sorted(SCRIPTS.glob("*.pkt")))
    with RESULTS.open("w") as f:
        f.write("script\treal packetdrill\ttcpwave --kernel\tagree\n")
        for name, want, have, same in rows:
            f.write(f"{name}\t{want}\t{have}\t{'yes' if same else 'NO'}\n")
    agree = sum(r[3] for r in rows)
    for name, want, have, same in rows:
        print(f"{'same' if same else 'DIFF'}  {name}: packetdrill {want.split(' ')[0]}, tcpwave {have.split(' ')[0]}")
    print(f"{agree} of {len(rows)} scripts: same verdict and line")
    return 0 if agree == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
