"""`tcpwave trace --summary [--json] [--interval S]`: the numbers of each chosen connection."""

import datetime
import json

from ..views.summary import as_json, intervals, render, render_intervals, summarize


def _wall(t: float) -> dict:
    """A capture's time as Unix seconds and ISO 8601; a simulation's virtual clock (a demo's event log,
    starting near 0) has no wall-clock time: iso is null."""
    virtual = t < 1e8
    return {"unix": None if virtual else t, "seconds": t,
            "iso": None if virtual else datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat()}


def print_summary(args, views: list, absolute: list, chosen, warnings: list[str]) -> None:
    """views: times from the capture's first packet; absolute: the same with the capture's own clock."""
    t0 = min(v.start for v in absolute)
    docs = []
    for n in chosen:
        v, a = views[n - 1], absolute[n - 1]
        s = summarize(v.events, v.left, v.right)
        rows = intervals(v.events, v.left, v.right, args.interval) if args.interval else None
        if args.json:
            doc = {"connection": n, "left": v.left, "right": v.right, "start": _wall(a.start), "end": _wall(a.end),
                   "directions": as_json(s)}
            if rows is not None:
                doc["intervals"] = rows
            docs.append(doc)
            continue
        print(f"# connection {n}: {v.title}\n{render(s)}")
        if rows is not None:
            print(render_intervals(rows, v.left, v.right))
    if args.json:
        print(json.dumps({"capture": {"path": args.input, "first_packet": _wall(t0), "warnings": warnings},
                          "connections": docs}, indent=1))
