// A throughput chart in plain SVG, from the coordinator's minute history (GET api/figures/…): messages done and
// failed per minute above, workers in use against the limit below; time along the bottom in the site's zone.

import { hhmm } from "./clock.js";
import { el } from "./dom.js";
import { number, t, tn } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
/** Drawn one unit per CSS pixel of its box (labels keep their size in a narrow card), at least this wide. */
const MIN_WIDTH = 240;
const HEIGHT = 132;
const TOP = { y0: 14, y1: 80 }; // done/failed per minute
const LOW = { y0: 94, y1: 118 }; // workers and limit
/** The chart starts at the first minute with anything to show, and spans at least this much. */
const MIN_SPAN_MIN = 30;
const MINUTE_MS = 60_000;

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

/** One value per minute from the first minute with work (or `MIN_SPAN_MIN` back) to `now`'s minute. */
export function minuteSeries(points, now) {
  const last = Math.floor(Date.parse(now) / MINUTE_MS);
  const byMinute = new Map(points.map((p) => [Math.floor(Date.parse(p.at) / MINUTE_MS), p]));
  const active = points.filter((p) => p.done || p.failed || p.workers);
  let first = active.length ? Math.floor(Date.parse(active[0].at) / MINUTE_MS) : last;
  first = Math.min(first, last - MIN_SPAN_MIN + 1);
  const series = [];
  let limit = points.find((p) => p.limit !== undefined)?.limit ?? null; // the first known, before it too
  for (let minute = first; minute <= last; minute += 1) {
    const point = byMinute.get(minute);
    if (point && point.limit !== undefined) limit = point.limit;
    series.push({
      at: minute * MINUTE_MS,
      done: point?.done ?? 0,
      failed: point?.failed ?? 0,
      workers: point?.workers ?? 0,
      limit,
    });
  }
  return series;
}

/** Draw `points` (oldest first) into `box`, replacing what it showed; `now`: the server's clock. */
export function drawChart(box, points, now) {
  const series = minuteSeries(points, now);
  const n = series.length;
  const WIDTH = Math.max(MIN_WIDTH, Math.round(box.clientWidth));
  const x = (i) => ((i / Math.max(1, n - 1)) * WIDTH).toFixed(1);
  const peak = Math.max(1, ...series.map((p) => Math.max(p.done, p.failed)));
  const crowd = Math.max(1, ...series.map((p) => Math.max(p.workers, p.limit ?? 0)));
  const yTop = (v) => (TOP.y1 - (v / peak) * (TOP.y1 - TOP.y0)).toFixed(1);
  const yLow = (v) => (LOW.y1 - (v / crowd) * (LOW.y1 - LOW.y0)).toFixed(1);
  const line = (values, y) => values.map((v, i) => `${x(i)},${y(v)}`).join(" ");
  const steps = (values, y) =>
    values.flatMap((v, i) => (i === 0 ? [`${x(0)},${y(v)}`] : [`${x(i)},${y(values[i - 1])}`, `${x(i)},${y(v)}`]));

  const chart = svg("svg", {
    class: "chart",
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": t("chart.label", { minutes: number(n) }),
    "data-points": String(points.length),
    "data-active": String(series.filter((p) => p.done || p.failed).length),
  });
  chart.append(
    svg("line", { class: "axis", x1: 0, x2: WIDTH, y1: TOP.y1, y2: TOP.y1 }),
    svg("line", { class: "axis", x1: 0, x2: WIDTH, y1: LOW.y1, y2: LOW.y1 }),
    svg("path", {
      class: "done",
      d: `M0,${TOP.y1} L${line(series.map((p) => p.done), yTop).replaceAll(" ", " L")} L${WIDTH},${TOP.y1} Z`,
    }),
    svg("polyline", { class: "workers", points: steps(series.map((p) => p.workers), yLow).join(" ") }),
  );
  if (series.some((p) => p.failed)) {
    chart.append(svg("polyline", { class: "failed", points: line(series.map((p) => p.failed), yTop) }));
  }
  const limits = series.map((p) => p.limit);
  if (limits.some((v) => v !== null)) {
    chart.append(svg("polyline", { class: "limit", points: steps(limits.map((v) => v ?? 0), yLow).join(" ") }));
  }
  const label = (text, attributes) => {
    const node = svg("text", attributes);
    node.textContent = text;
    return node;
  };
  chart.append(
    label(t("chart.peak", { count: number(peak) }), { x: 2, y: 10, class: "label" }),
    label(tn("chart.crowd", crowd), { x: 2, y: LOW.y0 - 2, class: "label" }),
    label(hhmm(series[0].at), { x: 2, y: HEIGHT - 2, class: "label" }),
    label(hhmm(series[Math.floor(n / 2)].at), { x: WIDTH / 2, y: HEIGHT - 2, class: "label", "text-anchor": "middle" }),
    label(hhmm(series[n - 1].at), { x: WIDTH - 2, y: HEIGHT - 2, class: "label", "text-anchor": "end" }),
  );
  const legend = el("div", { class: "legend" },
    ...["done", "failed", "workers", "limit"].map((kind) =>
      el("span", {}, el("i", { class: `swatch swatch-${kind}` }), t(`chart.${kind}`))));
  box.replaceChildren(chart, legend);
}

/** Say why no chart is shown (no history kept yet, or none for this name). */
export function drawNoChart(box, words) {
  box.replaceChildren(el("p", { class: "muted chart-none", text: words }));
}
