#!/usr/bin/env python3
"""Markdown table of CUDA test results from gtest JSON reports (scripts/cuda-tests.sh).

Each row: test, outcome (passed / FAILED / skipped), and the errors the test recorded with
RecordProperty (keys ending in `_max_error`; tests/engine/cuda_test_util.h records one per
comparison). Exit status 2 when a device is named but no GPU test ran (all skipped).
"""
import argparse
import datetime
import json
import sys


def cases(report):
    for suite in report.get("testsuites", []):
        for case in suite.get("testsuite", []):
            yield suite["name"], case


def outcome(case):
    if case.get("failures"):
        return "FAILED"
    if case.get("result") == "SKIPPED" or case.get("status") == "NOTRUN":
        return "skipped"
    return "passed"


def max_errors(case):
    errors = {k[: -len("_max_error")]: v for k, v in case.items() if k.endswith("_max_error")}
    if not errors:
        return ""
    worst = max(errors.items(), key=lambda kv: float(kv[1]) if kv[1] not in ("inf", "nan") else float("inf"))
    return f"{worst[1]} ({worst[0]}; {len(errors)} comparisons)" if len(errors) > 1 else f"{worst[1]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="none")
    parser.add_argument("reports", nargs="+")
    args = parser.parse_args()

    rows, counts = [], {"passed": 0, "FAILED": 0, "skipped": 0}
    gpu_ran = False
    for path in args.reports:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
        binary = path.rsplit("/", 1)[-1].removesuffix(".json")
        for suite, case in cases(report):
            result = outcome(case)
            counts[result] += 1
            if result != "skipped" and not binary.endswith("_host"):
                gpu_ran = True
            rows.append((binary, f"{suite}.{case['name']}", result, max_errors(case)))

    print(f"CUDA tests, {datetime.date.today().isoformat()}, device: {args.device}")
    print()
    print(f"{counts['passed']} passed, {counts['FAILED']} failed, {counts['skipped']} skipped")
    print()
    print("| binary | test | result | max error (worst comparison) |")
    print("|---|---|---|---|")
    for binary, name, result, err in rows:
        print(f"| {binary} | {name} | {result} | {err} |")
    if args.device != "none" and not gpu_ran:
        print("\nno GPU test ran although a device is present", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
