// The queue table: one row per queue, kept across polls (keyed by topic), sorted, filtered, with sparklines.

import { el, setAttr, setInput, setText, trackEdits } from "./dom.js";
import { duration } from "./format.js";
import { number, t } from "./i18n.js";

/** Speeds kept per queue for the sparkline: the last minute or so at one poll every 1.5 s. */
const HISTORY = 40;
const NUMERIC = new Set(["priority", "workers", "consumed", "pending", "failures", "dead", "speed", "eta_s"]);

export class QueueTable {
  /** `actions`: {up(topic), down(topic), set(topic, input), pause(topic), resume(topic), select(topic)}. */
  constructor(tbody, thead, actions) {
    this.tbody = tbody;
    this.thead = thead;
    this.actions = actions;
    this.rows = new Map();
    this.speeds = new Map();
    this.sort = { key: null, descending: false };
    this.filter = { base: "", kind: "", text: "" };
    this.selected = null;
    this.canAct = false;
    this.last = [];
    this.order = "";
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
        this.order = "";
        this.rows.delete(topic);
        this.speeds.delete(topic);
      }
    }
    const visible = this.ordered(queues.filter((q) => this.matches(q)));
    const labels = this.labels();
    for (const queue of visible) this.update(this.rows.get(queue.topic) || this.create(queue.topic), queue, labels);
    // Moving thousands of rows costs a layout: only when the order or the filter changed.
    const order = visible.map((q) => q.topic).join("\n");
    if (order !== this.order) {
      this.order = order;
      const shown = new Set(visible.map((q) => q.topic));
      for (const [topic, row] of this.rows) if (!shown.has(topic)) row.tr.remove();
      const fragment = document.createDocumentFragment();
      for (const queue of visible) fragment.append(this.rows.get(queue.topic).tr);
      this.tbody.append(fragment);
    }
    return { shown: visible.length, total: queues.length };
  }

  /** The messages every row shows, looked up once per render. */
  labels() {
    const states = {};
    for (const state of ["running", "waiting", "no-worker", "paused", "base-paused", "idle", "done"]) states[state] = t(`state.${state}`);
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
    history.push(queue.speed);
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
      const x = a[key];
      const y = b[key];
      if (x === y) return a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0;
      if (x === null) return 1; // unknown (an ETA) last either way
      if (y === null) return -1;
      return (x < y ? -1 : 1) * sign;
    });
  }

  create(topic) {
    const cell = (col, cls = "") => el("td", { "data-col": col, class: cls });
    const cells = {
      topic: cell("topic", "topic"),
      kind: cell("kind"),
      priority: cell("priority", "priority"),
      state: cell("state"),
      workers: cell("workers", "num"),
      base: cell("base"),
      consumed: cell("consumed", "num"),
      pending: cell("pending", "num"),
      failures: cell("failures", "num"),
      dead: cell("dead", "num"),
      speed: cell("speed", "num"),
      eta: cell("eta", "num"),
      actions: cell("actions"),
    };
    const act = (name) => (event) => {
      event.stopPropagation();
      this.actions[name](topic, priority);
    };
    const priority = el("input", {
      type: "number", min: "0", max: "9", step: "1", "data-action": "set-priority",
      onchange: act("set"), onclick: (event) => event.stopPropagation(),
    });
    trackEdits(priority);
    const controls = {
      priority,
      up: el("button", { type: "button", "data-action": "up", text: "▲", onclick: act("up") }),
      down: el("button", { type: "button", "data-action": "down", text: "▼", onclick: act("down") }),
      pause: el("button", { type: "button", "data-action": "pause", class: "danger", onclick: act("pause") }),
      resume: el("button", { type: "button", "data-action": "resume", onclick: act("resume") }),
    };
    cells.topic.textContent = topic;
    cells.state.append(el("span", { class: "state" }));
    cells.speed.append(el("span"), sparkline());
    cells.priority.append(priority);
    cells.actions.append(el("div", { class: "buttons" }, controls.up, controls.down, controls.pause, controls.resume));
    const tr = el("tr", { "data-topic": topic, onclick: () => this.actions.select(topic) });
    tr.append(...Object.values(cells));
    const row = { tr, cells, controls };
    this.rows.set(topic, row);
    return row;
  }

  update(row, q, labels) {
    const { cells, controls } = row;
    setText(cells.kind, q.kind);
    setInput(controls.priority, q.priority);
    const badge = cells.state.firstChild;
    setText(badge, labels.states[q.state] ?? q.state);
    setAttr(badge, "class", `state state-${q.state}`);
    setText(cells.workers, q.max_workers === null ? number(q.workers) : `${number(q.workers)}/${number(q.max_workers)}`);
    const window = q.base_window ? ` · ${q.base_window}` : "";
    setText(cells.base, `${q.base} ${number(q.base_in_use)}/${number(q.base_limit)}${window}`);
    setText(cells.consumed, number(q.consumed));
    setText(cells.pending, number(q.pending));
    setText(cells.failures, number(q.failures));
    setText(cells.dead, number(q.dead));
    setText(cells.speed.firstChild, number(q.speed, 1));
    drawSparkline(cells.speed.lastChild, this.speeds.get(q.topic) || []);
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

  select(topic) {
    this.selected = topic;
    for (const [name, row] of this.rows) row.tr.classList.toggle("selected", name === topic);
  }
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

function drawSparkline(svg, speeds) {
  const top = Math.max(...speeds, 0);
  const step = WIDTH / Math.max(1, HISTORY - 1);
  const offset = WIDTH - step * (speeds.length - 1);
  const points = speeds
    .map((speed, i) => {
      const y = top > 0 ? HEIGHT - 1 - (speed / top) * (HEIGHT - 2) : HEIGHT - 1;
      return `${(offset + i * step).toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
  setAttr(svg.firstChild, "points", points);
}
