// The live page: polls the figures endpoint every second and draws the last few minutes as SVG line charts.
// Counters are cumulative since the servers started, so rates and p95s come from the difference between
// two snapshots (the same arithmetic as Prometheus's rate() and histogram_quantile()).
(function () {
  "use strict";
  const root = document.getElementById("live");
  if (!root) return;
  const URL_ = root.dataset.figuresUrl;
  const WINDOW_S = Number(root.dataset.windowSeconds || 300);
  const P95_WINDOW_S = 10; // each p95 point covers the calls answered in the last 10 s
  const POLL_MS = 1000;
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"];
  const SVG_NS = "http://www.w3.org/2000/svg";

  const snapshots = []; // {at, succeeded, failed, calls: Map(call -> {count, buckets}), streams}
  const rate = []; // [t, redemptions/s]
  const p95 = new Map(); // call -> [[t, ms|null]]
  const lag = new Map(); // stream -> [[t, messages]]

  function quantile(q, buckets) {
    // buckets: [[le|null(=+Inf), cumulative]]
    if (!buckets.length) return null;
    const total = buckets[buckets.length - 1][1];
    if (total <= 0) return null;
    const rank = q * total;
    let lower = 0, below = 0;
    for (const [le, count] of buckets) {
      if (count >= rank) {
        if (le === null) return lower;
        if (count === below) return le;
        return lower + (le - lower) * (rank - below) / (count - below);
      }
      lower = le; below = count;
    }
    return lower;
  }

  function delta(cur, old) {
    if (!old) return cur.buckets;
    return cur.buckets.map(([le, n], i) => [le, Math.max(0, n - ((old.buckets[i] || [le, 0])[1]))]);
  }

  function push(map, key, point) {
    if (!map.has(key)) map.set(key, []);
    map.get(key).push(point);
  }

  function trim(points, since) {
    while (points.length && points[0][0] < since) points.shift();
  }

  function ingest(body) {
    const snap = {
      at: body.at,
      succeeded: body.redemptions.succeeded,
      failed: body.redemptions.failed,
      calls: new Map(body.calls.map((c) => [c.call, c])),
      streams: body.streams,
    };
    const prev = snapshots[snapshots.length - 1];
    snapshots.push(snap);
    const since = snap.at - WINDOW_S;
    while (snapshots.length > 2 && snapshots[0].at < since) snapshots.shift();
    if (prev) {
      const seconds = Math.max(0.001, snap.at - prev.at);
      const moved = snap.succeeded - prev.succeeded;
      rate.push([snap.at, moved >= 0 ? moved / seconds : 0]); // a restart resets the counters
    }
    const old = snapshots.find((s) => s.at >= snap.at - P95_WINDOW_S - 0.5 && s !== snap) || prev;
    for (const [name, call] of snap.calls) {
      const before = old ? old.calls.get(name) : undefined;
      const value = old ? quantile(0.95, delta(call, before)) : null;
      push(p95, name, [snap.at, value === null ? null : value * 1000]);
    }
    for (const s of snap.streams) push(lag, s.name, [snap.at, s.lag + s.pending]);
    trim(rate, since);
    for (const points of p95.values()) trim(points, since);
    for (const points of lag.values()) trim(points, since);
    return snap;
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function format(value) {
    if (value >= 100) return value.toFixed(0);
    if (value >= 10) return value.toFixed(1);
    return value.toFixed(2);
  }

  // series: [{name, points: [[t, v|null]]}]
  function draw(svg, series, now, span, unit, legend) {
    // One SVG unit per CSS pixel, so the labels keep their size whatever the page's width.
    const W = Math.max(320, Math.round(svg.clientWidth || 640)), H = 180, L = 48, R = 12, T = 8, B = 22;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("height", String(H));
    svg.replaceChildren();
    let max = 0;
    for (const s of series) for (const [, v] of s.points) if (v !== null && v > max) max = v;
    const top = niceMax(max);
    svg.dataset.max = String(max);
    const x = (t) => L + ((t - (now - span)) / span) * (W - L - R);
    const y = (v) => T + (1 - v / top) * (H - T - B);
    for (let i = 0; i <= 4; i++) {
      const v = (top * i) / 4;
      svg.append(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
      svg.append(el("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", class: "tick" }, format(v)));
    }
    const step = span <= 60 ? 10 : 60;
    for (let ago = 0; ago <= span + 0.001; ago += step) {
      const label = ago === 0 ? "now" : step === 60 ? `-${ago / 60}m` : `-${ago}s`;
      const anchor = ago === 0 ? "end" : "middle";
      svg.append(el("text", { x: x(now - ago), y: H - 6, "text-anchor": anchor, class: "tick" }, label));
    }
    series.forEach((s, i) => {
      let d = "", pen = "M";
      for (const [t, v] of s.points) {
        if (v === null) { pen = "M"; continue; }
        d += `${pen}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
        pen = "L";
      }
      if (d) svg.append(el("path", { d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 2, "data-series": s.name }));
    });
    if (legend) {
      legend.replaceChildren(...series.map((s, i) => {
        const item = document.createElement("span");
        item.className = "legend-item";
        const swatch = document.createElement("i");
        swatch.style.background = COLORS[i % COLORS.length];
        const last = [...s.points].reverse().find((p) => p[1] !== null);
        item.append(swatch, ` ${s.name}${last ? ": " + format(last[1]) + " " + unit : ""}`);
        return item;
      }));
    }
  }

  function render(snap) {
    const now = snap.at;
    // The time axis grows with the page's history, from one minute up to the whole window.
    const span = Math.min(WINDOW_S, Math.max(60, Math.ceil((now - snapshots[0].at) / 60) * 60));
    const last = rate.length ? rate[rate.length - 1][1] : 0;
    const peak = rate.reduce((m, p) => Math.max(m, p[1]), 0);
    document.getElementById("redemptions-total").textContent = String(Math.round(snap.succeeded));
    document.getElementById("redemptions-failed").textContent = String(Math.round(snap.failed));
    const rateOut = document.getElementById("redemptions-rate");
    rateOut.textContent = format(last);
    rateOut.dataset.peak = String(peak);
    draw(document.getElementById("chart-rate"), [{ name: "redemptions/s", points: rate }], now, span, "redemptions/s");
    const busiest = [...snap.calls.values()].slice(0, COLORS.length).map((c) => c.call);
    draw(document.getElementById("chart-p95"), busiest.map((name) => ({ name, points: p95.get(name) || [] })),
      now, span, "ms", document.getElementById("legend-p95"));
    draw(document.getElementById("chart-lag"), [...lag.entries()].map(([name, points]) => ({ name, points })),
      now, span, "messages", document.getElementById("legend-lag"));
    document.getElementById("live-status").textContent = "updated " + new Date(now * 1000).toLocaleTimeString();
  }

  async function poll() {
    try {
      const answer = await fetch(URL_, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (answer.ok) render(ingest(await answer.json()));
      else document.getElementById("live-status").textContent = `figures unavailable (${answer.status})`;
    } catch (err) {
      document.getElementById("live-status").textContent = "figures unavailable";
    }
    setTimeout(poll, POLL_MS);
  }
  poll();
})();
