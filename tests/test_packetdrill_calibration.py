"""`tcpwave packetdrill --kernel` against real packetdrill, built from the source beside the clone
(../shared/tools/packetdrill-src): a few of tests/calibration's scripts, with shell lines, sleeps, a
`tc qdisc` on tun0, `%{ }%` blocks and a TSO-sized segment, give the same verdict and failing line with
both. docs/packetdrill_calibration.py runs all of them and records the comparison.
"""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))
import packetdrill_calibration as calibration  # noqa: E402

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun"),
                       reason="--kernel and packetdrill need root and /dev/net/tun"),
    pytest.mark.skipif(not calibration.source_dir().is_dir(),
                       reason=f"no packetdrill source at {calibration.source_dir()} (../shared beside the clone): "
                              "real packetdrill cannot be built to calibrate against"),
    pytest.mark.skipif(bool(calibration.missing_tools()),
                       reason=f"building packetdrill needs {', '.join(calibration.missing_tools())}"),
]

# (script, real packetdrill's verdict): each verdict is also asserted, so that a script that stopped
# testing what it was written for (both tools passing a script meant to fail) is caught
CASES = [
    ("init-sleep-then-syn.pkt", "ok"),  # init command before time 0, sleeps, PACKETDRILL_PID
    ("sleep-lines-then-syn.pkt", "ok"),  # relative times after shell lines: from when they ended
    ("qdisc-drop-on-tun0.pkt", "ok"),  # `tc qdisc ... dev tun0`, a cleanup command
    ("qdisc-drop-on-tun0-fails.pkt", "FAIL:9"),
    ("code-block-fails.pkt", "FAIL:13"),  # a %{ }% block reported after the last line, at its line
    ("code-block-then-packet-fails.pkt", "FAIL:12"),
    ("code-block-after-close-fails.pkt", "FAIL:12"),  # no tcp_info of a closed socket under test
    ("tso-segment.pkt", "ok"),  # > P. 1:10001(10000)
]


@pytest.fixture(scope="module")
def verdicts() -> dict[str, tuple[str, str]]:
    """Both tools' verdicts (with their reasons) on every case, by script: real packetdrill's one after
    another, tcpwave's in one run beside them (Python starts once, not once a script)."""
    rows = calibration.compare(calibration.build(), [calibration.SCRIPTS / name for name, _ in CASES])
    return {name: (want, have) for name, want, have, _ in rows}


@pytest.mark.parametrize("name,verdict", CASES)
def test_kernel_mode_and_real_packetdrill_agree(verdicts, name, verdict):
    want, have = verdicts[name]  # "ok" or "FAIL:LINE", then the first line of explanation
    assert want.split(" ")[0] == verdict, f"real packetdrill: {want}"
    assert have.split(" ")[0] == want.split(" ")[0], f"tcpwave --kernel: {have}; real packetdrill: {want}"
