"""The stack profiles' tables in docs/packetdrill.md: every knob each profile sets with where the choice
comes from (src/tcpwave/core/profiles.py), and how the corpus fares under each profile.

    .venv/bin/python docs/profile_results.py    # rewrite both tables (a few seconds: virtual time)

tests/test_profiles.py checks that the docs hold what this writes, so the tables stay true.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "conformance"
DOCS = ROOT / "docs" / "packetdrill.md"
sys.path.insert(0, str(ROOT / "src"))

from tcpwave.core import profiles  # noqa: E402
from tcpwave.packetdrill import run_text  # noqa: E402

HEADER = re.compile(r"^--profile=(\w+)$", re.M)


def script_profile(text: str) -> str:
    """The profile a script's header names (none: written for Linux, tcpwave's default)."""
    m = HEADER.search(text)
    return m[1] if m else "linux"


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    return str(v)


def knob_table() -> str:
    """One row per knob: its value and source in each profile (a blank: Config's default, Linux's)."""
    lines = ["| knob | " + " | ".join(profiles.NAMES) + " |", "|---|" + "---|" * len(profiles.NAMES)]
    for knob, by in profiles.CHOICES.items():
        cells = []
        for name in profiles.NAMES:
            choice = by.get(name)
            cells.append(f"`{_value(choice.value)}`: {choice.source}" if choice else "as linux")
        lines.append(f"| `{knob}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pass_table() -> str:
    """For each group of scripts (by the profile they were written for), how many pass when run under
    each profile (the script's own --profile line replaced), over IPv4, in virtual time."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(CORPUS.glob("*.pkt")):
        text = path.read_text()
        groups.setdefault(script_profile(text), []).append((str(path), text))
    lines = ["| scripts written for | " + " | ".join(f"run under `{n}`" for n in profiles.NAMES) + " |",
             "|---|" + "---|" * len(profiles.NAMES)]
    for group, scripts in sorted(groups.items(), key=lambda g: profiles.NAMES.index(g[0])):
        cells = []
        for name in profiles.NAMES:
            passed = 0
            for path, text in scripts:
                text = HEADER.sub(f"--profile={name}", text) if HEADER.search(text) else f"--profile={name}\n{text}"
                passed += run_text(text, path, {"ip_version": "ipv4"}).ok
            cells.append(f"{passed} of {len(scripts)}")
        lines.append(f"| {group} ({len(scripts)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace(text: str, tag: str, table: str) -> str:
    start, end = f"<!-- {tag} -->\n", f"\n<!-- /{tag} -->"
    a, b = text.index(start) + len(start), text.index(end)
    return text[:a] + table + text[b:]


def main() -> None:
    text = DOCS.read_text()
    text = replace(text, "profile-knobs", knob_table())
    text = replace(text, "profile-results", pass_table())
    DOCS.write_text(text)


if __name__ == "__main__":
    main()
