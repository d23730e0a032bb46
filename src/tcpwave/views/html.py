"""One self-contained HTML report: per connection the SVG ladder with a step-through control (the
current segment highlighted, both endpoints' states updating as you step), the RFC 9293 state diagram
with the current states outlined, the state timeline, the PNG plots and the Mermaid source.

Nothing is fetched from anywhere: SVG is inline, PNGs are data: URLs, the script is in the page.
"""

import base64
import json
import os
import tempfile
from xml.sax.saxutils import escape

from .diagrams import mermaid, timeline
from .explain import state_notes, state_text
from .infer import ConnectionView
from .svg import BOTH, COLORS, ladder_steps, ladder_svg, node_for, state_svg

STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 1.5em; color: #222; }
section.conn { border-top: 2px solid #ddd; padding-top: 1em; margin-top: 1.5em; }
.controls { position: sticky; top: 0; background: #fafafa; border: 1px solid #ddd; padding: .6em;
            z-index: 2; display: flex; gap: .6em; align-items: center; flex-wrap: wrap; }
.controls button { font-size: 1em; padding: .2em .8em; }
.now { font-family: monospace; }
.cur { display: inline-block; min-width: 11em; padding: .2em .6em; border-radius: 6px; color: white;
       font-weight: bold; text-align: center; }
.views { display: grid; grid-template-columns: minmax(0, 6fr) minmax(0, 5fr); gap: 1em; align-items: start; }
.views > div > svg, .views > div > div > svg { width: 100%%; height: auto; }
.views .statecol { position: sticky; top: 4.5em; }
@media (max-width: 900px) { .views { grid-template-columns: minmax(0, 1fr); } }
/* in the report the state diagram grows with the steps: what is not reached yet stays plain */
svg.states g.edge.taken:not(.reached) path { stroke: #bbb; stroke-width: 1; }
svg.states g.edge.taken:not(.reached) text { fill: #666; font-weight: normal; }
/* ...and a transition is coloured by the endpoints that took it up to this step, not by the whole run */
svg.states g.edge.reached.by-0 path { stroke: %s; marker-end: url(#st1); }
svg.states g.edge.reached.by-0 text { fill: %s; }
svg.states g.edge.reached.by-1 path { stroke: %s; marker-end: url(#st2); }
svg.states g.edge.reached.by-1 text { fill: %s; }
svg.states g.edge.reached.by-0.by-1 path { stroke: %s; marker-end: url(#st3); }
svg.states g.edge.reached.by-0.by-1 text { fill: %s; }
svg.states g.state.seen:not(.reached) rect { fill: #ffffff; }
svg.ladder g.step { transition: opacity .15s; }
svg.ladder g.step.future { opacity: .18; }
svg.ladder g.step.current text, svg.ladder g.step.current line { font-weight: bold; stroke-width: 3; }
svg.states g.state.here-0 rect { stroke: %s; stroke-width: 5; }
svg.states g.state.here-1 rect { stroke: %s; stroke-width: 5; }
svg.states g.state.here-0.here-1 rect { stroke: #9467bd; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; }
img.plot { max-width: 100%%; border: 1px solid #eee; }
""" % (COLORS[0], COLORS[0], COLORS[1], COLORS[1], BOTH, BOTH, *COLORS)

SCRIPT = """
window.tcpwaveSteps = function (sec) {  // one connection's step-through (the lab calls it on each new run)
  var steps = JSON.parse(sec.querySelector('script.steps').textContent);
  var rows = sec.querySelectorAll('svg.ladder:not(.timed) g.step');
  var trows = sec.querySelectorAll('svg.ladder.timed g.step');  // the time-scaled ladder's, same order
  var slider = sec.querySelector('input.slider');
  var svg = sec.querySelector('svg.ladder:not(.timed)');
  var W = +svg.getAttribute('width'), H = +svg.getAttribute('height');
  var TOP = +svg.dataset.top, ROW = +svg.dataset.row;
  var pager = sec.querySelector('.pager');
  var size = pager ? +pager.querySelector('select').value : 0;  // rows per page; 0: the whole ladder
  var page = -1;
  var pos = -1;
  var reached = {};  // edge or state id -> how many steps up to here reached it
  var bySide = {};  // edge id -> [by the left endpoint, by the right] up to here
  steps.length = steps.rows.length;
  function reach(id, by) {
    reached[id] = (reached[id] || 0) + by;
    var g = sec.querySelector('svg.states #' + id);
    if (g) g.classList.toggle('reached', reached[id] > 0);
    return g;
  }
  function passRow(k, by) {  // stepping over row k, forward (+1) or back (-1)
    var r = steps.rows[k];
    if (r.edge) {
      var g = reach(r.edge, by), n = bySide[r.edge] = bySide[r.edge] || [0, 0];
      n[r.side] += by;
      if (g) [0, 1].forEach(function (s) { g.classList.toggle('by-' + s, n[s] > 0); });
      r.nodes.forEach(function (n) { reach('state-' + n, by); });
    }
  }
  rows.forEach(function (g) { g.classList.add('future'); });
  trows.forEach(function (g) { g.classList.add('future'); });
  var scaled = sec.querySelector('input.timed');
  scaled.onchange = function () {
    sec.querySelector('.ladder-rows').style.display = scaled.checked ? 'none' : '';
    sec.querySelector('.ladder-timed').style.display = scaled.checked ? '' : 'none';
  };
  function pages() { return size ? Math.max(1, Math.ceil(rows.length / size)) : 1; }
  function showPage(p) {  // crop the ladder to rows [p * size, (p + 1) * size): only the viewBox changes
    if (!pager) return;
    page = Math.max(0, Math.min(pages() - 1, p));
    var first = page * size, end = size ? Math.min(rows.length, first + size) : rows.length;
    var y0 = page === 0 || !size ? 0 : TOP + ROW * first - ROW;
    var y1 = size ? Math.min(H, TOP + ROW * end + 4) : H;
    svg.setAttribute('viewBox', '0 ' + y0 + ' ' + W + ' ' + (y1 - y0));
    svg.setAttribute('height', y1 - y0);
    pager.querySelector('.pglabel').textContent = size
      ? 'rows ' + (first + 1) + '–' + end + ' of ' + rows.length + ' (page ' + (page + 1) + '/' + pages() + ')'
      : 'all ' + rows.length + ' rows';
  }
  function show(i) {  // only the rows between the old and the new position change: smooth on long ladders
    var old = pos;
    pos = Math.max(-1, Math.min(steps.length - 1, i));
    for (var k = Math.min(old, pos) + 1; k <= Math.max(old, pos); k++) {
      rows[k].classList.toggle('future', k > pos);
      if (trows[k]) trows[k].classList.toggle('future', k > pos);
      passRow(k, pos > old ? 1 : -1);
    }
    if (old >= 0 && rows[old]) rows[old].classList.remove('current');
    if (old >= 0 && trows[old]) trows[old].classList.remove('current');
    if (pos >= 0) rows[pos].classList.add('current');
    if (pos >= 0 && trows[pos]) trows[pos].classList.add('current');
    var st = pos < 0 ? steps.initial : steps.rows[pos];
    [0, 1].forEach(function (side) {
      sec.querySelector('.cur-' + side).textContent = st.states[side];
      sec.querySelectorAll('svg.states g.state.here-' + side).forEach(function (g) {
        g.classList.remove('here-' + side);
      });
      var node = sec.querySelector('svg.states #state-' + st.nodes[side]);
      if (node) node.classList.add('here-' + side);
    });
    sec.querySelector('.now').textContent = pos < 0 ? 'before the first segment'
      : 'step ' + (pos + 1) + '/' + steps.length + ' at ' + st.t.toFixed(6) + ' s: ' + st.what;
    slider.value = pos + 1;
    if (size && Math.floor(Math.max(pos, 0) / size) !== page) showPage(Math.floor(Math.max(pos, 0) / size));
    if (pos >= 0 && rows[pos] && sec.classList.contains('focus')) rows[pos].scrollIntoView({block: 'nearest'});
    sec.dispatchEvent(new CustomEvent('step', {detail: pos}));
  }
  sec.querySelector('button.first').onclick = function () { show(-1); };
  sec.querySelector('button.prev').onclick = function () { show(pos - 1); };
  sec.querySelector('button.next').onclick = function () { show(pos + 1); };
  sec.querySelector('button.last').onclick = function () { show(steps.length - 1); };
  slider.max = steps.length;
  slider.oninput = function () { show(parseInt(slider.value, 10) - 1); };
  if (pager) {
    pager.querySelector('button.pgprev').onclick = function () { showPage(page - 1); };
    pager.querySelector('button.pgnext').onclick = function () { showPage(page + 1); };
    pager.querySelector('select').onchange = function () {
      size = +this.value;
      showPage(size ? Math.floor(Math.max(pos, 0) / size) : 0);
    };
    showPage(0);
  }
  function focus() {
    document.querySelectorAll('section.conn').forEach(function (s) { s.classList.remove('focus'); });
    sec.classList.add('focus');
  }
  sec.addEventListener('click', focus);
  sec.addEventListener('focusin', focus);  // (the keyboard's way in)
  steps.initial.nodes.forEach(function (n) { reach('state-' + n, 1); });
  show(-1);
  return {show: show, pos: function () { return pos; }};
};
if (!window.tcpwaveLab) document.querySelectorAll('section.conn').forEach(window.tcpwaveSteps);  // (the lab: its own)
document.addEventListener('keydown', function (ev) {
  var sec = document.querySelector('section.conn.focus') || document.querySelector('section.conn');
  if (!sec || (ev.target.closest && ev.target.closest('input:not([type=checkbox]), select, textarea'))) return;
  if (ev.key === 'ArrowRight' || ev.key === 'n') sec.querySelector('button.next').click();
  if (ev.key === 'ArrowLeft' || ev.key === 'p') sec.querySelector('button.prev').click();
});
"""


PAGED_ABOVE = 300  # a ladder with more rows than this is shown a page at a time
_PAGER = ("<span class='pager'><button class='pgprev'>◀ page</button><span class='pglabel'></span>"
          "<button class='pgnext'>page ▶</button><label>rows per page <select>"
          "<option value='100' selected>100</option><option value='250'>250</option>"
          "<option value='1000'>1000</option><option value='0'>all</option></select></label></span>")


def step_states(view: ConnectionView) -> dict:
    """What the page steps through: for each ladder row, both endpoints' states after it."""
    rows = ladder_steps(view.events, view.left, view.right)
    hosts = (view.left, view.right)
    said = state_notes(view.events)
    first: dict = {}
    for r in rows:
        if r["kind"] == "state":
            first.setdefault(r["host"], r["from"])
    states = [first.get(h, "CLOSED") for h in hosts]
    nodes = list(states)
    initial = {"states": list(states), "nodes": list(nodes)}
    out = []
    for r in rows:
        row: dict = {"t": r["t"]}
        if r["kind"] == "state":
            side = hosts.index(r["host"])
            states[side] = r["to"]
            nodes[side] = node_for(r["to"], r["from"])
            row["what"] = f"{r['host']}: {r['from']} → {r['to']} ({state_text(r)})"
            note = said.get((r["t"], r["host"], r["from"], r["to"]))
            if note:
                row["what"] += f". {note[0].upper()}{note[1:]}."
            row["edge"] = f"edge-{node_for(r['from'], None)}-{nodes[side]}"  # reached at this step...
            row["side"] = side  # ...by this endpoint
        else:
            row["what"] = f"{r['host']}: {r['label']}" + (" (lost)" if r.get("lost") else "")
        row["states"], row["nodes"] = list(states), list(nodes)
        out.append(row)
    return {"initial": initial, "rows": out}


def _png(draw) -> str:
    fd, path = tempfile.mkstemp(suffix=".png")
    os.close(fd)
    try:
        draw(path)
        with open(path, "rb") as f:
            return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")
    finally:
        os.unlink(path)


def _plots(view: ConnectionView) -> list[tuple[str, str]]:
    try:
        from . import plots
    except ImportError:  # pragma: no cover
        return []
    from .kernel_plot import kernel_cc_plot, kernel_hosts

    sender = plots.data_sender(view.events, view.left, view.right)
    try:
        kernel = [(f"{h}: cwnd and srtt as the kernel keeps them (tcp:tcp_probe)",
                   _png(lambda p, h=h: kernel_cc_plot(view.events, h, p))) for h in kernel_hosts(view.events)]
    except RuntimeError:
        return []
    if not any(e["type"] == "send" and e["len"] for e in view.events):
        return kernel
    try:
        return kernel + [(f"time-sequence graph ({sender} → receiver)",
                 _png(lambda p: plots.time_sequence(view.events, view.left, view.right, p, sender))),
                (f"{sender}: cwnd, RTT, RTO", _png(lambda p: plots.cc_plots(view.events, sender, p)))]
    except RuntimeError:  # no matplotlib: the report goes without plots
        return []


def report(views: list[ConnectionView], title: str, msl: float = 30.0, plots: bool = True) -> str:
    parts = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
             f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{escape(title)}</h1>",
             "<p>Step through each connection with the buttons, the slider or the ← → keys: the segment is "
             "highlighted on the ladder and each endpoint's state is shown and outlined on the state diagram.</p>"]
    if len(views) > 1:  # across the connections: a pile-up in one state shows at a glance
        from .census import census, census_svg

        parts.append("<section class='census'><h2>State census</h2><p>Endpoints in each state at the end of each "
                     f"second (TIME_WAIT counted for 2×MSL, MSL {msl:g} s).</p>{census_svg(census(views, msl))}"
                     "</section>")
    for n, v in enumerate(views, 1):
        parts += section(v, n, msl, plots)
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def section(v: ConnectionView, n: int, msl: float = 30.0, plots: bool = True, beside: str = "") -> list[str]:
    """One connection's part of the page: the controls, both ladders, the state diagram (and
    `beside` it, under it), the timeline (and the plots); the page's script (SCRIPT) steps through it."""
    parts: list[str] = []
    steps = step_states(v)
    segments = sum(1 for e in v.events if e["type"] == "send")
    parts.append(f"<section class='conn' id='conn-{n}'><h2>{n}. {escape(v.title)}</h2>")
    parts.append(f"<p>{segments} segments, {v.start:.6f} – {v.end:.6f} s</p>")
    parts.append(
        "<div class='controls'><button class='first' title='before the first segment'>first</button>"
        "<button class='prev'>◀ previous</button><button class='next'>next ▶</button>"
        "<button class='last'>last</button><input class='slider' type='range' min='0' value='0'>"
        f"<span class='cur cur-0' style='background:{COLORS[0]}'></span>"
        f"<span class='cur cur-1' style='background:{COLORS[1]}'></span>"
        "<label><input type='checkbox' class='timed'> time-scaled</label>"
        "<span class='now'></span>" + (_PAGER if len(steps["rows"]) > PAGED_ABOVE else "") + "</div>")
    parts.append(f"<script type='application/json' class='steps'>{script_json(steps)}</script>")
    parts.append("<div class='views'><div><div class='ladder-rows'>")
    parts.append(ladder_svg(v.events, v.left, v.right))
    parts.append("</div><div class='ladder-timed' style='display:none'>")
    parts.append(ladder_svg(v.events, v.left, v.right, timed=True))
    parts.append("</div></div><div class='statecol'>")
    parts.append(state_svg(v.events, [v.left, v.right]) + beside)
    parts.append("</div></div>")
    parts.append(f"<h3>State timeline</h3><pre>{escape(timeline(v.events, [v.left, v.right], v.end, msl))}</pre>")
    if plots:
        for caption, url in _plots(v):
            parts.append(f"<h3>{escape(caption)}</h3><img class='plot' alt='{escape(caption)}' src='{url}'>")
    parts.append("<details><summary>Mermaid source</summary>"
                 f"<pre>{escape(mermaid(v.events, v.left, v.right))}</pre></details></section>")
    return parts


def script_json(data) -> str:
    """JSON to put inside a <script> element."""
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
