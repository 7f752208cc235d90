// The queue table: one row per queue, kept across polls (keyed by topic), sorted, filtered, with sparklines; the
// selected queue opens a detail row under it (every figure, the explanation, the last error, its chart). Of many
// queues only the rows in (or near) view are in the document and kept up to date (viewport.js).

import { hhmm } from "./clock.js";
import { el, setAttr, setInput, setText } from "./dom.js";
import { duration } from "./format.js";
import { number, percent, t } from "./i18n.js";
import { RowWindow } from "./viewport.js";

/** Speeds kept per queue for the sparkline while the server's history is not known: a minute of polls. */
const HISTORY = 40;
const NUMERIC = new Set(["priority", "workers", "consumed", "pending", "failures", "dead", "speed", "eta_s", "progress"]);
const STATES = ["running", "waiting", "failing", "no-worker", "paused", "base-paused", "idle", "done"];
/** The columns of the table; those marked `wide` fold into the detail row on narrower screens (screen.css). */
const COLUMNS = [
  ["topic", "topic"], ["kind", "wide"], ["priority", "priority"], ["state", "state-cell"], ["workers", "num"],
  ["base", "wide"], ["progress", "progress"], ["consumed", "num wide"], ["pending", "num wide"],
  ["failures", "num wide"], ["dead", "num wide"], ["speed", "num speed"], ["eta", "num"], ["actions", ""],
];
/** The detail row's figures: [data-field, message key]. */
const DETAILS = [
  ["kind", "col.kind"], ["priority", "col.priority"], ["workers", "col.workers"], ["base", "col.base"],
  ["consumed", "col.consumed"], ["pending", "col.pending"], ["in-flight", "detail.inFlight"],
  ["failures", "col.failures"], ["dead", "col.dead"], ["duplicates", "detail.duplicates"],
  ["speeds", "detail.speeds"], ["eta", "col.eta"],
];

/** The speed the screen shows first: the last ~10 s (the 1-minute figure from a coordinator without it). */
export function speedNow(queue) {
  return queue.speed_10s ?? queue.speed;
}

/** A speed in msgs/s: no decimals from 100 up, one below, "0" for nothing. */
export function speedText(value) {
  if (value === null || value === undefined) return "—";
  if (value === 0) return number(0);
  return number(value, value >= 100 ? 0 : 1);
}

function progress(queue) {
  const total = queue.consumed + queue.pending;
  return total > 0 ? queue.consumed / total : null;
}

function sortValue(queue, key) {
  if (key === "progress") return progress(queue);
  if (key === "speed") return speedNow(queue);
  return queue[key];
}

export class QueueTable {
  /** `actions`: {up(topic), down(topic), set(topic, input), pause(topic), resume(topic), select(topic)};
   *  `sparklines(topic)`: done per minute of the last half hour from the server, or null. */
  constructor(tbody, thead, actions, sparklines = () => null) {
    this.tbody = tbody;
    this.thead = thead;
    this.actions = actions;
    this.sparklines = sparklines;
    this.rows = new Map();
    this.speeds = new Map();
    this.sort = { key: null, descending: false };
    this.filter = { base: "", kind: "", text: "" };
    this.selected = null;
    this.canAct = false;
    this.last = [];
    this.shown = []; // the queues that match the filter, in the table's order
    this.labelSet = null; // the messages of the last render
    this.version = 0; // which render a row's figures come from: a row scrolled into view is updated once
    this.detail = this.createDetail();
    this.view = new RowWindow(tbody, COLUMNS.length, () => this.paint());
    this.listen(tbody);
    thead.addEventListener("click", (event) => {
      const th = event.target.closest("th[data-sort]");
      if (th) this.sortBy(th.dataset.sort);
    });
  }

  sortBy(key) {
    if (this.sort.key === key) this.sort.descending = !this.sort.descending;
    else this.sort = { key, descending: NUMERIC.has(key) };
    for (const th of this.thead.querySelectorAll("th[data-sort]")) {
      const active = th.dataset.sort === this.sort.key;
      if (active) th.setAttribute("aria-sort", this.sort.descending ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    }
    this.render(this.last, { fresh: false });
  }

  /** Show `queues` (the status answer's, in the server's order); `fresh`: a new poll, so sparklines move. */
  render(queues, { fresh = true } = {}) {
    this.last = queues;
    const seen = new Set();
    for (const queue of queues) {
      seen.add(queue.topic);
      if (fresh) this.remember(queue);
    }
    for (const [topic, row] of this.rows) {
      if (!seen.has(topic)) {
        row.tr.remove();
        this.rows.delete(topic);
      }
    }
    for (const topic of this.speeds.keys()) if (!seen.has(topic)) this.speeds.delete(topic);
    this.shown = this.ordered(queues.filter((q) => this.matches(q)));
    this.labelSet = this.labels();
    this.version += 1;
    this.paint();
    return { shown: this.shown.length, total: queues.length };
  }

  /** Put the rows in (or near) view in the table, each brought up to the last render once, and the detail row
   *  under the selected queue's row when that row is among them. */
  paint() {
    const { shown, version, labelSet } = this;
    const at = shown.findIndex((q) => q.topic === this.selected);
    const { first, last } = this.view.range(shown.length, at);
    const trs = [];
    for (let i = first; i < last; i += 1) {
      const q = shown[i];
      const row = this.rows.get(q.topic) ?? this.create(q.topic);
      if (row.version !== version) {
        this.update(row, q, labelSet);
        row.version = version;
      }
      setAttr(row.tr, "aria-rowindex", i + 2); // the head's row is the first
      trs.push(row.tr);
      if (i === at) trs.push(this.detail.tr);
    }
    this.placeDetail(at < 0 ? null : shown[at], at >= first && at < last);
    this.view.show(first, last, trs, this.detail.tr);
  }

  /** The messages every row shows, looked up once per render. */
  labels() {
    const states = {};
    for (const state of STATES) states[state] = t(`state.${state}`);
    return {
      states,
      pause: t("action.pause"),
      resume: t("action.resume"),
      up: t("action.up"),
      down: t("action.down"),
      set: t("action.set"),
    };
  }

  remember(queue) {
    let history = this.speeds.get(queue.topic);
    if (!history) this.speeds.set(queue.topic, (history = []));
    history.push(speedNow(queue));
    if (history.length > HISTORY) history.shift();
  }

  matches(queue) {
    const { base, kind, text } = this.filter;
    if (base && queue.base !== base) return false;
    if (kind && queue.kind !== kind) return false;
    return !text || queue.topic.toUpperCase().includes(text.toUpperCase());
  }

  ordered(queues) {
    const { key, descending } = this.sort;
    if (!key) return queues;
    const sign = descending ? -1 : 1;
    return [...queues].sort((a, b) => {
      const x = sortValue(a, key) ?? null;
      const y = sortValue(b, key) ?? null;
      if (x === y) return a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0;
      if (x === null) return 1; // unknown (an ETA) last either way
      if (y === null) return -1;
      return (x < y ? -1 : 1) * sign;
    });
  }

  /** A new row, cloned from `rowTemplate()`: cloning is several times faster than building 2,000 rows. */
  create(topic) {
    this.template ??= rowTemplate();
    const tr = this.template.cloneNode(true);
    tr.dataset.topic = topic;
    const cells = {};
    COLUMNS.forEach(([col], i) => {
      cells[col] = tr.children[i];
    });
    const [priority, up, down] = cells.priority.firstChild.children;
    const [pause, resume] = cells.actions.firstChild.children;
    const [state, error] = cells.state.children;
    const [bar, done] = cells.progress.children;
    const [speed, spark, speeds] = cells.speed.children;
    cells.topic.textContent = topic;
    cells.topic.title = topic;
    const controls = { priority, up, down, pause, resume };
    const row = { tr, cells, controls, parts: { state, error, bar, done, speed, speeds, spark }, version: 0 };
    this.rows.set(topic, row);
    return row;
  }

  /** One listener per kind of event for every row (rows come and go with the polls): a control acts, a click
   *  elsewhere on a row selects its queue, typing in a priority marks it edited (the next poll leaves it). */
  listen(tbody) {
    const topicOf = (target) => target.closest("tr[data-topic]")?.dataset.topic;
    tbody.addEventListener("click", (event) => {
      const topic = topicOf(event.target);
      if (topic === undefined) return;
      const control = event.target.closest("[data-action]");
      if (control === null) this.actions.select(topic);
      else if (control.tagName === "BUTTON") this.actions[control.dataset.action](topic);
    });
    tbody.addEventListener("change", (event) => {
      const topic = topicOf(event.target);
      if (topic !== undefined && event.target.dataset.action === "set-priority") this.actions.set(topic, event.target);
    });
    tbody.addEventListener("input", (event) => {
      if (event.target.dataset.action === "set-priority") event.target.dataset.dirty = "1";
    });
  }

  update(row, q, labels) {
    const { cells, controls, parts } = row;
    setText(cells.kind, q.kind);
    setInput(controls.priority, q.priority);
    setText(parts.state, stateText(q, labels));
    setAttr(parts.state, "class", `state state-${q.state}`);
    const error = q.state === "failing" ? (q.last_error ?? "") : "";
    setText(parts.error, error);
    setAttr(cells.state, "title", error);
    setText(cells.workers, workersText(q));
    setText(cells.base, baseText(q));
    const done = progress(q);
    const width = `${done === null ? 0 : Math.round(done * 100)}%`;
    if (parts.bar.firstChild.style.width !== width) parts.bar.firstChild.style.width = width;
    setText(parts.done, done === null ? "—" : percent(Math.floor(done * 100) / 100));
    setAttr(cells.progress, "title", `${number(q.consumed)} / ${number(q.consumed + q.pending)}`);
    setText(cells.consumed, number(q.consumed));
    setText(cells.pending, number(q.pending));
    setText(cells.failures, number(q.failures));
    setText(cells.dead, number(q.dead));
    setText(parts.speed, speedText(speedNow(q)));
    setText(parts.speeds, q.speed_1h === undefined ? "" : speedsText(q));
    drawSparkline(parts.spark, ...this.sparkPoints(q));
    setText(cells.eta, duration(q.eta_s));
    const paused = q.state === "paused";
    if (controls.pause.hidden !== paused) controls.pause.hidden = paused;
    if (controls.resume.hidden === paused) controls.resume.hidden = !paused;
    setText(controls.pause, labels.pause);
    setText(controls.resume, labels.resume);
    setAttr(controls.up, "title", labels.up);
    setAttr(controls.down, "title", labels.down);
    setAttr(controls.priority, "title", labels.set);
    for (const control of Object.values(controls)) if (control.disabled === this.canAct) control.disabled = !this.canAct;
    const selected = this.selected === q.topic;
    if (row.tr.classList.contains("selected") !== selected) row.tr.classList.toggle("selected", selected);
  }

  /** msgs/s per point and the points the line has room for: the server's minutes (done / 60) then the speed
   *  now; else the speeds this page saw, growing from the right. */
  sparkPoints(q) {
    const minutes = this.sparklines(q.topic);
    if (!minutes) return [this.speeds.get(q.topic) || [], HISTORY];
    return [[...minutes.map((done) => done / 60), speedNow(q)], minutes.length + 1];
  }

  /** Select `topic` (its detail row opens under it), or close it when it is already selected. */
  select(topic) {
    this.selected = this.selected === topic ? null : topic;
    for (const [name, row] of this.rows) row.tr.classList.toggle("selected", name === this.selected);
    this.paint();
    return this.selected;
  }

  createDetail() {
    const fields = {};
    const figures = el("dl", { class: "figures" });
    for (const [field, key] of DETAILS) {
      const dt = el("dt", { "data-i18n": key, text: t(key) });
      fields[field] = el("dd", { "data-field": field });
      figures.append(dt, fields[field]);
    }
    const explanation = el("p", { class: "explain" },
      el("strong", { id: "explain-topic" }), " ", el("span", { id: "explain-reason", class: "muted" }));
    const error = el("p", { class: "last-error", "data-field": "last-error", hidden: true });
    const chart = el("div", { class: "chart-box", "data-field": "queue-chart" });
    const td = el("td", { colspan: String(COLUMNS.length) },
      el("div", { class: "detail-grid" }, el("div", {}, explanation, error, figures), chart));
    const tr = el("tr", { class: "detail", hidden: true }, td);
    return { tr, fields, error, chart };
  }

  /** Fill the detail row with `q`'s figures (the selected queue's, null: none shown); `inView`: whether its row is
   *  in the document (the detail row stays there, hidden, while it is not: the explanation is found by its id). */
  placeDetail(q, inView) {
    const { tr, fields, error } = this.detail;
    if (tr.hidden !== (q === null || !inView)) tr.hidden = q === null || !inView;
    if (q === null) return;
    for (const dt of tr.querySelectorAll("dt[data-i18n]")) setText(dt, t(dt.dataset.i18n));
    setText(fields.kind, q.kind);
    setText(fields.priority, number(q.priority));
    setText(fields.workers, workersText(q));
    setText(fields.base, baseText(q));
    setText(fields.consumed, number(q.consumed));
    setText(fields.pending, number(q.pending));
    setText(fields["in-flight"], number(q.in_flight));
    setText(fields.failures, number(q.failures));
    setText(fields.dead, number(q.dead));
    setText(fields.duplicates, number(q.duplicates));
    setText(fields.speeds, t("speed.all", { now: speedText(speedNow(q)), more: speedsText(q) }));
    setText(fields.eta, duration(q.eta_s));
    error.hidden = !q.last_error;
    const attempt = q.last_error_attempt;
    const words = attempt ? t("detail.lastErrorAttempt", { attempt, error: q.last_error }) : t("detail.lastError", { error: q.last_error });
    setText(error, q.last_error ? words : "");
  }
}

/** The row every queue's row is cloned from: its cells in `COLUMNS`' order, its controls and figures empty. */
function rowTemplate() {
  const tr = el("tr");
  for (const [col, cls] of COLUMNS) tr.append(el("td", { "data-col": col, class: cls }));
  const cell = (col) => tr.children[COLUMNS.findIndex(([name]) => name === col)];
  const priority = el("input", { type: "number", min: "0", max: "9", step: "1", "data-action": "set-priority" });
  cell("priority").append(el("div", { class: "buttons" }, priority,
    el("button", { type: "button", "data-action": "up", text: "▲" }),
    el("button", { type: "button", "data-action": "down", text: "▼" })));
  cell("actions").append(el("div", { class: "buttons" },
    el("button", { type: "button", "data-action": "pause", class: "danger" }),
    el("button", { type: "button", "data-action": "resume" })));
  cell("state").append(el("span", { class: "state" }), el("span", { class: "state-error" }));
  cell("progress").append(el("span", { class: "bar" }, el("span")), el("span", { class: "percent" }));
  cell("speed").append(el("span", { class: "speed-now" }), sparkline(), el("span", { class: "speed-more" }));
  return tr;
}

function stateText(q, labels) {
  if (q.state === "done" && q.finished_at) return t("state.doneAt", { time: hhmm(q.finished_at) });
  return labels.states[q.state] ?? q.state;
}

function workersText(q) {
  return q.max_workers === null ? number(q.workers) : `${number(q.workers)}/${number(q.max_workers)}`;
}

function baseText(q) {
  const window = q.base_window ? ` · ${q.base_window}` : "";
  return `${q.base} ${number(q.base_in_use)}/${number(q.base_limit)}${window}`;
}

/** "1 min 1.903 · 1 h 1.210": the longer averages beside the speed now. */
function speedsText(q) {
  return t("speed.more", { minute: speedText(q.speed), hour: speedText(q.speed_1h ?? null) });
}

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 60;
const HEIGHT = 16;

function sparkline() {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", WIDTH);
  svg.setAttribute("height", HEIGHT);
  svg.setAttribute("aria-hidden", "true");
  svg.append(document.createElementNS(SVG, "polyline"));
  return svg;
}

function drawSparkline(svg, speeds, slots) {
  const top = Math.max(...speeds, 0);
  const step = WIDTH / Math.max(1, slots - 1);
  const offset = WIDTH - step * (speeds.length - 1);
  const points = speeds
    .map((speed, i) => {
      const y = top > 0 ? HEIGHT - 1 - (speed / top) * (HEIGHT - 2) : HEIGHT - 1;
      return `${(offset + i * step).toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
  setAttr(svg.firstChild, "points", points);
}
