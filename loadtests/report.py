"""REPORT.md and the PNG charts, from the results the runner collected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtests.suites import ORDER, SUITES
from loadtests.timed import CSV_GOAL_S

LATENCY_LIMIT_MS = 50.0  # peak throughput counts only loads whose p95 stays under this


def _ms(value: float | None) -> str:
    return "-" if value is None else (f"{value:.2f}" if value < 10 else f"{value:.1f}")


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def peak(results: dict[str, Any]) -> tuple[float | None, str]:
    """Best throughput with p95 under the limit and no errors, over every tool's steps; and the tool."""
    best: tuple[float | None, str] = (None, "")
    for step in results.get("wrk", []) + results.get("locust_steps", []):
        if step["errors"] == 0 and step["p95"] < LATENCY_LIMIT_MS and step["rps"] > (best[0] or 0):
            detail = f"{step['connections']} conn" if step["tool"] == "wrk" else f"{step['users']} users"
            best = (step["rps"], f"{step['tool']}, {detail}")
    return best


def verdict(suite_name: str, fixed: dict[str, Any] | None, peak_rps: float | None) -> str:
    suite = SUITES[suite_name]
    if suite.goal_p95_ms is None or fixed is None:
        return "-"
    p95_ok = fixed["p95"] <= suite.goal_p95_ms and fixed["rps"] >= 0.9 * fixed["target_rps"]
    peak_ok = peak_rps is not None and suite.goal_peak_rps is not None and peak_rps >= suite.goal_peak_rps
    if p95_ok and peak_ok:
        return "yes"
    return "no (" + ", ".join(x for x, ok in (("p95", p95_ok), ("peak", peak_ok)) if not ok) + ")"


def table(run: dict[str, Any]) -> list[str]:
    rate = run["config"]["rate"]
    floor = run["suites"].get("floor", {})
    floor_fixed = floor.get("fixed")
    floor_peak, _ = peak(floor)
    lines = [
        f"| call | voucherd avg / p50 / p95 / p99 ms (Locust, {rate:,.0f} req/s offered → achieved) "
        "| peak req/s, p95 < 50 ms (tool) | floor in the same run: p95 ms / peak req/s | ratio to floor: p95 / peak "
        "| Voucherify avg / p95 ms | goal (DESIGN.md) | met? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ORDER:
        suite = SUITES[name]
        results = run["suites"].get(name)
        if results is None:
            continue
        if results.get("skipped"):
            lines.append(
                f"| {suite.label} | skipped: {results['skipped']} | - | - | - | "
                f"{_pair(suite.voucherify)} | {_goal(name)} | not yet |"
            )
            continue
        fixed = results.get("fixed")
        peak_rps, tool = peak(results)
        lat = (
            (
                f"{_ms(fixed['avg'])} / {_ms(fixed['p50'])} / {_ms(fixed['p95'])} / {_ms(fixed['p99'])} "
                f"({fixed['rps']:,.0f} req/s)"
            )
            if fixed
            else "-"
        )
        floor_cell = f"{_ms(floor_fixed['p95']) if floor_fixed else '-'} / {floor_peak or 0:,.0f}"
        ratio = (
            f"{_ratio(fixed['p95'] if fixed else None, floor_fixed['p95'] if floor_fixed else None)} / "
            f"{_ratio(peak_rps, floor_peak)}"
        )
        peak_cell = f"{peak_rps:,.0f} ({tool})" if peak_rps else "none under 50 ms"
        lines.append(
            f"| {suite.label} | {lat} | {peak_cell} | {floor_cell} | {ratio} | {_pair(suite.voucherify)} "
            f"| {_goal(name)} | {verdict(name, fixed, peak_rps)} |"
        )
    return lines


def cpu_lines(run: dict[str, Any]) -> list[str]:
    """CPU µs per answered request by role, over the fixed-rate window and the busiest wrk step."""
    roles = ("server", "worker", "redis", "postgres", "load", "other")
    lines = [
        "| call | window | achieved req/s | "
        + " | ".join(f"{r} µs/req" for r in roles)
        + " | cores idle | load average after |",
        "|---|---|---|" + "---|" * len(roles) + "---|---|",
    ]
    for name in ORDER:
        results = run["suites"].get(name) or {}
        steps = [("Locust fixed rate", results.get("fixed"))]
        wrk_steps = [s for s in results.get("wrk", []) if s.get("cpu_us_per_request")]
        if wrk_steps:
            top = max(wrk_steps, key=lambda s: s["rps"])
            steps.append((f"wrk {top['connections']} conn", top))
        for window, found in steps:
            step: dict[str, Any] = found or {}
            per = step.get("cpu_us_per_request")
            if not per:
                continue
            cells = " | ".join("-" if per.get(r) is None else f"{per[r]:,.0f}" for r in roles)
            load = step.get("loadavg_after") or results.get("loadavg") or "-"
            idle = "-" if step.get("idle_pct") is None else f"{step['idle_pct']:.0f} %"
            lines.append(f"| {SUITES[name].label} | {window} | {step['rps']:,.0f} | {cells} | {idle} | {load} |")
    return lines


def _pair(values: tuple[float, float] | None) -> str:
    return f"{values[0]:.0f} / {values[1]:.0f}" if values else "-"


def _goal(name: str) -> str:
    suite = SUITES[name]
    if suite.goal_p95_ms is None:
        return "-"
    return f"p95 ≤ {suite.goal_p95_ms:g} ms; ≥ {suite.goal_peak_rps:,.0f} req/s"


def timed_lines(run: dict[str, Any]) -> list[str]:
    lines = ["| timed run | voucherd | Voucherify | goal | met? |", "|---|---|---|---|---|"]
    for row in run.get("timed", []):
        if "error" in row:
            lines.append(f"| create campaign with {row['count']:,} vouchers | failed: {row['error']} | 60 s | - | no |")
            continue
        goal_s = 2.0 if row["count"] <= 100_000 else 15.0 * row["count"] / 1_000_000
        met = "yes" if row["ok"] and row["validated_s"] <= goal_s else "no"
        lines.append(
            f"| create campaign with {row['count']:,} vouchers | DONE after {row['done_s']:.2f} s, a sample of "
            f"{row['sample']} newest codes validated by {row['validated_s']:.2f} s (action processing "
            f"{row['processing_ms']} ms; create call {row['create_call_ms']} ms) | 60 s "
            f"| ≤ 2 s per 100,000 until every code validates | {met} |"
        )
    csv = run.get("csv_import")
    if not isinstance(csv, dict):
        lines.append(f"| 100,000-row CSV import | {csv or 'not run'} | - | - | - |")
    elif "error" in csv:
        lines.append(f"| customer CSV import | failed: {csv['error']} | - | ≤ {CSV_GOAL_S:g} s | no |")
    else:
        met = "yes" if csv["ok"] and csv["done_s"] <= CSV_GOAL_S * max(1.0, csv["rows"] / 100_000) else "no"
        lines.append(
            f"| customer CSV import of {csv['rows']:,} new rows | DONE {csv['done_s']:.2f} s after the upload began "
            f"(upload {csv['upload_ms']} ms, action processing {csv['processing_ms']} ms, {csv['done_count']} "
            f"imported, {csv['failed_count']} failed) | - | ≤ {CSV_GOAL_S:g} s per 100,000 rows | {met} |"
        )
    return lines


def machine_lines(run: dict[str, Any]) -> list[str]:
    m, c = run["machine"], run["config"]
    return [
        f"- Machine: {m['cores']} cores, {m['cpu_model']}, {m['memory_gb']} GB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}.",
        f"- Server: granian, {c['server_processes'] or '?'} process(es); worker: {c['worker_processes'] or '?'} "
        f"process(es); Redis AOF everysec and PostgreSQL started by `voucherd run` in a throw-away folder"
        + ("." if c["managed"] else " (external server given by VOUCHERIFY_HOST)."),
        f"- CPU pinning (taskset): server stack on `{c['server_cpus'] or 'any'}`, load generators on "
        f"`{c['load_cpus'] or 'any'}`.",
        f"- Load average before / after the suites: {run['loadavg_before']} / {run['loadavg_after']} "
        "(other work on the machine shows up here and, equally, in the floor).",
        f"- Fixed-rate runs: Locust FastHttpUser, {c['rate']:,.0f} req/s offered for {c['duration_s']} s "
        f"(constant_throughput pacing); rising load: Locust at {c['locust_steps'] or 'no'} req/s, then wrk "
        f"(1 thread, closed loop) at {c['wrk_connections']} connections for {c['wrk_seconds']} s each. "
        "Latencies in ms from raw samples (not Locust's rounded buckets).",
    ]


def write(run: dict[str, Any], out_dir: Path) -> Path:
    charts = _charts(run, out_dir)
    seed = run.get("seed", {})
    lines = [
        "# voucherd load test report",
        "",
        f"Generated by `{run['command']}` on {run['started']} ({'smoke mode: numbers mean nothing' if run['smoke'] else 'full run'}).",  # noqa: E501
        "",
        *table(run),
        "",
        *timed_lines(run),
        "",
        "## CPU per request, by role",
        "",
        "Read from each process's own counters (/proc, utime + stime) over the window; the load generator's "
        "from this runner's child usage; other = every other process on the machine (from /proc/stat), and "
        "cores idle = the share of both cores no process used. On one 2-core box every role shares the cores "
        "with the others.",
        "",
        *cpu_lines(run),
        "",
        "## Set-up",
        "",
        *machine_lines(run),
        f"- Seeded through the public API: {seed.get('summary', 'n/a')}. Not seeded: "
        f"{'; '.join(seed.get('not_seeded', [])) or 'nothing'}.",
        "",
    ]
    for chart in charts:
        lines += [f"![{chart.stem}]({chart.name})", ""]
    lines += _profile_lines(run)
    if run.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in run["notes"]], ""]
    path = out_dir / "REPORT.md"
    path.write_text("\n".join(lines))
    return path


def _profile_lines(run: dict[str, Any]) -> list[str]:
    profiles = run.get("profiles") or {}
    if not profiles:
        return []
    lines = ["## Profiles (py-spy, server processes under wrk load)", ""]
    for name, prof in profiles.items():
        load = prof.get("load", {})
        lines += [
            f"### {SUITES[name].label}",
            "",
            f"{prof['samples']} samples over the server processes while wrk drove {load.get('rps', 0):,.0f} "
            f"req/s (p95 {_ms(load.get('p95'))} ms). Raw stacks: {', '.join(Path(f).name for f in prof['files'])}.",
            "",
            "| self % | frame |",
            "|---|---|",
            *[f"| {share} | `{frame}` |" for frame, share in prof["self"]],
            "",
            "| inclusive % | frame |",
            "|---|---|",
            *[f"| {share} | `{frame}` |" for frame, share in prof["inclusive"]],
            "",
        ]
    return lines


def _charts(run: dict[str, Any], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [n for n in ORDER if run["suites"].get(n, {}).get("fixed")]
    paths = []
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.25
    for k, pct in enumerate(("p50", "p95", "p99")):
        values = [run["suites"][n]["fixed"][pct] for n in measured]
        ax.bar([i + (k - 1) * width for i in range(len(measured))], values, width, label=pct)
    ax.set_xticks(range(len(measured)), [n.replace("_", "\n") for n in measured])
    ax.set_ylabel("ms")
    ax.set_title(f"Latency percentiles per call at {run['config']['rate']:,.0f} req/s (Locust)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    paths.append(out_dir / "latency_percentiles.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 5))
    for n in measured:
        results = run["suites"][n]
        locust = sorted(
            ([results["fixed"]] if results.get("fixed") else []) + results.get("locust_steps", []),
            key=lambda s: s["rps"],
        )
        (line,) = ax.plot([s["rps"] for s in locust], [s["p95"] for s in locust], "o-", label=f"{n} (Locust)")
        steps = results.get("wrk", [])
        ax.plot([s["rps"] for s in steps], [s["p95"] for s in steps], "s--", color=line.get_color(), label=f"{n} (wrk)")
    ax.axhline(LATENCY_LIMIT_MS, color="grey", linestyle=":", label="50 ms")
    ax.set_yscale("log")
    ax.set_xlabel("achieved req/s")
    ax.set_ylabel("p95 latency, ms (log)")
    ax.set_title("Latency against load")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    paths.append(out_dir / "latency_vs_load.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
