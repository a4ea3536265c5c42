#!/usr/bin/env python3
"""Ratios per scenario against the targets of issue 13, from one run of the shared harness.

Reads the raw records that `run_compare.sh` wrote (results.jsonl files, copied into
bench/results/<run>/), takes the median of each metric over the repeats as the harness's
own table does, and writes an SVG bar chart (one bar per target: the measured ratio, a tick
at the target, green when met) plus a Markdown table of the same figures on stdout.

    python3 scripts/bench_chart.py bench/results/2026-12-02 [--out BENCHMARKS.svg]

Files read in the run folder (missing ones are left out of the chart):
    main.jsonl       REPEAT=3, 64-byte content, all scenarios, actix-wsc + gohub + nodehub
    size1024.jsonl   the same with SIZE=1024 (p2p, p2p_half, broadcast, echo)
    bcast5000.jsonl  broadcast with BCAST_SUBS=5000
    plain.jsonl, ack.jsonl   actix-wsc p2p without / with the loadgen's --require-ack
    offline.txt      `cargo bench --bench wsc -- offline` output (store and bare SQLite rates)
    transport.jsonl  the same binary on its raw transport (actix-wsc) and on actix-web's
                     route (server "base", WSC_WS_TRANSPORT=actix-web): a table, not a target
Python 3 standard library only.
"""

import json
import os
import re
import sys

SUBJECT = "actix-wsc"
PEERS = ("gohub", "nodehub")


def load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def median(vals):
    vals = sorted(v for v in vals if isinstance(v, (int, float)))
    if not vals:
        return None
    n = len(vals)
    return vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2


def metrics(r):
    """The figures of one run, as tools/harness.py computes them."""
    lg = r.get("loadgen") or {}
    sm = r.get("server_stats") or {}
    lat = lg.get("lat_us") or {}
    m = {"p99_ms": lat.get("p99") and lat["p99"] / 1000}
    if r["scenario"] == "idle":
        held = sm.get("hold_conns") or lg.get("connected") or 0
        if sm.get("rss_hold_kb") is not None and held:
            m["kib_per_conn"] = (sm["rss_hold_kb"] - sm["rss_base_kb"]) / held
    else:
        m["thr"] = lg.get("delivered_per_s")
        if sm.get("measure_cpu_s") is not None and m["thr"]:
            m["us_per_msg"] = sm["measure_cpu_s"] / (m["thr"] * sm["measure_wall_s"]) * 1e6
    return m


def medians(rows):
    """{(scenario, server): {metric: median}}"""
    groups = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["server"]), []).append(metrics(r))
    out = {}
    for k, ms in groups.items():
        keys = {key for m in ms for key in m}
        out[k] = {key: median([m.get(key) for m in ms]) for key in keys}
    return out


def get(by, sc, server, key):
    return (by.get((sc, server)) or {}).get(key)


def best_peer(by, sc, key, lower=True):
    vals = [(get(by, sc, p, key), p) for p in PEERS if get(by, sc, p, key)]
    if not vals:
        return None, None
    return (min if lower else max)(vals)


def targets(run_dir):
    """[(label, measured ratio, target ratio, 'le'|'ge', detail)]"""
    out = []

    def section(rows, tag):
        by = medians(rows)
        if not by:
            return
        # p2p_half p99 <= 0.5x the best peer's
        peer_p99, peer = best_peer(by, "p2p_half", "p99_ms")
        s = get(by, "p2p_half", SUBJECT, "p99_ms")
        if s and peer_p99:
            out.append((f"p2p_half p99 vs best peer {tag}", s / peer_p99, 0.5, "le",
                        f"{s:.2f} ms vs {peer} {peer_p99:.2f} ms"))
        g = get(by, "p2p", "gohub", "us_per_msg")
        s = get(by, "p2p", SUBJECT, "us_per_msg")
        if s and g:
            out.append((f"p2p CPU/msg vs gohub {tag}", s / g, 0.35, "le",
                        f"{s:.2f} us vs {g:.2f} us"))
        peer_thr, peer = best_peer(by, "p2p", "thr", lower=False)
        s = get(by, "p2p", SUBJECT, "thr")
        if s and peer_thr:
            out.append((f"p2p throughput vs best peer {tag}", s / peer_thr, 1.0, "ge",
                        f"{s:,.0f} vs {peer} {peer_thr:,.0f} msg/s"))
        g = get(by, "broadcast", "gohub", "us_per_msg")
        s = get(by, "broadcast", SUBJECT, "us_per_msg")
        if s and g:
            out.append((f"broadcast CPU/delivery vs gohub {tag}", s / g, 0.5, "le",
                        f"{s:.2f} us vs {g:.2f} us"))
        peer_us, peer = best_peer(by, "echo", "us_per_msg")
        s = get(by, "echo", SUBJECT, "us_per_msg")
        if s and peer_us:
            out.append((f"echo CPU/rt vs best peer {tag}", s / peer_us, 0.5, "le",
                        f"{s:.2f} us vs {peer} {peer_us:.2f} us"))
        peer_kib, peer = best_peer(by, "idle", "kib_per_conn")
        s = get(by, "idle", SUBJECT, "kib_per_conn")
        if s and peer_kib:
            # the target is absolute (6 KiB per connection): its tick is 6 / the best peer's
            out.append((f"idle KiB/conn vs best peer {tag}", s / peer_kib, 6.0 / peer_kib, "le",
                        f"{s:.1f} KiB vs {peer} {peer_kib:.1f} KiB (target 6 KiB)"))

    section(load(os.path.join(run_dir, "main.jsonl")), "(64 B)")
    section(load(os.path.join(run_dir, "size1024.jsonl")), "(1 KiB)")
    by = medians(load(os.path.join(run_dir, "bcast5000.jsonl")))
    g, s = get(by, "broadcast", "gohub", "us_per_msg"), get(by, "broadcast", SUBJECT, "us_per_msg")
    if s and g:
        out.append(("broadcast 5000 CPU/delivery vs gohub", s / g, 0.5, "le",
                    f"{s:.2f} us vs {g:.2f} us"))
    plain = medians(load(os.path.join(run_dir, "plain.jsonl")))
    ack = medians(load(os.path.join(run_dir, "ack.jsonl")))
    p, a = get(plain, "p2p", SUBJECT, "thr"), get(ack, "p2p", SUBJECT, "thr")
    if p and a:
        out.append(("require_ack p2p vs plain p2p", a / p, 0.7, "ge",
                    f"{a:,.0f} vs {p:,.0f} msg/s"))
    off = os.path.join(run_dir, "offline.txt")
    if os.path.exists(off):
        text = open(off).read()
        st = [float(x) for x in re.findall(r"= (\d+) msg/s \(durable", text)]
        bare = [float(x) for x in re.findall(r"= (\d+) rows/s; store / bare", text)]
        # each round's own ratio (store and bare insert measured in the same process)
        ratios = [float(x) for x in re.findall(r"store / bare = ([\d.]+)", text)]
        if st and bare and ratios:
            s, b = median(st), median(bare)
            out.append(("offline store vs bare SQLite insert", median(ratios), 0.5, "ge",
                        f"{s:,.0f} vs {b:,.0f} rows/s (medians of {len(ratios)} rounds)"))
    return out


def transport_table(run_dir):
    """Markdown lines: raw transport against actix-web's route, same binary, same run."""
    by = medians(load(os.path.join(run_dir, "transport.jsonl")))
    if not by:
        return []
    lines = ["| scenario | figure | raw (actix-wsc) | actix-web route (base) | raw / route |",
             "|---|---|---|---|---|"]
    for sc in ("p2p", "p2p_half", "broadcast", "echo", "idle"):
        for key, name, fmt in (("thr", "throughput", "{:,.0f}"), ("p99_ms", "p99 ms", "{:.2f}"),
                               ("us_per_msg", "srv us/msg", "{:.2f}"),
                               ("kib_per_conn", "KiB/conn", "{:.1f}")):
            a, b = get(by, sc, SUBJECT, key), get(by, sc, "base", key)
            if a and b:
                lines.append(f"| {sc} | {name} | {fmt.format(a)} | {fmt.format(b)} | {a / b:.2f}x |")
    return lines


def svg(rows):
    row_h, left, width, top = 26, 330, 520, 40
    vmax = max([2.0] + [min(r[1], 4.0) * 1.1 for r in rows] + [r[2] * 1.2 for r in rows])
    height = top + row_h * len(rows) + 50
    x = lambda v: left + width * min(v, vmax) / vmax
    p = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 130}" height="{height}" '
         f'font-family="sans-serif" font-size="12">',
         f'<rect width="100%" height="100%" fill="white"/>',
         f'<text x="10" y="20" font-size="14" font-weight="bold">actix-wsc: ratio per target '
         f'(bar) and target (black tick); green = met</text>']
    step = 0.5 if vmax <= 4 else 1.0
    v = 0.0
    while v <= vmax + 1e-9:
        p.append(f'<line x1="{x(v):.1f}" y1="{top - 5}" x2="{x(v):.1f}" '
                 f'y2="{top + row_h * len(rows)}" stroke="#ddd"/>')
        p.append(f'<text x="{x(v):.1f}" y="{top + row_h * len(rows) + 15}" '
                 f'text-anchor="middle" fill="#555">{v:.1f}x</text>')
        v += step
    for i, (label, val, target, way, _detail) in enumerate(rows):
        y = top + i * row_h
        met = val <= target if way == "le" else val >= target
        colour = "#3a9a3a" if met else "#c84141"
        p.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{label}</text>')
        p.append(f'<rect x="{left}" y="{y + 5}" width="{x(val) - left:.1f}" height="{row_h - 10}" '
                 f'fill="{colour}"/>')
        p.append(f'<line x1="{x(target):.1f}" y1="{y + 1}" x2="{x(target):.1f}" y2="{y + row_h - 1}" '
                 f'stroke="black" stroke-width="3"/>')
        sign = "≤" if way == "le" else "≥"
        p.append(f'<text x="{x(max(val, target)) + 6:.1f}" y="{y + 16}">{val:.2f}x '
                 f'({sign}{target:.2f}x)</text>')
    p.append(f'<text x="10" y="{height - 10}" fill="#555">ratios: actix-wsc / peer from the same '
             f'run (REPEAT=3 medians); bars past {vmax:.1f}x are cut</text>')
    p.append("</svg>")
    return "\n".join(p) + "\n"


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    run_dir, out = argv[0], "BENCHMARKS.svg"
    if "--out" in argv:
        out = argv[argv.index("--out") + 1]
    rows = targets(run_dir)
    if not rows:
        print(f"no results under {run_dir}", file=sys.stderr)
        return 1
    with open(out, "w") as f:
        f.write(svg(rows))
    print("| target | measured | target | verdict | figures |")
    print("|---|---|---|---|---|")
    for label, val, target, way, detail in rows:
        met = val <= target if way == "le" else val >= target
        sign = "≤" if way == "le" else "≥"
        print(f"| {label} | {val:.2f}x | {sign} {target:.2f}x | {'met' if met else 'not met'} "
              f"| {detail} |")
    lines = transport_table(run_dir)
    if lines:
        print("\nTransport A/B (same binary):\n")
        print("\n".join(lines))
    print(f"\nchart: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
