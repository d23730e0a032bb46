"""The time-scaled SVG ladder (issue 27, defect 3): a lost segment's X lands where that segment
would have arrived, not on another arrow, and no two words overlap, even where arrows cross
(simultaneous open and close) or converge (two segments sent together)."""

import math
import xml.etree.ElementTree as ET

import pytest

from tcpwave.scenarios import SCENARIOS
from tcpwave.views.svg import ladder_svg

SVG = "{http://www.w3.org/2000/svg}"


def _boxes(root) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Every text's bounding box (x0, y0, x1, y1), its width taken as 0.6 em per character (or its
    textLength), rotated as drawn."""
    size = float(root.get("font-size", 12))
    out = []
    for parent in root.iter():
        for title in parent.findall(f"{SVG}title"):
            parent.remove(title)  # a tooltip, not drawn
    for el in root.iter(f"{SVG}text"):
        text = "".join(el.itertext())
        fs = float(el.get("font-size", size))
        w = float(el.get("textLength") or len(text) * 0.6 * fs)
        x, y = float(el.get("x")), float(el.get("y"))
        x0 = {"start": x, "middle": x - w / 2, "end": x - w}[el.get("text-anchor", "start")]
        corners = [(x0, y - 0.8 * fs), (x0 + w, y - 0.8 * fs), (x0, y + 0.2 * fs), (x0 + w, y + 0.2 * fs)]
        rot = el.get("transform", "")
        if rot.startswith("rotate("):
            a, cx, cy = (float(v) for v in rot[7:-1].split())
            c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
            corners = [(cx + (px - cx) * c - (py - cy) * s, cy + (px - cx) * s + (py - cy) * c) for px, py in corners]
        xs, ys = [p[0] for p in corners], [p[1] for p in corners]
        out.append((text, (min(xs), min(ys), max(xs), max(ys))))
    return out


def _overlaps(boxes):
    found = []
    for i, (ta, a) in enumerate(boxes):
        for tb, b in boxes[i + 1:]:
            if a[0] < b[2] - 1 and b[0] < a[2] - 1 and a[1] < b[3] - 1 and b[1] < a[3] - 1:
                found.append((ta, tb))
    return found


@pytest.mark.parametrize("name", ["lost-final-ack", "simultaneous-open", "simultaneous-close", "handshake"])
def test_no_two_labels_of_the_time_scaled_ladder_overlap(name):
    r = SCENARIOS[name].run(1, None, [])
    root = ET.fromstring(ladder_svg(r.events, "client", "server", name, timed=True))
    assert _overlaps(_boxes(root)) == []


def _distance(px, py, x1, y1, x2, y2) -> float:
    dx, dy = x2 - x1, y2 - y1
    k = max(0.0, min(1.0, ((px - x1) * dx + (py - y1) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (x1 + k * dx), py - (y1 + k * dy))


def test_the_lost_acks_x_lands_where_it_would_have_arrived_not_on_the_fin_sent_again():
    r = SCENARIOS["lost-final-ack"].run(1, None, [])
    root = ET.fromstring(ladder_svg(r.events, "client", "server", timed=True))
    steps = root.findall(f".//{SVG}g[@class='step']")
    lost = [g for g in steps if "(lost)" in "".join(g.itertext())]
    assert len(lost) == 1
    dashed = lost[0].find(f"{SVG}line")
    x1, y1, xe, ye = (float(dashed.get(a)) for a in ("x1", "y1", "x2", "y2"))
    arrows = [[float(line.get(a)) for a in ("x1", "y1", "x2", "y2")] for line in root.iter(f"{SVG}line")
              if line.get("class") == "arrow"]
    assert min(_distance(xe, ye, *a) for a in arrows) > 8  # the X is on no other arrow
    # it slopes as the ACK that did arrive, sent 0.22 s later in answer to the FIN sent again
    arrived = [a for a in arrows if a[0] == x1 and a[1] > y1][-1]
    assert (ye - y1) / (xe - x1) == pytest.approx((arrived[3] - arrived[1]) / (arrived[2] - arrived[0]), rel=0.05)
