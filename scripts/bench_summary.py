#!/usr/bin/env python3
"""Records and summarises the GPU benchmark of scripts/bench-gpu.sh (issue 7).

Each record is one JSON object on one line of results.jsonl:
  {"kind": "device" | "bandwidth" | "cuda_matmul" | "bench" | "kernels", "label": ..., "data": {...}}

Sub-commands (all read stdin and write stdout):
  device --info "NAME,DRIVER,MEMORY" --backend B   the record of the machine the run is on
  wrap --kind K --label L [--shape S --type T] [--lines]
                                 wrap one JSON document (or, with --lines, one JSON object a line)
  bandwidth                      read_bandwidth_gbs from bench_cuda_matmul's output
  kernels --label L --steps N    nsys's cuda_gpu_kern_sum CSV -> a record of per-kernel times
  summary                        results.jsonl -> the Markdown for docs/perf.md (with the
                                 bench --op-profile tables of the records that have one)
"""
import argparse
import csv
import datetime
import json
import sys


def emit(record):
    print(json.dumps(record, separators=(",", ":")))


def cmd_device(args):
    name, driver, memory = (list(part.strip() for part in args.info.split(",")) + ["", "", ""])[:3]
    emit({"kind": "device", "label": name, "data": {
        "name": name, "driver": driver, "memory": memory, "backend": args.backend,
        "date": datetime.date.today().isoformat()}})


def cmd_wrap(args):
    text = sys.stdin.read()
    documents = [json.loads(line) for line in text.splitlines() if line.strip()] if args.lines else [json.loads(text)]
    for data in documents:
        record = {"kind": args.kind, "label": args.label, "data": data}
        if args.shape:
            record["shape"] = args.shape
        if args.type:
            record["type"] = args.type
        emit(record)


def cmd_bandwidth(_args):
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("{"):
            data = json.loads(line)
            if "read_bandwidth_gbs" in data:
                print(data["read_bandwidth_gbs"])
                return
            if "skipped" in data:
                sys.exit("bench_summary: bench_cuda_matmul skipped: " + data["skipped"])
    sys.exit("bench_summary: no read_bandwidth_gbs line in bench_cuda_matmul's output")


def cmd_kernels(args):
    rows = []
    for raw in csv.DictReader(sys.stdin):
        row = {key.replace(" ", ""): value for key, value in raw.items() if key}  # "Time (%)" vs "Time(%)"
        total_ns = float(row.get("TotalTime(ns)", 0) or 0)
        rows.append({"kernel": row.get("Name", "?"), "calls": int(float(row.get("Instances", 0) or 0)),
                     "total_ms": total_ns / 1e6, "ms_per_decode_step": total_ns / 1e6 / args.steps,
                     "time_percent": float(row.get("Time(%)", 0) or 0)})
    emit({"kind": "kernels", "label": args.label,
          "data": {"note": "nsys over one bench decode run from an empty sequence, the warm-up step included", "steps": args.steps, "kernels": rows}})


def fmt(value, spec=".1f"):
    return "–" if value is None else format(value, spec)


def bench_rows(records):
    """One table row per (model, depth) bench record."""
    rows = []
    for r in records:
        d = r["data"]
        verify = d.get("verify") or {}
        widths = {w["positions"]: w["ratio_to_1_position"] for w in verify.get("widths", [])}
        roof = d.get("roofline") or {}
        proj = d.get("mtp_projection") or {}
        rows.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["label"], r.get("type", "?"), d.get("n_prompt"), fmt(d.get("prefill_tok_s")), d.get("depth_tokens"),
            fmt(d.get("decode_tok_s")), fmt(roof.get("bytes_per_token", 0) / 1e9 if roof else None, ".2f"),
            fmt(roof.get("decode_roofline_fraction", 0) * 100 if roof else None, ".0f") + ("%" if roof else ""),
            " / ".join(fmt(widths.get(k), ".2f") for k in (2, 3, 4)),
            fmt(verify.get("draft_to_plain_step_ratio"), ".3f"),
            fmt(proj.get("projected_decode_tok_s")),
            fmt(proj.get("projected_speedup_vs_plain"), ".2f")))
    return rows


def op_profile_table(rows, limit=25):
    """Markdown rows of a bench --op-profile table, largest time first, the rest summed."""
    print("| op | detail | calls | ms | % | GB/s |")
    print("|---|---|---:|---:|---:|---:|")
    rows = sorted(rows, key=lambda row: -row["ms"])
    for row in rows[:limit]:
        print(f"| {row['op']} | `{row['detail']}` | {row['calls']} | {row['ms']:.3f} | {100 * row['share']:.1f} | "
              f"{fmt(row.get('gbs'))} |")
    rest = rows[limit:]
    if rest:
        print(f"| (other) | {len(rest)} more rows | {sum(row['calls'] for row in rest)} | "
              f"{sum(row['ms'] for row in rest):.3f} | {100 * sum(row['share'] for row in rest):.1f} | – |")


def print_op_profile(record):
    d = record["data"]
    info = d.get("op_profile_info") or {}
    print()
    print(f"Per-operation time of one decode step, {record['label']} at depth {d.get('depth_tokens')} "
          f"(bench --op-profile, {info.get('timing', '?')}): {fmt(info.get('ops_ms'), '.3f')} ms in operations, "
          f"{fmt(info.get('wall_ms'), '.3f')} ms wall while profiled:")
    print()
    op_profile_table(d["op_profile"])
    verify = d.get("op_profile_verify")
    if verify:
        print()
        print(f"One verify pass of {verify['positions']} positions: {fmt(verify.get('ops_ms'), '.3f')} ms in "
              f"operations, {fmt(verify.get('wall_ms'), '.3f')} ms wall while profiled:")
        print()
        op_profile_table(verify["rows"])


def cmd_summary(_args):
    records = [json.loads(line) for line in sys.stdin if line.strip()]
    devices = [r for r in records if r["kind"] == "device"]
    device = devices[-1]["data"] if devices else {}
    bandwidth = [r for r in records if r["kind"] == "bandwidth"]
    gemv = [r["data"] for r in records if r["kind"] == "cuda_matmul"]
    read_gbs = next((g["read_bandwidth_gbs"] for g in gemv if "read_bandwidth_gbs" in g), None)
    if read_gbs is None and bandwidth:
        read_gbs = bandwidth[-1]["data"].get("read_bandwidth_gbs")
    print("### {} — {} (driver {}, {}), backend {}".format(
        device.get("date", "?"), device.get("name", "?"), device.get("driver", "?"), device.get("memory", "?"),
        device.get("backend", "?")))
    print()
    print("Measured read bandwidth: {} GB/s{}. Synthetic random-weight models (`make-synthetic`); "
          "MTP columns are PROJECTED from measured draft / verify step times at acceptance 0.8 / 0.6 / 0.45.".format(
              fmt(read_gbs), " (nominal, not measured)" if bandwidth and not gemv else ""))
    print()
    print("| model | type | prefill tokens | prefill tok/s | decode depth | decode tok/s | GB / token | "
          "of roofline | verify 2 / 3 / 4 vs 1 | draft / step | MTP-3 tok/s (proj.) | MTP-3 speedup (proj.) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for row in bench_rows([r for r in records if r["kind"] == "bench"]):
        print(row)
    timed = [g for g in gemv if "weight_gbs" in g]
    if timed:
        print()
        print("GEMV (bench_cuda_matmul), fraction of read bandwidth, mean over the 4 matrices:")
        print()
        types = sorted({g["type"] for g in timed})
        print("| type | " + " | ".join(f"{n} row{'s' if n > 1 else ''}" for n in range(1, 10)) + " |")
        print("|---|" + "---:|" * 9)
        for t in types:
            cells = []
            for n in range(1, 10):
                v = [g["read_bw_fraction"] for g in timed if g["type"] == t and g["tokens"] == n]
                cells.append(fmt(100 * sum(v) / len(v), ".0f") + "%" if v else "–")
            print(f"| {t} | " + " | ".join(cells) + " |")
    for r in (r for r in records if r["kind"] == "bench" and r["data"].get("op_profile")):
        print_op_profile(r)
    for r in (r for r in records if r["kind"] == "kernels"):
        print()
        kernels = r["data"].get("kernels")
        if not kernels:
            print(f"Per-kernel table for {r['label']}: {r['data'].get('skipped', 'none')}.")
            continue
        print(f"Per-kernel GPU time, {r['label']} ({r['data']['note']}; ms divided by {r['data']['steps']} steps):")
        print()
        print("| kernel | calls | ms per step | % |")
        print("|---|---:|---:|---:|")
        for k in sorted(kernels, key=lambda k: -k["total_ms"])[:25]:
            print(f"| `{k['kernel'][:80]}` | {k['calls']} | {k['ms_per_decode_step']:.3f} | {k['time_percent']:.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("device")
    p.add_argument("--info", required=True)
    p.add_argument("--backend", required=True)
    p.set_defaults(run=cmd_device)
    p = sub.add_parser("wrap")
    p.add_argument("--kind", required=True)
    p.add_argument("--label", required=True)
    p.add_argument("--shape")
    p.add_argument("--type")
    p.add_argument("--lines", action="store_true")
    p.set_defaults(run=cmd_wrap)
    sub.add_parser("bandwidth").set_defaults(run=cmd_bandwidth)
    p = sub.add_parser("kernels")
    p.add_argument("--label", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.set_defaults(run=cmd_kernels)
    sub.add_parser("summary").set_defaults(run=cmd_summary)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
