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
def packetdrill() -> Path:
    return calibration.build()


@pytest.mark.parametrize("name,verdict", CASES)
def test_kernel_mode_and_real_packetdrill_agree(packetdrill, name, verdict):
    script = calibration.SCRIPTS / name
    want, why = calibration.real(packetdrill, script)
    have, our_why = calibration.ours(script)
    assert want == verdict, f"real packetdrill: {want} {why}"
    assert have == want, f"tcpwave --kernel: {have} {our_why}; real packetdrill: {want} {why}"
