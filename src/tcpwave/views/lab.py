"""`tcpwave lab`'s page: the HTML report's step-through (html.section, html.SCRIPT) for each
connection of a run, with every segment on the ladder a button that drops, delays or duplicates it
(the server reruns and the page swaps the run in), the knobs, the faults in force, each step's
explanation, and download links. Everything is in the page; it talks only to the lab's server.

Keyboard: Tab reaches the controls and every segment; Enter or Space acts on a segment; ← and →
step (the step follows the focus when it is on a segment)."""

from xml.sax.saxutils import escape

from .explain import notes, timer_text
from .html import SCRIPT, STYLE, script_json, section
from .infer import ConnectionView
from .svg import ladder_steps

_LAB_STYLE = """
form.setup { display: flex; flex-wrap: wrap; gap: .4em 1.2em; align-items: center; margin-bottom: .6em; }
form.setup fieldset { border: 1px solid #ddd; display: flex; gap: .8em; flex-wrap: wrap; align-items: center; }
.error { background: #fde8e8; border: 1px solid #c00000; padding: .5em; white-space: pre-wrap; }
.summary { display: flex; flex-wrap: wrap; gap: .3em 1.5em; align-items: baseline; }
.faults li { margin: .15em 0; }
.explain { border: 1px solid #ddd; background: #fcfcf5; padding: .5em .8em; margin-top: .6em; min-height: 4em; }
.explain p { margin: .2em 0; }
svg.ladder g.step.seg { cursor: pointer; }
svg.ladder g.step.seg:hover text, svg.ladder g.step.seg:focus text { text-decoration: underline; }
svg.ladder g.step.seg:focus { outline: 2px solid #ff9800; }
svg.ladder g.step.faulted text { fill: #c00000; font-style: italic; }
.busy { opacity: .5; }
/* one line, always: a step must not move the ladder under the pointer (the whole text is in .explain) */
.controls .now { flex: 1 1 100%; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
"""

_LAB_SCRIPT = """
(function () {
  var form = document.querySelector('form.setup'), box = document.getElementById('run');
  var err = document.querySelector('.error');
  function info() { return JSON.parse(box.querySelector('script.lab-run').textContent); }
  function query(faults) {  // the form and these faults as the URL's query
    var q = new URLSearchParams();
    q.append('scenario', form.scenario.value);
    if (form.seed.value !== '1') q.append('seed', form.seed.value);
    faults.forEach(function (f) { q.append(f[0], f[1]); });
    if (form.msl.value !== '') q.append('msl', form.msl.value);
    ['time_wait', 'delayed_ack', 'nagle', 'timestamps'].forEach(function (k) {
      if (!form[k].checked) q.append(k, 'off');
    });
    if (form.profile.value) q.append('profile', form.profile.value);
    return q.toString();
  }
  function setForm(s) {
    form.scenario.value = s.scenario; form.seed.value = s.seed; form.msl.value = s.msl === null ? '' : s.msl;
    ['time_wait', 'delayed_ack', 'nagle', 'timestamps'].forEach(function (k) { form[k].checked = s[k]; });
  }
  function load(qs, opts) {  // rerun: the server answers with the run's HTML, or a 400 and why
    opts = opts || {};
    box.classList.add('busy');
    return fetch('/run?' + qs).then(function (r) {
      return r.json().then(function (body) { return {ok: r.ok, body: body}; });
    }).then(function (x) {
      box.classList.remove('busy');
      if (!x.ok) { err.textContent = x.body.error; err.hidden = false; return; }
      err.hidden = true;
      box.innerHTML = x.body.html;
      var now = '?' + x.body.query;
      if (opts.history !== false && now !== location.search) history.pushState(null, '', '/' + now);
      setForm(x.body.state);
      start(opts.focus);
    }).catch(function (e) {  // the lab stopped, or it is busy (503)
      box.classList.remove('busy');
      err.textContent = 'the lab did not answer: ' + e;
      err.hidden = false;
    });
  }
  function act(spec) {  // a segment clicked: apply the chosen action to it, or take its fault off
    var action = form.querySelector('input[name=action]:checked').value;
    var faults = info().faults, kept = faults.filter(function (f) { return base(f[1]) !== spec; });
    var had = faults.filter(function (f) { return base(f[1]) === spec; })[0];
    if (!had || had[0] !== action) kept.push([action, action === 'delay' ? spec + '=' + form.delay.value : spec]);
    load(query(kept), {focus: spec});
  }
  function base(spec) { return spec.split('=')[0]; }
  function start(focus) {
    box.querySelectorAll('section.conn').forEach(function (sec) {
      var ctl = window.tcpwaveSteps(sec);
      var rows = JSON.parse(sec.querySelector('script.lab-rows').textContent);
      var text = sec.querySelector('.explain');
      sec.addEventListener('step', function (ev) {
        var k = ev.detail, lines = k < 0 ? [] : rows[k].explain;
        text.innerHTML = '';
        var head = document.createElement('p');
        head.textContent = sec.querySelector('.now').textContent;
        text.appendChild(head);
        lines.forEach(function (line) {
          var p = document.createElement('p'); p.textContent = line; text.appendChild(p);
        });
        var g = sec.querySelector('svg.ladder:not(.timed) g.step[data-step="' + k + '"]');
        var here = document.activeElement;
        if (g && g.classList.contains('seg') && here && here.closest && here.closest('svg.ladder') &&
            sec.contains(here) && here !== g) g.focus();
      });
      sec.querySelectorAll('svg.ladder g.step').forEach(function (g) {
        var k = +g.dataset.step, row = rows[k];
        if (!row.spec) return;
        g.classList.add('seg');
        var b = g.getBBox(), hit = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
        hit.setAttribute('class', 'hit');  // the whole row takes the click, not just its strokes
        [['x', 0], ['y', b.y], ['width', g.ownerSVGElement.getAttribute('width')], ['height', b.height],
         ['fill', 'transparent'], ['pointer-events', 'all']].forEach(function (a) { hit.setAttribute(a[0], a[1]); });
        g.insertBefore(hit, g.firstChild);
        if (row.mark) g.classList.add('faulted');
        g.setAttribute('tabindex', '0');
        g.setAttribute('role', 'button');
        g.setAttribute('aria-label', row.spec + (row.mark ? ' (' + row.mark + ')' : '') +
                       ': Enter drops, delays or duplicates it, as chosen above');
        g.addEventListener('click', function () { ctl.show(k); act(row.spec); });
        g.addEventListener('focus', function () { if (ctl.pos() !== k) ctl.show(k); });
        g.addEventListener('keydown', function (ev) {
          if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); act(row.spec); }
        });
      });
      var k = focus ? rows.findIndex(function (r) { return r.spec === focus; }) : -1;
      ctl.show(k);
      if (k >= 0) sec.querySelector('svg.ladder:not(.timed) g.step[data-step="' + k + '"]').focus();
      focus = null;  // (the first connection that has it)
    });
    box.querySelectorAll('button.unfault').forEach(function (b) {
      b.onclick = function () {
        var faults = info().faults; faults.splice(+b.dataset.i, 1); load(query(faults));
      };
    });
    var clear = box.querySelector('button.clear');
    if (clear) clear.onclick = function () { load(query([])); };
  }
  form.addEventListener('submit', function (ev) { ev.preventDefault(); load(query(info().faults)); });
  form.addEventListener('change', function (ev) {
    if (ev.target.name === 'action' || ev.target.name === 'delay') return;  // (used at the next click)
    load(query(ev.target.name === 'scenario' ? [] : info().faults));  // a new scenario starts unfaulted
  });
  window.addEventListener('popstate', function () { load(location.search.slice(1), {history: false}); });
  if (box.querySelector('section.conn')) start(null);
})();
"""


def explanations(events: list[dict], left: str, right: str, msl: float = 30.0) -> list[list[str]]:
    """Per ladder row, what --explain says under it: the notes on its event (a state change's are in
    its own words already) and the timers and wire faults that follow it, up to the next row."""
    rows = ladder_steps(events, left, right)
    said = notes(events, msl)
    out: list[list[str]] = [[] for _ in rows]
    first = {r["event"]: k for k, r in enumerate(rows)}
    k = 0
    for i, e in enumerate(events):
        k = first.get(i, k)
        if not rows or e.get("host") not in (left, right):
            continue
        text = None
        if e["type"] == "timer":
            text = timer_text(e)
            text = text and f"{e['host']}: {text}"
        elif e["type"] == "link":
            text = f"{e['host']}'s segment on the wire: {e.get('reason')} (a fault)"
        elif e["type"] == "drop" and e.get("where") == "link":
            text = f"{e['host']}'s segment lost on the wire ({e.get('reason')})"
        if text:
            out[k].append(text)
        if i in said and e["type"] != "state":
            out[k].append(f"note: {said[i]}")
    return out


def fragment(views: list[ConnectionView], titles: list[str], names: list[list[str | None]],
             marks: dict[str, str], run: dict, msl: float) -> str:
    """The run's part of the page. names: per view, per ladder row, the segment's SPEC (None: not a
    segment); marks: SPEC -> the fault on it; run: query, state, faults, said, checks, closed, end,
    stem (export file names)."""
    q = escape(run["query"], {"'": "&apos;"})
    parts = [f"<script type='application/json' class='lab-run'>{script_json(run)}</script>",
             "<div class='summary'>",
             f"<p>virtual time {run['end']:.3f} s; closed: "
             + escape(", ".join(f"{h} {r}" for h, r in sorted(run["closed"].items())) or "—") + "</p>",
             "<p>checks: " + escape(", ".join(f"{'ok' if ok else 'FAILED'} {n}" for n, ok in run["checks"].items())
                                   or "—") + "</p>",
             f"<p>download: <a download href='/export/{run['stem']}.pcapng?{q}'>pcapng</a> · "
             f"<a download href='/export/{run['stem']}.svg?{q}'>SVG ladder</a> · "
             f"<a download href='/export/{run['stem']}-states.svg?{q}'>SVG state diagram</a> · "
             f"<a download href='/export/{run['stem']}.html?{q}'>HTML report</a> · "
             f"<a class='share' href='/?{q}'>link to this run</a></p></div>"]
    if run["faults"]:
        parts.append("<p>faults (click the segment again to take one off):</p><ul class='faults'>")
        for i, (what, text) in enumerate(zip(run["said"], run["faults"], strict=True)):
            parts.append(f"<li>{escape(what)} <button type='button' class='unfault' data-i='{i}' "
                         f"aria-label='remove: {escape(' '.join(text), {chr(39): '&apos;'})}'>remove</button></li>")
        parts.append("</ul><p><button type='button' class='clear'>remove all faults</button></p>")
    else:
        parts.append("<p class='faults'>no faults: click a segment to drop, delay or duplicate it.</p>")
    for n, (v, title, row_names) in enumerate(zip(views, titles, names, strict=True), 1):
        if len(views) > 1:
            parts.append(f"<h2 class='runtitle'>run {n} of {len(views)}: {escape(title)}</h2>")
        rows = [{"spec": name, "mark": marks.get(name) if name else None, "explain": lines}
                for name, lines in zip(row_names, explanations(v.events, v.left, v.right, msl), strict=True)]
        beside = (f"<script type='application/json' class='lab-rows'>{script_json(rows)}</script>"
                  "<div class='explain' aria-live='polite'></div>")
        parts += section(v, n, msl, plots=False, beside=beside)
    return "\n".join(parts)


def page(offered: dict[str, str], state: dict, body: str, error: str = "", profiles: list[str] | None = None) -> str:
    """The whole page: the form (scenario, seed, knobs, what a click does), an error if any, the run."""
    def option(name: str) -> str:
        chosen = " selected" if name == state["scenario"] else ""
        return f"<option value='{escape(name)}'{chosen} title='{escape(offered[name], {chr(39): '&apos;'})}'>" \
               f"{escape(name)}</option>"

    def switch(name: str, label: str) -> str:
        on = " checked" if state[name] else ""
        return f"<label><input type='checkbox' name='{name}'{on}> {label}</label>"

    profile_options = "".join(f"<option>{escape(p)}</option>" for p in profiles or [])
    msl = "" if state["msl"] is None else f"{state['msl']:g}"
    return "\n".join([
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>tcpwave lab</title><style>{STYLE}{_LAB_STYLE}</style></head><body>",
        "<h1>tcpwave lab</h1>",
        "<p>Pick a scenario and step through it (buttons, slider, ← →). Click a segment on the ladder (or "
        "Tab to it and press Enter) to drop, delay or duplicate it: the simulator runs again, the same "
        "way every time, with that fault. The address bar holds the whole run: reload or share it.</p>",
        "<form class='setup' method='get' action='/'>",
        f"<label>scenario <select name='scenario'>{''.join(option(n) for n in offered)}</select></label>",
        f"<label>seed <input name='seed' type='number' min='0' value='{state['seed']}' size='6'></label>",
        "<fieldset><legend>knobs</legend>",
        f"<label>MSL <input name='msl' type='number' min='0.001' step='any' value='{msl}' placeholder='30' "
        "size='6'> s</label>",
        switch("time_wait", "TIME_WAIT (off: 2 ms)"), switch("delayed_ack", "delayed ACK"),
        switch("nagle", "Nagle"), switch("timestamps", "timestamps"),
        "<label>profile <select name='profile'" + ("" if profiles else " disabled") + ">"
        "<option value=''>" + ("none" if profiles else "none yet") + "</option>" + profile_options
        + "</select></label></fieldset>",
        "<fieldset><legend>a click on a segment</legend>"
        "<label><input type='radio' name='action' value='drop' checked> drops it</label>"
        "<label><input type='radio' name='action' value='delay'> delays it by</label>"
        "<label><input name='delay' type='number' min='0.001' max='60' step='any' value='0.5' size='4'"
        " aria-label='delay in seconds'> s</label>"
        "<label><input type='radio' name='action' value='dup'> duplicates it</label></fieldset>",
        "<button type='submit'>run</button></form>",
        f"<div class='error' role='alert'{'' if error else ' hidden'}>{escape(error)}</div>",
        f"<div id='run'>{body}</div>",
        f"<script>window.tcpwaveLab = true;{SCRIPT}</script><script>{_LAB_SCRIPT}</script></body></html>",
    ]) + "\n"
