// The bases panel: in use / limit, when the base finishes, its chart, reserved minimum, limit editing, pause, and
// the windows editor.

import { dayMonth, hhmm, sameDay } from "./clock.js";
import { clean, el, setInput, setText, trackEdits } from "./dom.js";
import { weekdays } from "./format.js";
import { list, number, t, tn } from "./i18n.js";
import { checkLimits, checkWindow } from "./validation.js";

export class BasePanel {
  /** `actions`: {saveLimits(name, body, onError), pause(name), resume(name), addWindow(name, body, onError),
   *  removeWindow(base, window, days)}; each resolves to true when the API accepted the change, and passes
   *  the API's words to `onError` (shown in the form) when it did not; `figures`: the history that draws charts. */
  constructor(container, actions, figures) {
    this.container = container;
    this.actions = actions;
    this.figures = figures;
    this.cards = new Map();
    this.canAct = false;
  }

  /** `now`: the server's clock (an ETA on another day shows its date). */
  render(bases, now) {
    this.now = now;
    const names = new Set(bases.map((b) => b.name));
    for (const [name, card] of this.cards) {
      if (!names.has(name)) {
        this.figures?.unwatch(card.c.chart);
        card.root.remove();
        this.cards.delete(name);
      }
    }
    for (const base of bases) {
      const card = this.cards.get(base.name) || this.create(base.name);
      this.update(card, base);
      this.container.append(card.root); // keeps the order by name
    }
  }

  create(name) {
    const field = (attributes) => {
      const input = el("input", { maxlength: "6", ...attributes });
      trackEdits(input);
      return input;
    };
    const c = {
      usage: el("span", { "data-field": "usage" }),
      inForce: el("span", { class: "muted", "data-field": "in-force" }),
      eta: el("div", { class: "eta", "data-field": "eta" }),
      chart: el("div", { class: "chart-box", "data-field": "base-chart" }),
      paused: el("span", { class: "base-paused", "data-field": "paused" }),
      pause: el("button", { type: "button", class: "danger", "data-action": "pause-base" }),
      resume: el("button", { type: "button", "data-action": "resume-base" }),
      max: field({ type: "number", min: "0", "data-field": "max" }),
      min: field({ type: "number", min: "0", "data-field": "min" }),
      save: el("button", { type: "submit", "data-action": "save-limits" }),
      limitsError: el("div", { class: "form-error", role: "alert", "data-field": "limits-error" }),
      windows: el("ul", { "data-field": "windows" }),
      days: list("weekdays").map((_, day) => el("input", { type: "checkbox", value: String(day), checked: day < 5 })),
      start: field({ class: "hhmm", maxlength: "5", placeholder: "08:00", "data-field": "start" }),
      end: field({ class: "hhmm", maxlength: "5", placeholder: "18:00", "data-field": "end" }),
      windowMax: field({ type: "number", min: "0", "data-field": "window-max" }),
      add: el("button", { type: "submit", "data-action": "add-window" }),
      windowError: el("div", { class: "form-error", role: "alert", "data-field": "window-error" }),
      labels: {},
    };
    const label = (key, ...children) => {
      const span = el("span", { "data-i18n": key });
      c.labels[key] = span;
      return el("label", {}, span, " ", ...children);
    };
    const limits = el("form", { class: "row", "data-form": "limits", novalidate: true },
      label("bases.default", c.max), label("bases.min", c.min), c.save);
    const weekdayBoxes = el("span", { class: "weekdays" },
      ...c.days.map((box, day) => el("label", {}, box, el("span", { "data-weekday": String(day) }))));
    const addWindow = el("form", { class: "row", "data-form": "window", novalidate: true },
      weekdayBoxes, label("window.from", c.start), label("window.to", c.end), label("window.max", c.windowMax), c.add);
    const root = el("article", { class: "card", "data-base": name },
      el("header", {}, el("strong", { text: name }), c.usage, c.paused, el("span", { class: "spacer" }), c.pause, c.resume),
      c.eta, c.inForce, c.chart, limits, c.limitsError,
      el("div", { class: "row" }, label("bases.windows")), c.windows, addWindow, c.windowError);
    limits.addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveLimits(name, c);
    });
    addWindow.addEventListener("submit", (event) => {
      event.preventDefault();
      this.addWindow(name, c);
    });
    c.pause.addEventListener("click", () => this.actions.pause(name));
    c.resume.addEventListener("click", () => this.actions.resume(name));
    const card = { root, c, windowIds: "" };
    this.cards.set(name, card);
    this.figures?.watch(c.chart, "bases", name);
    return card;
  }

  update(card, base) {
    const { c } = card;
    for (const [key, span] of Object.entries(c.labels)) setText(span, t(key));
    for (const span of card.root.querySelectorAll("[data-weekday]")) setText(span, list("weekdays")[span.dataset.weekday]);
    setText(c.usage, t("bases.usage", { in_use: number(base.in_use), limit: number(base.limit) }));
    setText(c.eta, this.eta(base));
    setText(c.inForce, base.window ? t("bases.inForce", { window: base.window }) : t("bases.default.inForce"));
    setText(c.paused, base.paused ? t("bases.paused") : "");
    c.pause.hidden = base.paused;
    c.resume.hidden = !base.paused;
    setText(c.pause, t("action.pause"));
    setText(c.resume, t("action.resume"));
    setText(c.save, t("bases.save"));
    setText(c.add, t("window.add"));
    setInput(c.max, base.default_max_workers);
    setInput(c.min, base.min_workers);
    this.renderWindows(card, base);
    const controls = [c.pause, c.resume, c.max, c.min, c.save, c.start, c.end, c.windowMax, c.add, ...c.days];
    for (const control of controls) control.disabled = !this.canAct;
    for (const button of c.windows.querySelectorAll("button")) button.disabled = !this.canAct;
  }

  /** "MULTCOB03 termina às 14:20" with its pending messages; nothing from a coordinator that does not say. */
  eta(base) {
    if (base.pending === undefined) return "";
    if (base.pending === 0) return t("bases.nothingPending");
    const pending = tn("bases.pending", base.pending);
    if (!base.eta_at) return t("bases.noEta", { pending });
    const params = { base: base.name, time: hhmm(base.eta_at), day: dayMonth(base.eta_at), pending };
    return t(sameDay(base.eta_at, this.now) ? "bases.eta" : "bases.etaDay", params);
  }

  renderWindows(card, base) {
    const { c } = card;
    const key = JSON.stringify([base.windows, base.window, document.documentElement.lang]);
    if (card.windowIds === key) return;
    card.windowIds = key;
    c.windows.replaceChildren();
    if (!base.windows.length) c.windows.append(el("li", { class: "muted", text: t("bases.noWindows") }));
    for (const w of base.windows) {
      const label = `${w.start}–${w.end}`;
      const text = t("window.describe", { days: weekdays(w.weekdays), window: label, max: number(w.max_workers) });
      const remove = el("button", { type: "button", class: "danger", "data-action": "remove-window", text: t("window.remove") });
      remove.addEventListener("click", () => this.actions.removeWindow(base.name, w, weekdays(w.weekdays)));
      const inForce = base.window === label;
      c.windows.append(el("li", { "data-window": String(w.id), class: inForce ? "in-force" : "" }, el("span", { text }), remove));
    }
  }

  async saveLimits(name, c) {
    const checked = checkLimits({ max: c.max.value, min: c.min.value });
    c.max.classList.toggle("invalid", checked.errors?.some((e) => e !== "v.min") ?? false);
    c.min.classList.toggle("invalid", checked.errors?.some((e) => e !== "v.limit") ?? false);
    if (checked.errors) {
      setText(c.limitsError, checked.errors.map((key) => t(key)).join(" "));
      return;
    }
    setText(c.limitsError, "");
    if (await this.actions.saveLimits(name, checked.value, (detail) => setText(c.limitsError, detail))) {
      clean(c.max, c.min);
    }
  }

  async addWindow(name, c) {
    const days = c.days.filter((box) => box.checked).map((box) => Number(box.value));
    const checked = checkWindow({ weekdays: days, start: c.start.value, end: c.end.value, max: c.windowMax.value });
    const errors = checked.errors || [];
    c.start.classList.toggle("invalid", errors.includes("v.from") || errors.includes("v.same"));
    c.end.classList.toggle("invalid", errors.includes("v.to") || errors.includes("v.same"));
    c.windowMax.classList.toggle("invalid", errors.includes("v.max"));
    if (errors.length) {
      setText(c.windowError, errors.map((key) => t(key)).join(" "));
      return;
    }
    setText(c.windowError, "");
    if (await this.actions.addWindow(name, checked.value, (detail) => setText(c.windowError, detail))) {
      clean(c.start, c.end, c.windowMax);
      c.start.value = c.end.value = c.windowMax.value = "";
    }
  }
}
