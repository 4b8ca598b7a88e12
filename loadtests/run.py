"""``make loadtest``: start (or reach) the stack, seed it, run every suite, write loadtests/report/.

    .venv/bin/python -m loadtests.run            # the full run (~12 minutes on 2 cores)
    .venv/bin/python -m loadtests.run --smoke    # seconds per suite; exits 1 on any request error

For each suite: Locust at a fixed arrival rate (1,000 req/s), Locust at rising rates, then wrk at rising
connection counts for the peak with p95 under 50 ms. Every step is bounded in time, every ladder in
length, and a ladder stops early once p95 passes the limit. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from loadtests import cpu, locust_run, profile, report, seed, stack, timed, wrk
from loadtests.api import Api
from loadtests.suites import ORDER, SUITES, bodies


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny seed, a few seconds per suite, fail on errors")
    parser.add_argument("--out", type=Path, default=Path("loadtests/report"))
    parser.add_argument("--suites", default=",".join(ORDER))
    parser.add_argument("--rate", type=float, default=1000.0, help="fixed arrival rate, req/s")
    parser.add_argument("--duration", type=float, help="seconds of the fixed-rate run (30; smoke 2)")
    parser.add_argument("--locust-steps", help="rising Locust rates after the fixed one (2000,3000; smoke none)")
    parser.add_argument("--wrk-connections", help="wrk ladder (1,4,16,64; smoke 4)")
    parser.add_argument("--wrk-seconds", type=float, help="seconds per wrk step (6; smoke 1)")
    parser.add_argument("--timed-counts", help="vouchers per timed campaign (100000; smoke 1000)")
    parser.add_argument(
        "--server-processes",
        type=int,
        default=int(os.environ.get("VOUCHERD_SERVER_PROCESSES") or (os.cpu_count() or 1)),
    )
    parser.add_argument("--worker-processes", type=int, default=1)
    parser.add_argument(
        "--server-cpus",
        default=os.environ.get("LOADTEST_SERVER_CPUS", ""),
        help="taskset CPU list for the whole stack (default: any)",
    )
    parser.add_argument(
        "--load-cpus",
        default=os.environ.get("LOADTEST_LOAD_CPUS", ""),
        help="taskset CPU list for Locust and wrk (default: any)",
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="py-spy the server for rows that miss their goal (auto: full runs only)",
    )
    args = parser.parse_args(argv)
    smoke = args.smoke
    args.duration = args.duration or (2.0 if smoke else 30.0)
    args.locust_steps = _ints(args.locust_steps if args.locust_steps is not None else ("" if smoke else "2000,3000"))
    args.wrk_connections = _ints(args.wrk_connections or ("4" if smoke else "1,4,16,64"))
    args.wrk_seconds = args.wrk_seconds or (1.0 if smoke else 6.0)
    args.timed_counts = _ints(args.timed_counts or ("1000" if smoke else "100000"))
    if smoke:
        args.rate = min(args.rate, 50.0)
    return args


def qualifications_missing(api: Api, body: dict[str, Any]) -> str | None:
    """The qualifications suite runs only once the route exists; a 404/405 means it does not yet."""
    status, _data = api.raw("POST", "/v1/qualifications", body)
    if status in (404, 405):
        return f"not implemented yet (`POST /v1/qualifications` answers HTTP {status})"
    return None


def run_suite(
    name: str,
    args: argparse.Namespace,
    target: Any,
    stack_pids: Callable[[], list[int]],
    seed_path: Path,
    seed_data: dict[str, Any],
    work: Path,
    log: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {"loadavg": [round(x, 2) for x in os.getloadavg()]}
    samples = work / f"locust_{name}.json"
    out["fixed"] = cpu.measure(
        stack_pids,
        lambda: locust_run.run(
            target,
            name,
            seed_path,
            args.rate,
            args.duration,
            samples,
            args.load_cpus,
            warmup_s=0.5 if args.smoke else 2.0,
        ),
    )
    out["fixed"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    log(f"  locust {args.rate:,.0f} req/s: {_brief(out['fixed'])}")
    out["locust_steps"] = []
    for rate in args.locust_steps:
        step = locust_run.run(target, name, seed_path, rate, max(8.0, args.duration / 3), samples, args.load_cpus)
        out["locust_steps"].append(step)
        log(f"  locust {rate:,.0f} req/s: {_brief(step)}")
        if step["p95"] > report.LATENCY_LIMIT_MS or step["rps"] < 0.9 * rate:
            break  # the offered rate is past what it sustains; wrk finds the peak
    out["wrk"] = []
    if wrk.available():
        script = wrk.write_script(SUITES[name], seed_data, target.app_id, target.app_token, work)
        for connections in args.wrk_connections:
            step = cpu.measure(
                stack_pids, lambda c=connections: wrk.run(target.url, script, c, args.wrk_seconds, args.load_cpus)
            )
            out["wrk"].append(step)
            log(f"  wrk {connections} conn: {_brief(step)}")
            if step["p95"] > report.LATENCY_LIMIT_MS:
                break
    return out


def _brief(step: dict[str, Any]) -> str:
    return (
        f"{step['rps']:,.0f} req/s, avg {step['avg']:.2f} p50 {step['p50']:.2f} p95 {step['p95']:.2f} "
        f"p99 {step['p99']:.2f} ms, errors {step['errors']}"
    )


def errors_of(run: dict[str, Any]) -> list[str]:
    problems = []
    for name, results in run["suites"].items():
        for step in [results.get("fixed") or {}, *results.get("locust_steps", []), *results.get("wrk", [])]:
            if step.get("errors"):
                problems.append(f"{name} ({step['tool']}): {step['errors']} errors {step.get('error_kinds')}")
    problems += [f"timed run: {row['error']}" for row in run.get("timed", []) if "error" in row]
    problems += [f"timed run: {row}" for row in run.get("timed", []) if "error" not in row and not row["ok"]]
    csv = run.get("csv_import")
    if isinstance(csv, dict) and not csv.get("ok"):
        problems.append(f"timed CSV import: {csv}")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir: Path = args.out
    work = out_dir / "raw"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", flush=True)

    run: dict[str, Any] = {
        "command": "make loadtest-smoke" if args.smoke else "make loadtest",
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "smoke": args.smoke,
        "machine": stack.machine(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "suites": {},
        "notes": [],
    }
    if not wrk.available():
        run["notes"].append("wrk is not installed (Debian package `wrk`): peaks come from Locust steps only")
    with stack.open_stack(args.server_processes, args.worker_processes, args.server_cpus, work) as st:
        target = st.target
        run["config"] = {
            "rate": args.rate,
            "duration_s": args.duration,
            "locust_steps": args.locust_steps,
            "wrk_connections": args.wrk_connections,
            "wrk_seconds": args.wrk_seconds,
            "server_processes": st.server_processes,
            "worker_processes": st.worker_processes,
            "server_cpus": args.server_cpus if st.managed else "",
            "load_cpus": args.load_cpus,
            "managed": st.managed,
        }
        run["notes"] += st.notes
        log(f"stack at {target.url} (server processes {st.server_processes}, cpus {args.server_cpus or 'any'})")
        scale = seed.SMOKE if args.smoke else seed.FULL
        seed_data = seed.seed(target, scale, log=log)
        seed_path = work / "seed.json"
        seed_path.write_bytes(orjson.dumps(seed_data))
        run["seed"] = {
            "summary": _seed_summary(seed_data),
            "not_seeded": seed_data["not_seeded"],
            "timings_s": seed_data["timings_s"],
        }
        api = Api(target)
        for name in [n for n in ORDER if n in args.suites.split(",")]:
            suite = SUITES[name]
            probe = bodies(suite, seed_data, 1)
            if name == "qualifications" and (missing := qualifications_missing(api, probe[0])):
                run["suites"][name] = {"skipped": missing}
                log(f"{name}: skipped, {missing}")
                continue
            log(f"{name}: {suite.method} {suite.path}")
            run["suites"][name] = run_suite(name, args, target, st.pids, seed_path, seed_data, work, log)
        run["timed"] = []
        for count in args.timed_counts:
            try:
                row = timed.campaign_with_codes(target, count)
            except Exception as exc:  # reported as a failed row, not a crash of the whole report
                row = {"count": count, "error": str(exc)[:300]}
            run["timed"].append(row)
            log(f"timed: campaign with {count} vouchers: {row}")
        try:
            run["csv_import"] = timed.customer_csv_import(target, 1_000 if args.smoke else 100_000)
        except Exception as exc:  # reported as a failed row, not a crash of the whole report
            run["csv_import"] = {"error": str(exc)[:300]}
        log(f"timed: customer CSV import: {run['csv_import']}")
        run["profiles"] = _profiles(args, run, st, seed_data, work, log)
    run["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    (out_dir / "results.json").write_text(json.dumps(run, indent=2, default=str))
    path = report.write(run, out_dir)
    log(f"wrote {path}")
    print("\n".join(report.table(run)))
    problems = errors_of(run)
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _seed_summary(data: dict[str, Any]) -> str:
    s = data["scale"]
    return (
        f"a coupon campaign of {s['coupons']:,} codes ({len(data['codes']):,} used by the suites), "
        f"{s['gift_cards']:,} gift cards, {s['tiers']:,} promotion tiers with mixed validation rules, "
        f"{s['customers']:,} customers in {len(data['segments'])} auto-update segments, {s['products']:,} products"
    )


def _profiles(
    args: argparse.Namespace, run: dict[str, Any], st: stack.Stack, seed_data: dict[str, Any], work: Path, log: Any
) -> dict[str, Any]:
    if args.profile == "never" or (args.profile == "auto" and args.smoke):
        return {}
    pids = st.server_pids()
    if not pids or not profile.available() or not wrk.available():
        run["notes"].append("no profile: needs a stack started here, py-spy and wrk")
        return {}
    missed = [
        n
        for n, r in run["suites"].items()
        if "fixed" in r and report.verdict(n, r["fixed"], report.peak(r)[0]).startswith("no")
    ]
    chosen = missed if args.profile == "auto" else [n for n in run["suites"] if "fixed" in run["suites"][n]]
    profiles = {}
    for name in [*chosen[:5], "floor"] if chosen else []:
        script = work / f"wrk_{name}.lua"
        log(f"profiling the server under {name} load with py-spy")
        profiles[name] = profile.record(st.target.url, script, pids, 12, work / "profiles", 16, args.load_cpus)
    return profiles


if __name__ == "__main__":
    sys.exit(main())
