(() => {
"use strict";
const D = JSON.parse(document.getElementById("zt-data").textContent);
const NS = document.getElementById("zt-ns").namespaceURI;  // the SVG namespace, unwritten
const RUNS = D.runs, N = RUNS.length;
const CUT = 48;     // characters a table cell shows before an ellipsis (the title holds them all)
const PAGE = 150;   // table rows added at a time: a long table grows as it is scrolled
const COLLATE = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
const state = {
  color: D.color, showSame: false, sortKey: null, sortDir: 1, brushes: new Map(),
  highlight: -1, visible: new Uint8Array(N).fill(1), ct: new Float64Array(N),
};

// -- text ---------------------------------------------------------------------------------
// The twin of zentrack._report.table.format_number: keep both in step.
function fmt(x, digits = 4) {
  if (typeof x === "string") return x;  // "NaN", "inf", "-inf"
  if (x === 0) return "0";
  const a = Math.abs(x), sign = x < 0 ? "-" : "";
  if (Number.isInteger(a) && a < 1e6) return sign + String(a);
  const strip = (s) => (s.indexOf(".") < 0 ? s : s.replace(/0+$/, "").replace(/\.$/, ""));
  if (a >= 1e6 || a < 1e-3) {
    const [m, e] = a.toExponential(digits - 1).split("e");
    return sign + strip(m) + "e" + Number(e);
  }
  if (a >= Math.pow(10, digits)) return sign + String(Math.round(a));
  const p = a.toPrecision(digits);
  return sign + (p.indexOf("e") >= 0 ? String(Math.round(a)) : strip(p));
}
window.ztFormat = fmt;
function cut(s, n = CUT) { return s.length > n ? s.slice(0, n - 1) + "\u2026" : s; }
function pad(n) { return (n < 10 ? "0" : "") + n; }
function when(t) {
  if (!t) return "";
  const d = new Date(t * 1000);
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
    pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
}
// The twin of zentrack._report.table.format_duration: keep both in step.
function duration(s) {
  if (s < 1) return fmt(Number((s * 1000).toPrecision(2)), 3) + " ms";
  if (s < 60) return fmt(Number(s.toPrecision(s < 10 ? 2 : 3)), 3) + " s";
  if (s < 3600) return Math.floor(s / 60) + " m " + pad(Math.floor(s % 60)) + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + pad(Math.floor(s % 3600 / 60)) + " m";
  return Math.floor(s / 86400) + " d " + pad(Math.floor(s % 86400 / 3600)) + " h";
}
window.ztDuration = (s) => duration(s);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function sv(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function empty(host, text) { host.appendChild(el("div", "zt-empty", text)); }

// -- columns ------------------------------------------------------------------------------
// Values spanning decades and bunched at the low end (0.001, 0.003, 0.01, 0.03) read best on
// a log scale; values spread evenly (10, 40, 70, 100) stay linear.
function skewedLow(sorted, lo, hi) {
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  return (median - lo) / (hi - lo) < 0.25;
}
const COLS = D.columns.map((c, idx) => {
  c.idx = idx;
  c.num = new Float64Array(N);  // the value to plot, NaN where there is none
  for (let i = 0; i < N; i++) {
    const v = c.values[i];
    c.num[i] = c.type === "num" && typeof v === "number" ? v : NaN;
  }
  if (c.type === "num") {
    const sorted = [...c.num].filter((v) => v === v).sort((a, b) => a - b);
    c.finite = sorted.length > 0;
    c.lo = sorted[0]; c.hi = sorted[sorted.length - 1];
    c.distinct = [...new Set(sorted)];  // a sweep's few values label its axis
    c.log = c.finite && c.lo > 0 && c.hi / c.lo >= 10 && skewedLow(sorted, c.lo, c.hi);
  }
  // how many values there are to tell runs apart by: a chart axis needs two
  c.spread = c.type === "num" ? c.distinct.length
    : new Set(c.values.filter((v) => v !== null)).size;
  return c;
});
const byKey = new Map(COLS.map((c) => [c.key, c]));
const PARAMS = COLS.filter((c) => c.kind === "param");
const METRICS = COLS.filter((c) => c.kind === "metric");
const NUM_METRICS = METRICS.filter((c) => c.type === "num" && c.finite);
const VARY_PARAMS = PARAMS.filter((c) => c.varies && c.spread > 1);
const nameCount = new Map();
for (const c of COLS) nameCount.set(c.kind + c.name, (nameCount.get(c.kind + c.name) || 0) + 1);
function shortName(c) {
  return nameCount.get(c.kind + c.name) > 1 ? c.step + "." + c.name : c.name;
}
function cellText(c, i) {
  const v = c.values[i];
  if (v === null) return null;
  return c.type === "num" ? fmt(v) : c.levels[v];
}
function fullText(c, i) {
  const v = c.values[i];
  if (v === null) return c.kind === "param" ? "not a parameter of this run" : "not logged";
  return c.type === "num" ? String(v) : c.levels[v];
}
function metricDir(c) { return c.dir || 1; }

// -- scales -------------------------------------------------------------------------------
// A scale maps run i to t in [0, 1] (1 = top, or best), NaN where it has no value to plot.
function scaleOf(c, invert) {
  if (c.type === "cat") {
    const used = [...new Set(c.values.filter((v) => v !== null))].sort((a, b) => a - b);
    const pos = new Map(used.map((v, k) => [v, used.length < 2 ? 0.5 : 1 - k / (used.length - 1)]));
    return {
      cat: true, used,
      t: (i) => (c.values[i] === null ? NaN : pos.get(c.values[i])),
      ticks: () => used.map((v) => [pos.get(v), c.levels[v]]),
    };
  }
  const f = c.log ? Math.log10 : (x) => x;
  const lo = f(c.lo), span = f(c.hi) - lo;
  const tv = (v) => {
    const t = span > 0 ? (f(v) - lo) / span : 0.5;
    return invert ? 1 - t : t;
  };
  return {
    cat: false, log: c.log,
    t: (i) => (c.num[i] === c.num[i] ? tv(c.num[i]) : NaN),
    ticks: (n) => (c.distinct.length <= 8 ? c.distinct : ticks(c.lo, c.hi, c.log, n))
      .map((v) => [tv(v), fmt(v)]),
  };
}
function ticks(lo, hi, log, n) {
  if (!(hi > lo)) return [lo];
  if (log) {
    const out = [];
    const first = Math.ceil(Math.log10(lo) - 1e-9), last = Math.floor(Math.log10(hi) + 1e-9);
    for (let e = first; e <= last; e++) out.push(Math.pow(10, e));
    if (out.length > n + 1) return out.filter((_, k) => k % Math.ceil(out.length / n) === 0);
    return out.length >= 2 ? out : [lo, hi];
  }
  // steps of 1, 2 or 5 times a power of ten, about n of them (as d3 picks them)
  const raw = (hi - lo) / Math.max(n, 1), mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const err = raw / mag;
  const step = mag * (err >= 7.07 ? 10 : err >= 3.16 ? 5 : err >= 1.41 ? 2 : 1);
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

// -- colour -------------------------------------------------------------------------------
const RAMP = [[0, [236, 220, 190]], [0.3, [244, 166, 96]], [0.62, [214, 72, 110]],
  [1, [63, 29, 140]]];
function ramp(t) {
  t = Math.max(0, Math.min(1, t));
  for (let k = 1; k < RAMP.length; k++) {
    if (t <= RAMP[k][0]) {
      const [t0, a] = RAMP[k - 1], [t1, b] = RAMP[k], u = (t - t0) / (t1 - t0);
      return "rgb(" + a.map((x, j) => Math.round(x + (b[j] - x) * u)).join(",") + ")";
    }
  }
  return "rgb(63,29,140)";
}
const NO_COLOR = "#b4bac4", OUT_COLOR = "#e6e8ec";
function colourRuns() {  // t of the colour metric per run: 1 = best, NaN = no value
  const c = byKey.get(state.color);
  const s = c && c.finite ? scaleOf(c, metricDir(c) < 0) : null;
  for (let i = 0; i < N; i++) state.ct[i] = s ? s.t(i) : NaN;
}
function colourOf(i) {
  if (!state.visible[i]) return OUT_COLOR;
  const t = state.ct[i];
  return t === t ? ramp(t) : NO_COLOR;
}

// -- filter: the ranges brushed on the chart's axes ----------------------------------------
function applyFilter() {
  let shown = 0;
  for (let i = 0; i < N; i++) {
    let ok = 1;
    for (const b of state.brushes.values()) {
      const t = b.scale.t(i);
      if (!(t >= b.lo - 1e-9 && t <= b.hi + 1e-9)) { ok = 0; break; }
    }
    state.visible[i] = ok;
    shown += ok;
  }
  return shown;
}

// -- tooltip and highlight shared by every view ---------------------------------------------
const tip = document.getElementById("zt-tip");
function showTip(ev, i, cols) {
  tip.textContent = "";
  tip.appendChild(el("div", "h", RUNS[i].id));
  for (const c of cols) {
    const row = el("div");
    row.append(el("span", "k", shortName(c) + " "), cut(cellText(c, i) ?? "\u2014", 60));
    tip.appendChild(row);
  }
  tip.hidden = false;
  const w = tip.offsetWidth, h = tip.offsetHeight;
  let x = ev.clientX + 14, y = ev.clientY + 14;
  if (x + w > window.innerWidth - 8) x = ev.clientX - w - 14;
  if (y + h > window.innerHeight - 8) y = ev.clientY - h - 14;
  tip.style.left = x + "px";
  tip.style.top = y + "px";
}
function hideTip() { tip.hidden = true; }
const hiHooks = {pc: null, table: null, scatter: null};  // how each view shows run i
function setHighlight(i) {
  if (state.highlight === i) return;
  state.highlight = i;
  for (const k in hiHooks) if (hiHooks[k]) hiHooks[k](i);
}

// -- header: the best run, the colour controls, the selection ---------------------------------
function buildBest() {
  const host = document.getElementById("zt-best");
  host.textContent = "";
  const c = byKey.get(state.color);
  if (!c || !c.finite || N < 2) return;
  const dir = metricDir(c);
  let best = -1;
  for (let i = 0; i < N; i++) {
    const v = c.num[i];
    if (v === v && (best < 0 || dir * v > dir * c.num[best])) best = i;
  }
  host.append("Best " + shortName(c) + " ", el("b", "zt-medal", fmt(c.num[best])), " in run ",
    el("code", "", RUNS[best].id));
  VARY_PARAMS.filter((p) => p.values[best] !== null).forEach((p, j) => {
    host.append(j ? ", " : " with ", shortName(p) + " = ", el("b", "", cut(cellText(p, best), 40)));
  });
}
function buildTools() {
  const tools = document.getElementById("zt-tools");
  tools.textContent = "";
  if (!NUM_METRICS.length) return;
  const label = el("label", "", "Colour by ");
  const select = el("select");
  select.id = "zt-color";
  for (const c of NUM_METRICS) {
    const option = el("option", "", shortName(c));
    option.value = c.key;
    option.selected = c.key === state.color;
    select.appendChild(option);
  }
  select.addEventListener("change", () => {
    state.color = select.value;
    sortBest(byKey.get(state.color));
    redrawAll();
  });
  label.appendChild(select);
  const c = byKey.get(state.color);
  const flip = el("button", "", metricDir(c) > 0 ? "higher is better" : "lower is better");
  flip.id = "zt-flip";
  flip.title = "Switch which end of " + shortName(c) + " counts as best";
  flip.addEventListener("click", () => {
    c.dir = -metricDir(c);
    state.brushes.clear();
    sortBest(c);
    redrawAll();
  });
  const bar = el("span", "zt-ramp");
  bar.style.background = "linear-gradient(90deg," + [0, .25, .5, .75, 1].map(ramp).join(",") + ")";
  const legend = el("span", "zt-legend");
  legend.append(el("span", "", "worst"), bar, el("span", "", "best"));
  tools.append(label, flip, legend);
}
function buildHint(shown) {
  const hint = document.getElementById("zt-pc-hint");
  hint.textContent = "";
  if (state.brushes.size) {
    const clear = el("button", "zt-link", "Clear the selection");
    clear.id = "zt-clear";
    clear.addEventListener("click", () => { state.brushes.clear(); redrawAll(false); });
    hint.append(el("b", "", shown + " of " + N + " runs"),
      " in the ranges selected on the axes. ", clear);
  } else if (pcAxes().length >= 2) {
    hint.textContent = "One line per run. Drag along an axis to keep only the runs in that " +
      "range; metric axes have their best end at the top.";
  }
}

// -- parallel coordinates -----------------------------------------------------------------
function pcAxes() {
  if (!NUM_METRICS.length) return [];
  const metrics = NUM_METRICS.filter((c) => c.spread > 1 && c.key !== state.color);
  const colour = NUM_METRICS.filter((c) => c.key === state.color);
  return [...VARY_PARAMS, ...metrics, ...colour];
}
function pathOf(ys, xs) {
  let d = "", pen = false;
  for (let k = 0; k < ys.length; k++) {
    const y = ys[k];
    if (y !== y) { pen = false; continue; }
    d += (pen ? "L" : "M") + xs[k].toFixed(1) + " " + y.toFixed(1);
    pen = true;
  }
  return d;
}
function drawPC(width) {
  const host = document.getElementById("zt-pc");
  host.textContent = "";
  hiHooks.pc = null;
  if (!N) return empty(host, "No runs to compare.");
  if (!NUM_METRICS.length) {
    return empty(host, "No numeric metrics were logged by these runs, so there is nothing to " +
      "chart: call zentrack.log_metrics(...) inside a step to record some. The table below " +
      "lists their parameters.");
  }
  const axes = pcAxes();
  if (axes.length < 2) {
    return empty(host, N < 2 ? "Only one run: the chart needs at least two to compare."
      : "No parameter varies between these runs, so there is nothing to set the metrics against.");
  }
  const W = Math.max(width, 320), H = 400, m = {t: 70, r: 56, b: 16, l: 56};
  const ih = H - m.t - m.b, gap = (W - m.l - m.r) / (axes.length - 1);
  const xs = axes.map((_, k) => m.l + k * gap);
  const scales = axes.map((c) => scaleOf(c, c.kind === "metric" && metricDir(c) < 0));
  const Y = (t) => m.t + (1 - t) * ih;
  const svg = sv("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, id: "zt-pc-svg"});
  const lines = sv("g", {class: "pc-lines"});
  svg.appendChild(lines);
  const ys = [];
  for (let i = 0; i < N; i++) ys.push(scales.map((s) => { const t = s.t(i); return Y(t); }));
  // runs left out by the selection first, then by colour, so the best lie on top
  const rank = (i) => (!state.visible[i] ? 0 : state.ct[i] === state.ct[i] ? 1 + state.ct[i] : .5);
  const order = Array.from({length: N}, (_, i) => i).sort((a, b) => rank(a) - rank(b));
  const opacity = N > 200 ? 0.55 : 0.85;
  for (const i of order) {
    const d = pathOf(ys[i], xs);
    if (!d) continue;
    lines.appendChild(sv("path", {d, class: "pc-line", stroke: colourOf(i),
      "stroke-opacity": opacity, "data-run": i}));
  }
  const hi = sv("path", {class: "pc-hi", d: ""});
  svg.appendChild(hi);
  axes.forEach((c, k) => svg.appendChild(pcAxis(c, scales[k], xs[k], gap, m, ih, Y, svg)));
  // hovering: the line nearest the pointer, between the two axes around it
  svg.addEventListener("mousemove", (ev) => {
    const r = svg.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top;
    const k = Math.max(0, Math.min(axes.length - 2, Math.floor((mx - m.l) / gap)));
    const u = Math.max(0, Math.min(1, (mx - xs[k]) / gap));
    let best = -1, bd = 8;
    for (let i = 0; i < N; i++) {
      if (!state.visible[i]) continue;
      const a = ys[i][k], b = ys[i][k + 1];
      const y = a === a && b === b ? a + (b - a) * u : u < 0.5 ? a : b;
      if (Math.abs(y - my) < bd) { bd = Math.abs(y - my); best = i; }
    }
    setHighlight(best);
    if (best >= 0) showTip(ev, best, axes); else hideTip();
  });
  svg.addEventListener("mouseleave", () => { setHighlight(-1); hideTip(); });
  hiHooks.pc = (i) => hi.setAttribute("d", i < 0 ? "" : pathOf(ys[i], xs));
  host.appendChild(svg);
}
function pcAxis(c, s, x, gap, m, ih, Y, svg) {
  const g = sv("g", {class: "ax" + (c.kind === "metric" ? " ax-metric" : ""), "data-col": c.key});
  // centred labels fit between the axes and inside the chart (the outer axes have half a gap)
  const edge = Math.min(x, Number(svg.getAttribute("width")) - x) * 2;
  const room = Math.max(6, Math.floor(Math.min(gap, edge) / 7));
  const text = (cls, y, words) => sv("text", {class: cls, x, y, "text-anchor": "middle"}, words);
  g.appendChild(sv("line", {class: "ax-line", x1: x, x2: x, y1: m.t, y2: m.t + ih}));
  g.appendChild(text("ax-step", m.t - 46,
    cut(c.kind === "metric" ? "metric \u00b7 " + c.step : c.step, room)));
  const name = text("ax-name", m.t - 30, cut(shortName(c), room));
  name.appendChild(sv("title", {}, (c.keys || [c.key]).join(" = ")));
  g.appendChild(name);
  if (c.kind === "metric") {
    g.appendChild(text("ax-better", m.t - 15, (gap >= 120 ? "best at top: " : "top: ") +
      (metricDir(c) > 0 ? "highest" : "lowest")));
  } else if (s.log) {
    g.appendChild(text("ax-better", m.t - 15, "log scale"));
  }
  // tick labels, top down, skipping any that would overlap the one above
  const marks = (s.cat ? s.ticks() : s.ticks(5)).sort((a, b) => b[0] - a[0]);
  let lastY = -Infinity;
  for (const [t, label] of marks) {
    const y = Y(t);
    if (y - lastY < 13) continue;
    lastY = y;
    g.appendChild(sv("line", {class: "ax-line", x1: x - 4, x2: x, y1: y, y2: y}));
    const room = Math.max(4, Math.floor(Math.min(gap, x - 7) / 8));
    const tick = sv("text", {class: "ax-tick", x: x - 7, y: y + 4, "text-anchor": "end"},
      cut(label, room));
    if (label.length > room) tick.appendChild(sv("title", {}, label));
    g.appendChild(tick);
  }
  // brushing: drag along the axis to keep the runs in a range; a click clears it
  const brush = sv("rect", {class: "ax-brush", x: x - 7, width: 14, y: 0, height: 0,
    visibility: "hidden"});
  const b = state.brushes.get(c.key);
  if (b) {
    brush.setAttribute("y", Y(b.hi));
    brush.setAttribute("height", Y(b.lo) - Y(b.hi));
    brush.setAttribute("visibility", "visible");
  }
  g.appendChild(brush);
  const hit = sv("rect", {class: "ax-hit", x: x - 14, width: 28, y: m.t - 4, height: ih + 8});
  hit.addEventListener("mousedown", (ev) => {
    ev.preventDefault();
    const top = svg.getBoundingClientRect().top;
    const clamp = (y) => Math.max(m.t, Math.min(m.t + ih, y - top));
    const y0 = clamp(ev.clientY);
    let y1 = y0;
    const move = (e) => {
      y1 = clamp(e.clientY);
      brush.setAttribute("y", Math.min(y0, y1));
      brush.setAttribute("height", Math.abs(y1 - y0));
      brush.setAttribute("visibility", "visible");
    };
    const up = () => {
      window.removeEventListener("mousemove", move);
      window.removeEventListener("mouseup", up);
      if (Math.abs(y1 - y0) < 3) state.brushes.delete(c.key);
      else {
        const tTop = 1 - (Math.min(y0, y1) - m.t) / ih, tBottom = 1 - (Math.max(y0, y1) - m.t) / ih;
        state.brushes.set(c.key, {scale: s, lo: tBottom, hi: tTop});
      }
      redrawAll(false);
    };
    window.addEventListener("mousemove", move);
    window.addEventListener("mouseup", up);
  });
  g.appendChild(hit);
  return g;
}

// -- the runs table -----------------------------------------------------------------------
const T = {cols: [], order: [], shown: 0, rows: new Map(), tbody: null, more: null, prev: -1};
function runColumns() {
  const out = [{id: "run", label: "run", group: "run", key: (i) => RUNS[i].id,
    render: (td, i) => {
      const id = RUNS[i].id, dash = id.lastIndexOf("-");
      td.className = "id";
      td.title = id;
      let host = td;
      if (D.link !== undefined) {  // in zentrack ui: the id opens the run's page
        let href = null;
        try { href = D.link + encodeURIComponent(id); } catch (e) { /* a lone surrogate */ }
        if (href !== null) {
          host = el("a");
          host.href = href;
          td.appendChild(host);
        }
      }
      if (dash > 0) host.append(el("span", "ts", id.slice(0, dash + 1)), id.slice(dash + 1));
      else host.textContent = id;
    }}];
  if (D.pipelines.length > 1) {
    out.push({id: "pipeline", label: "pipeline", group: "run",
      key: (i) => D.pipelines[RUNS[i].p],
      render: (td, i) => {
        td.textContent = cut(D.pipelines[RUNS[i].p], 32);
        td.title = D.pipelines[RUNS[i].p];
      }});
  }
  // runs all started on one day show the time alone (the header gives the day)
  const days = new Set(RUNS.filter((r) => r.t0).map((r) => when(r.t0).slice(0, 10)));
  out.push({id: "started", label: "started", group: "run", key: (i) => RUNS[i].t0,
    render: (td, i) => {
      const text = when(RUNS[i].t0);
      td.textContent = days.size === 1 ? text.slice(11) : text;
      td.title = text;
    }});
  const took = (r) => (r.t0 && r.t1 ? Math.max(0, r.t1 - r.t0) : null);
  out.push({id: "duration", label: "duration", group: "run", num: true,
    key: (i) => took(RUNS[i]),
    render: (td, i) => {
      const r = RUNS[i], s = took(r);
      td.className = "num";
      td.textContent = s !== null ? duration(s) : r.s === "RUNNING" ? "running" : "";
    }});
  out.push({id: "state", label: "state", group: "run", key: (i) => RUNS[i].s,
    render: (td, i) => {
      const s = RUNS[i].s, known = ["COMPLETE", "FAILED", "RUNNING", "CANCELED"].includes(s);
      td.appendChild(el("span", "pill " + (known ? s : "OTHER"), s.toLowerCase()));
    }});
  return out;
}
// Tags every run has are listed with the parameters every run has; the others, and the
// note, get a last column when any run has some: chips, then the note's start (all on hover).
const TAG_LISTS = RUNS.map((r) => Object.entries(r.tg || {}).map(([k, v]) => k + "=" + v));
const SHARED_TAGS = TAG_LISTS.length
  ? TAG_LISTS.reduce((common, tags) => common.filter((t) => tags.includes(t))) : [];
function tagColumns() {
  const own = TAG_LISTS.map((tags) => tags.filter((t) => !SHARED_TAGS.includes(t)));
  if (!RUNS.some((r, i) => own[i].length || r.n)) return [];
  return [{id: "tags", label: "tags \u00b7 note", group: "tags",
    key: (i) => [...own[i], RUNS[i].n || ""].join(" ").trim() || null,
    render: (td, i) => {
      const r = RUNS[i];
      td.className = "tags";
      for (const t of own[i]) td.appendChild(el("span", "tag", cut(t, 32)));
      if (r.n) td.appendChild(el("span", "note", "\u270e " + cut(r.n.split("\n")[0], 28)));
      td.title = [...own[i], ...(r.n ? [r.n] : [])].join("\n");
    }}];
}
function dataColumn(c) {
  let best = NaN;
  if (c.type === "num" && c.kind === "metric" && c.spread > 1) {
    const dir = metricDir(c);
    for (const v of c.num) if (v === v && (best !== best || dir * v > dir * best)) best = v;
  }
  const nonFinite = {"NaN": NaN, "inf": Infinity, "-inf": -Infinity};
  return {
    id: "c" + c.idx, col: c, label: c.name, step: c.step, group: c.kind, num: c.type === "num",
    key: (i) => {
      const v = c.values[i];
      return c.type === "num" && typeof v === "string" ? nonFinite[v] : v;
    },
    render: (td, i) => {
      const text = cellText(c, i), isBest = c.num[i] === best;
      const cls = [c.type === "num" ? "num" : ""];
      if (c.kind === "param") cls.push(c.varies ? "differs" : "same");
      if (text === null) { td.textContent = "\u2014"; cls.push("miss"); }
      else if (typeof c.values[i] === "string" && c.type === "num") cls.push("nonfinite");
      if (isBest) { td.appendChild(el("span", "", text)); cls.push("best"); }
      else if (text !== null) td.textContent = cut(text);
      td.className = cls.join(" ");
      td.title = (isBest ? "best " + c.name + ": " : "") + fullText(c, i);
    },
  };
}
function sortedRuns(cols) {
  const order = [];
  for (let i = 0; i < N; i++) if (state.visible[i]) order.push(i);
  const by = cols.find((tc) => tc.id === state.sortKey);
  if (!by) return order;
  const keys = new Array(N);
  for (const i of order) keys[i] = by.key(i);
  // missing values last, then NaN, whichever way the column is sorted
  const group = (v) => (v === null || v === undefined ? 2 : v !== v ? 1 : 0);
  return order.sort((a, b) => {
    const ka = keys[a], kb = keys[b], ga = group(ka), gb = group(kb);
    if (ga !== gb || ga) return ga - gb || a - b;
    const r = typeof ka === "string" || typeof kb === "string"
      ? COLLATE.compare(String(ka), String(kb)) : ka < kb ? -1 : ka > kb ? 1 : 0;
    return state.sortDir * r || a - b;
  });
}
function tableHead(cols) {
  const thead = el("thead"), groups = el("tr", "zt-groups"), names = el("tr", "zt-names");
  const spans = [];
  for (const tc of cols) {
    if (!spans.length || spans[spans.length - 1][0] !== tc.group) spans.push([tc.group, 0]);
    spans[spans.length - 1][1] += 1;
  }
  const groupName = {param: state.showSame ? "parameters" : "parameters that differ",
    metric: "metrics"};
  for (const [group, n] of spans) {
    const th = el("th", "", groupName[group] || "");
    th.colSpan = n;
    groups.appendChild(th);
  }
  for (const tc of cols) {
    const th = el("th", tc.num ? "num" : "");
    const c = tc.col;
    if (c) th.classList.add(c.kind === "metric" ? "metric" : c.varies ? "differs" : "same");
    const button = el("button");
    button.type = "button";
    button.dataset.sort = tc.id;
    if (c) button.dataset.key = c.key;
    if (tc.step !== undefined) button.appendChild(el("span", "st", tc.step));
    const name = el("span", "nm", cut(tc.label, 28));
    const arrow = state.sortDir > 0 ? "\u25b2" : "\u25bc";
    if (state.sortKey === tc.id) name.appendChild(el("span", "ar", arrow));
    button.appendChild(name);
    button.title = (c ? (c.keys || [c.key]).join(" = ") +
      (c.kind === "param" && c.varies ? " (differs between runs)" : "") + " \u2014 " : "") +
      "click to sort";
    button.addEventListener("click", () => {
      if (state.sortKey === tc.id) state.sortDir = -state.sortDir;
      else {
        state.sortKey = tc.id;
        state.sortDir = c && c.kind === "metric" ? -metricDir(c) : 1;  // best first
      }
      buildTable();
    });
    th.appendChild(button);
    const sorted = state.sortDir > 0 ? "ascending" : "descending";
    th.setAttribute("aria-sort", state.sortKey === tc.id ? sorted : "none");
    names.appendChild(th);
  }
  thead.append(groups, names);
  return thead;
}
function rowOf(i) {
  let tr = T.rows.get(i);
  if (tr) return tr;
  tr = el("tr");
  tr.dataset.run = i;
  for (const tc of T.cols) {
    const td = el("td");
    tc.render(td, i);
    tr.appendChild(td);
  }
  tr.addEventListener("mouseenter", () => setHighlight(i));
  tr.addEventListener("mouseleave", () => setHighlight(-1));
  T.rows.set(i, tr);
  return tr;
}
function moreRows(all) {
  const end = all ? T.order.length : Math.min(T.order.length, T.shown + PAGE);
  const rows = document.createDocumentFragment();
  for (let k = T.shown; k < end; k++) rows.appendChild(rowOf(T.order[k]));
  T.tbody.appendChild(rows);
  T.shown = end;
  const left = T.order.length - T.shown;
  T.more.hidden = left === 0;
  const cell = T.more.firstChild;
  cell.textContent = "";
  if (left) {
    const all = el("button", "zt-link", "show all");
    all.id = "zt-show-all";
    all.addEventListener("click", () => moreRows(true));
    cell.append(left + " more run" + (left === 1 ? "" : "s") + " below: scroll, or ", all);
  }
}
function buildTable() {
  const table = document.getElementById("zt-table");
  table.textContent = "";
  T.cols = [...runColumns(), ...PARAMS.filter((c) => c.varies || state.showSame).map(dataColumn),
    ...METRICS.map(dataColumn), ...tagColumns()];
  T.order = sortedRuns(T.cols);
  T.rows = new Map();
  T.shown = 0;
  T.prev = -1;
  T.tbody = el("tbody");
  const foot = el("tfoot");
  T.more = el("tr");
  const cell = el("td", "zt-more");
  cell.colSpan = T.cols.length;
  T.more.appendChild(cell);
  foot.appendChild(T.more);
  table.append(tableHead(T.cols), T.tbody, foot);
  moreRows(false);
  hiHooks.table = (i) => {
    const prev = T.rows.get(T.prev), now = T.rows.get(i);
    if (prev) prev.classList.remove("hi");
    if (now) now.classList.add("hi");
    T.prev = i;
  };
  const tools = document.getElementById("zt-table-tools");
  tools.textContent = "";
  const shown = T.order.length;
  tools.appendChild(el("span", "", shown === N ? N + " run" + (N === 1 ? "" : "s")
    : shown + " of " + N + " runs selected"));
  const same = PARAMS.filter((c) => !c.varies).length;
  if (same) {
    const label = el("label");
    const box = el("input");
    box.type = "checkbox";
    box.id = "zt-show-same";
    box.checked = state.showSame;
    box.addEventListener("change", () => { state.showSame = box.checked; buildTable(); });
    label.append(box, "show the " + same + " parameter" + (same === 1 ? " that is" : "s that are") +
      " the same in every run");
    tools.appendChild(label);
  }
}
function buildConstants() {
  const host = document.getElementById("zt-constants");
  const same = PARAMS.filter((c) => !c.varies);
  if (!same.length && !SHARED_TAGS.length) return;
  host.append("Same in every run: ");
  for (const t of SHARED_TAGS) {
    const chip = el("span", "chip");
    chip.append(el("i", "", "tag "), cut(t, 40));
    chip.title = "tag " + t;
    host.appendChild(chip);
  }
  for (const c of same) {
    const i = c.values.findIndex((v) => v !== null);
    const chip = el("span", "chip");
    chip.append(el("i", "", c.key + " = "), i < 0 ? "\u2014" : cut(cellText(c, i), 40));
    chip.title = c.key + " = " + (i < 0 ? "(absent)" : fullText(c, i));
    host.appendChild(chip);
  }
}

// -- each metric against each varying parameter ------------------------------------------------
function drawScatter(width) {
  const host = document.getElementById("zt-scatter");
  host.textContent = "";
  hiHooks.scatter = null;
  const metrics = NUM_METRICS.filter((c) => c.spread > 1);
  if (!N || !NUM_METRICS.length) return empty(host, "No numeric metrics to plot.");
  if (!metrics.length) return empty(host, "Every metric has the same value in every run.");
  if (!VARY_PARAMS.length) return empty(host, "No parameter varies between these runs.");
  const colour = metrics.filter((c) => c.key === state.color);
  const gapX = 14, avail = Math.max(width, 200);
  const per = Math.min(VARY_PARAMS.length, Math.max(1, Math.floor((avail + gapX) / 214)));
  const W = Math.min(330, Math.floor((avail - (per - 1) * gapX) / per));
  const H = Math.max(150, Math.min(200, Math.round(W * 0.68)));
  const rings = [];
  for (const mc of [...colour, ...metrics.filter((c) => c.key !== state.color)]) {
    const group = el("div", "sc-group");
    const title = el("h3", "", shortName(mc));
    const bad = mc.values.filter((v) => typeof v === "string").length;
    title.appendChild(el("small", "", (metricDir(mc) > 0 ? "higher" : "lower") + " is better" +
      (bad ? " \u00b7 " + bad + " run" + (bad === 1 ? "" : "s") + " with NaN/inf not plotted"
        : "")));
    const grid = el("div", "sc-grid");
    for (const pc of VARY_PARAMS) grid.appendChild(scatterCell(mc, pc, W, H, rings));
    group.append(title, grid);
    host.appendChild(group);
  }
  hiHooks.scatter = (i) => { for (const f of rings) f(i); };
}
function scatterCell(mc, pc, W, H, rings) {
  const m = {t: 6, r: 10, b: 30, l: 44}, iw = W - m.l - m.r, ih = H - m.t - m.b;
  const cell = el("div", "sc-cell"), title = el("div", "sc-title");
  title.append("vs ", el("b", "", cut(shortName(pc), 30)));
  title.title = (pc.keys || [pc.key]).join(" = ");
  const svg = sv("svg", {width: W, height: H, class: "sc"});
  const xs = scaleOf(pc, false), ys = scaleOf(mc, false);
  // categories sit in the middle of equal bands; numbers span the frame less a margin
  const L = xs.cat ? xs.used.length : 0;
  const X = (t) => m.l + (L ? (Math.round((1 - t) * (L - 1)) + 0.5) / L : 0.04 + 0.92 * t) * iw;
  const Y = (t) => m.t + (1 - (0.05 + 0.9 * t)) * ih;
  svg.appendChild(sv("rect", {class: "frame", x: m.l, y: m.t, width: iw, height: ih}));
  let lastY = Infinity;
  for (const [t, label] of ys.ticks(4).sort((a, b) => a[0] - b[0])) {
    const y = Y(t);
    if (lastY - y < 13) continue;
    lastY = y;
    svg.appendChild(sv("line", {class: "grid", x1: m.l + 1, x2: m.l + iw - 1, y1: y, y2: y}));
    svg.appendChild(sv("text", {class: "ax-tick", x: m.l - 5, y: y + 4, "text-anchor": "end"},
      label));
  }
  const room = L ? Math.max(4, Math.floor(iw / Math.min(L, 5) / 7)) : 10;
  let lastRight = -Infinity;
  const marks = (xs.cat ? xs.ticks() : xs.ticks(3)).map(([t, label]) => [X(t), label]);
  for (const [x, label] of marks.sort((a, b) => a[0] - b[0])) {
    const half = Math.min(label.length, room) * 3.4 + 4;
    if (x - half < lastRight) continue;
    lastRight = x + half;
    svg.appendChild(sv("line", {class: "grid", x1: x, x2: x, y1: m.t + 1, y2: m.t + ih - 1}));
    const tick = sv("text", {class: "ax-tick", x, y: m.t + ih + 15, "text-anchor": "middle"},
      cut(label, room));
    tick.appendChild(sv("title", {}, label));
    svg.appendChild(tick);
  }
  // one path of dots per colour band: a few elements whatever the number of runs
  const paths = new Map(), where = new Map();
  const jitter = L ? Math.min(iw / L * 0.5, 26) : 0;
  for (let i = 0; i < N; i++) {
    const tx = xs.t(i), ty = ys.t(i);
    if (tx !== tx || ty !== ty) continue;
    const x = X(tx) + (L ? ((i * 2654435761) % 1000 / 1000 - 0.5) * jitter : 0), y = Y(ty);
    const t = state.ct[i];
    const band = !state.visible[i] ? -2 : t === t ? Math.min(11, Math.floor(t * 12)) : -1;
    where.set(i, [x, y]);
    paths.set(band, (paths.get(band) || "") + "M" + x.toFixed(1) + " " + y.toFixed(1) + "h0");
  }
  const big = N > 300;
  for (const band of [...paths.keys()].sort((a, b) => a - b)) {
    const stroke = band === -2 ? OUT_COLOR : band === -1 ? NO_COLOR : ramp((band + 0.5) / 12);
    svg.appendChild(sv("path", {d: paths.get(band), stroke, class: "sc-dots",
      "stroke-width": big ? 5 : 7, "stroke-linecap": "round", "stroke-opacity": big ? .7 : .9}));
  }
  const ring = sv("circle", {r: 6.5, fill: "none", stroke: "#111", "stroke-width": 2,
    visibility: "hidden"});
  svg.appendChild(ring);
  rings.push((i) => {
    const p = where.get(i);
    ring.setAttribute("visibility", p ? "visible" : "hidden");
    if (p) { ring.setAttribute("cx", p[0]); ring.setAttribute("cy", p[1]); }
  });
  svg.addEventListener("mousemove", (ev) => {
    const r = svg.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top;
    let best = -1, bd = 100;
    for (const [i, [x, y]] of where) {
      const dd = (x - mx) ** 2 + (y - my) ** 2;
      if (dd < bd && state.visible[i]) { bd = dd; best = i; }
    }
    setHighlight(best);
    if (best >= 0) showTip(ev, best, [pc, mc]); else hideTip();
  });
  svg.addEventListener("mouseleave", () => { setHighlight(-1); hideTip(); });
  cell.append(title, svg);
  return cell;
}

function sortBest(c) {  // the table reads as a leaderboard of the colour metric
  if (!c) return;
  state.sortKey = "c" + c.idx;
  state.sortDir = -metricDir(c);
}

// -- all together -------------------------------------------------------------------------
function redrawAll(tools = true) {
  const t0 = performance.now();
  // widths first: read before anything is built, so no half-built page is laid out to answer
  const pcWidth = document.getElementById("zt-pc").clientWidth;
  const scatterWidth = document.getElementById("zt-scatter").clientWidth;
  const shown = applyFilter();
  colourRuns();
  if (tools) buildTools();
  buildBest();
  buildHint(shown);
  drawPC(pcWidth);
  buildTable();
  drawScatter(scatterWidth);
  state.highlight = -1;
  window.ztBuildMs = performance.now() - t0;
}
sortBest(byKey.get(state.color));
buildConstants();
redrawAll();
const wrap = document.querySelector(".zt-table-wrap");
wrap.addEventListener("scroll", () => {
  if (T.shown < T.order.length && wrap.scrollTop + wrap.clientHeight > wrap.scrollHeight - 400) {
    moreRows(false);
  }
});
let resizeTimer = 0, lastWidth = document.getElementById("zt-pc").clientWidth;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    const width = document.getElementById("zt-pc").clientWidth;
    if (width !== lastWidth) { lastWidth = width; redrawAll(false); }
  }, 150);
});
window.ztReady = true;
})();
