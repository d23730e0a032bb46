"""The conformance corpus (tests/conformance/*.pkt), each script run by the packetdrill runner.

A script that pins --ip_version runs once; every other script runs over IPv4 and over IPv6.
"""

import pathlib
import re

import pytest

from tcpwave.packetdrill import run_file

CORPUS = pathlib.Path(__file__).parent / "conformance"
SCRIPTS = sorted(CORPUS.glob("*.pkt"))


def _cases():
    for path in SCRIPTS:
        text = path.read_text()
        if re.search(r"^--ip_version=", text, re.M):
            yield pytest.param(path, None, id=path.stem)
        else:
            for version in ("ipv4", "ipv6"):
                yield pytest.param(path, version, id=f"{path.stem}[{version}]")


@pytest.mark.parametrize("path,version", list(_cases()))
def test_script(path, version):
    result = run_file(str(path), {"ip_version": version} if version else None)
    assert result.ok, result.summary() + "\n" + "\n".join(result.log[-15:])


def test_every_script_names_the_rfc_section_it_checks():
    for path in SCRIPTS:
        first = path.read_text().lstrip().splitlines()[0]
        assert first.startswith("//") and re.search(r"RFC \d+", first), f"{path.name}: {first!r}"



def test_the_corpus_is_large_enough():
    assert len(SCRIPTS) >= 80


def test_every_script_is_in_the_docs_table():
    docs = (CORPUS.parent.parent / "docs" / "packetdrill.md").read_text()
    missing = [p.name for p in SCRIPTS if f"`{p.name}`" not in docs]
    assert not missing, f"add these to the table in docs/packetdrill.md: {missing}"
