#!/usr/bin/env python3
"""ai_table.py OUT SEED... — the table of `make ai-eval` (tools/train/ai-eval.sh) in Markdown.

City outcomes per arm come from each held-out day's report.json (the services' own timestamps,
read by the simulator's audit) and events.jsonl (pickup waits in city seconds); the intervals are
95% Student-t intervals over the seeds, and the change is the paired difference (models − rules)
per seed. The models' accuracy on the held-out days comes from antar-train --eval (heldout.json),
whose intervals are over the rows (bootstrap for the AUC)."""
import json
import math
import os
import re
import statistics
import sys

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228}


def ci(values):
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    m = statistics.fmean(values)
    if n < 2:
        return m, float("nan")
    return m, T975.get(n - 1, 1.96) * statistics.stdev(values) / math.sqrt(n)


def pct(p, xs):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, math.ceil(p * len(xs)) - 1))]


def day(out, seed, arm):
    d = os.path.join(out, f"eval-{seed}-{arm}")
    rep = json.load(open(os.path.join(d, "report.json")))
    waits = []
    speed = rep["run"]["speed"]
    offered, outcome = set(), {}
    with open(os.path.join(d, "events.jsonl")) as f:
        for line in f:
            if '"ev":"offer"' in line:
                offered.add(json.loads(line).get("order"))
                continue
            if '"ev":"order"' in line:
                e = json.loads(line)
                outcome[e.get("order")] = e.get("outcome")
                continue
            if '"ev":"trip"' not in line:
                continue
            e = json.loads(line)
            # a pickup the run's wind-down cut short is not a wait anybody had
            if e.get("pickup_sim_s", 0) > 0 and not e.get("pickup_cut"):
                waits.append(e["pickup_sim_s"] / 60.0)
    fl = rep["flow"]
    offers = fl["offers_accepted"] + fl["offers_rejected"] + fl["offers_lost"] + fl["offers_missed"]
    acc = rep["times"]["order_to_accepted_ms"]
    return {
        "pickup wait, mean (city min)": statistics.fmean(waits) if waits else float("nan"),
        "pickup wait, p90 (city min)": pct(0.9, waits),
        "order → accepted, p50 (city min)": acc["p50"] / 1000 * speed / 60,
        "order → accepted, p90 (city min)": acc["p90"] / 1000 * speed / 60,
        "offers per order": offers / max(1, fl["orders_acked"]),
        # A customer in the city cancels only while no driver has accepted (docs/simulator.md):
        # an order that expired and one its customer gave up on were both never served.
        "unfulfilled: no driver came (expired + given up) % (of acknowledged)":
            100 * (fl["unfulfilled_rate"] + fl["cancel_rate"]),
        "of which expired % (of acknowledged)": 100 * fl["unfulfilled_rate"],
        "of which given up while searching (cancelled) % (of acknowledged)":
            100 * fl["cancel_rate"],
        "unserved orders never offered to any driver % (of recorded orders)":
            100 * sum(1 for o, st in outcome.items() if st in ("cancelled", "expired") and
                      o not in offered) / max(1, len(outcome)),
        "completed % (of acknowledged)": 100 * fl["completion_rate"],
        "declined on price (of offered) %": 100 * fl["declined_on_price"] / max(1, fl["orders_offered"]),
        "orders acknowledged": fl["orders_acked"],
        "trips completed": fl["completed"],
        "trips completed (of offered) %": 100 * fl["completed"] / max(1, fl["orders_offered"]),
        "where-to-wait hints followed (a drive to another cell)": fl.get("hints_followed", 0),
    }


def fmt(m, h, digits=2):
    if math.isnan(h):
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {h:.{digits}f}"


ARMS = [("rules", "rules (nearest-first, counter surge)"),
        ("models", "models (all three)"),
        ("dispatch", "models' ETA + dispatch, rule surge")]


def main():
    out, seeds = sys.argv[1], sys.argv[2:]
    arms = [(a, label) for a, label in ARMS
            if all(os.path.exists(os.path.join(out, f"eval-{s}-{a}", "report.json")) for s in seeds)]
    rows = {a: [day(out, s, a) for s in seeds] for a, _ in arms}
    keys = list(rows["rules"][0].keys())
    print(f"### In the city: {len(seeds)} held-out days (seeds {', '.join(seeds)}), same seeds "
          "in every arm\n")
    head = "| measure | " + " | ".join(label for _, label in arms)
    head += "".join(f" | change: {a} − rules" for a, _ in arms if a != "rules") + " |"
    print(head)
    print("|---" * (1 + len(arms) + len(arms) - 1) + "|")
    for k in keys:
        cells = []
        for a, _ in arms:
            cells.append(fmt(*ci([x[k] for x in rows[a]])))
        r = [x[k] for x in rows["rules"]]
        for a, _ in arms:
            if a == "rules":
                continue
            m = [x[k] for x in rows[a]]
            dm, dh = ci([b - x for x, b in zip(r, m)])
            rm = statistics.fmean(r)
            rel = f" ({100 * dm / rm:+.0f}%)" if rm else ""
            cells.append(fmt(dm, dh) + rel)
        print(f"| {k} | " + " | ".join(cells) + " |")
    print("\n95% Student-t intervals over the seeds; a change is the arm − rules per seed (paired).\n")

    h = json.load(open(os.path.join(out, "heldout.json")))
    print("### The models on the held-out days (the rows of every arm)\n")
    print("| model | measure | model | baseline (today's rule) |")
    print("|---|---|---|---|")

    def c(x, d=2):
        return f"{x['mean']:.{d}f} [{x['ci95_lo']:.{d}f}, {x['ci95_hi']:.{d}f}] (n={x['n']})"

    e = h.get("eta", {})
    if e:
        print(f"| ETA (legs: trips and pickups) | MAE, city s | {c(e['model_mae_s'], 0)} | "
              f"{c(e['rule_mae_s'], 0)} |")
        print(f"| | MAPE % | {c(e['model_mape_pct'], 1)} | {c(e['rule_mape_pct'], 1)} |")
    a = h.get("accept", {})
    if a:
        print(f"| acceptance | AUC | {c(a['auc'], 3)} | 0.5 (the rule has no probability) |")
        print(f"| | calibration error (ECE) | {a['calibration']['ece']:.3f} | — |")
    d = h.get("demand", {})
    if d:
        print(f"| demand, next 15 min per cell | MAE, orders | {c(d['model_mae_orders'], 2)} | "
              f"seasonal naive {c(d['seasonal_naive_mae_orders'], 2)} |")
    if a:
        print("\nCalibration (held-out offers): " + ", ".join(
            f"{b['predicted']:.2f}→{b['observed']:.2f} (n={b['n']})" for b in a["calibration"]["bins"]))

    lat = {}
    for s in seeds:
        p = os.path.join(out, f"eval-{s}-models", "core-ai-metrics.txt")
        if not os.path.exists(p):
            continue
        for line in open(p):
            mt = re.match(r'antar_ai_added_latency_seconds\{path="(\w+)",quantile="([\d.]+)"\} (\S+)',
                          line)
            if mt:
                lat.setdefault((mt.group(1), mt.group(2)), []).append(float(mt.group(3)))
    if lat:
        print("\n### Added latency per request in core (models arm, last 4,096 requests per day)\n")
        print("| path | p50 ms | p90 ms | p99 ms (worst day) |")
        print("|---|---|---|---|")
        # dispatch_redis: the candidates' read, which replaces the rule's search (docs/ai.md).
        for path in ("estimate", "dispatch", "dispatch_redis"):
            if (path, "0.5") not in lat:
                continue
            q = [statistics.fmean(lat.get((path, k), [float("nan")])) * 1000 for k in ("0.5", "0.9")]
            worst = max(lat.get((path, "0.99"), [float("nan")])) * 1000
            print(f"| {path} | {q[0]:.3f} | {q[1]:.3f} | {worst:.3f} |")


if __name__ == "__main__":
    main()
