// The farms panel: labels, busy/total slots (and those kept for urgent work), last heartbeat; lost farms first and
// in red. A farm clicked opens its detail under it (GET api/farms/{id}): each slot with its task, queue, progress,
// memory and running time, urgent slots marked.

import { el, setText } from "./dom.js";
import { ago, duration, labels } from "./format.js";
import { code, number, percent, t, tn } from "./i18n.js";

export class FarmPanel {
  /** `request`: the API call; `describe(error)`: an error in words. */
  constructor(tbody, empty, { request, describe }) {
    this.tbody = tbody;
    this.empty = empty;
    this.request = request;
    this.describe = describe;
    this.selected = null;
    this.answer = null; // the selected farm's last detail, or an error
    this.asking = false;
    this.detail = el("tr", { class: "detail farm-detail" }, el("td", { colspan: "5" }));
    tbody.addEventListener("click", (event) => {
      const tr = event.target.closest("tr[data-farm]");
      if (tr) this.select(tr.dataset.farm);
    });
  }

  render(farms, now) {
    this.farms = farms;
    this.now = now;
    const ordered = [...farms].sort((a, b) => Number(b.lost) - Number(a.lost) || (a.id < b.id ? -1 : 1));
    const serverNow = Date.parse(now);
    const rows = ordered.map((farm) => {
      const silent = (serverNow - Date.parse(farm.last_heartbeat_at)) / 1000;
      const selected = farm.id === this.selected;
      return el("tr", { "data-farm": farm.id, class: `${farm.lost ? "lost" : ""}${selected ? " selected" : ""}` },
        el("td", { text: farm.id }),
        el("td", { class: "labels", text: labels(farm.labels) }),
        el("td", { class: "num", "data-col": "slots", text: `${number(farm.busy)}/${number(farm.slots)}` },
          ...urgent(farm)),
        el("td", { "data-col": "heartbeat", title: farm.last_heartbeat_at, text: ago(silent) }),
        el("td", { "data-col": "state", text: farm.lost ? t("farms.lost") : t("farms.ok") }));
    });
    const at = ordered.findIndex((farm) => farm.id === this.selected);
    if (at >= 0) rows.splice(at + 1, 0, this.detail);
    else this.selected = null;
    this.tbody.replaceChildren(...rows);
    this.empty.hidden = farms.length > 0;
    this.showDetail();
  }

  select(id) {
    this.selected = this.selected === id ? null : id;
    this.answer = null;
    if (this.farms) this.render(this.farms, this.now);
    this.refresh();
  }

  /** Ask for the selected farm's slots again (each poll while it is open). */
  async refresh() {
    const id = this.selected;
    if (id === null || this.asking) return;
    this.asking = true;
    try {
      const answer = await this.request("GET", `api/farms/${encodeURIComponent(id)}`);
      if (this.selected === id) this.answer = { farm: answer };
    } catch (error) {
      if (this.selected === id) this.answer = { error };
    } finally {
      this.asking = false;
    }
    this.showDetail();
  }

  showDetail() {
    const td = this.detail.firstChild;
    if (this.answer === null) {
      setText(td, "…");
      return;
    }
    if (this.answer.error) {
      td.replaceChildren(el("p", { class: "form-error", text: this.describe(this.answer.error) }));
      return;
    }
    const slots = this.answer.farm.slots_detail ?? [];
    if (!slots.length) {
      td.replaceChildren(el("p", { class: "muted", text: t("slots.none") }));
      return;
    }
    td.replaceChildren(
      el("table", { class: "slots" },
        el("thead", {}, el("tr", {},
          ...["slots.index", "slots.state", "slots.task", "slots.topic", "slots.progress", "slots.memory", "slots.running"].map(
            (key) => el("th", { text: t(key) })))),
        el("tbody", {}, ...slots.map(slotRow))),
    );
  }
}

function slotRow(slot) {
  const mark = slot.urgent ? el("span", { class: "urgent", text: t("slots.urgent"), title: t("slots.urgentTitle") }) : null;
  const done = slot.total ? (slot.done ?? 0) / slot.total : 0;
  const filled = el("span");
  filled.style.width = `${Math.round(done * 100)}%`; // a property, not a style attribute: the page's CSP allows it
  const progress = slot.total === null || slot.total === undefined
    ? el("td", { class: "num", text: slot.done === null || slot.done === undefined ? "—" : number(slot.done) })
    : el("td", { class: "num", title: `${number(slot.done ?? 0)} / ${number(slot.total)}` },
      el("span", { class: "bar" }, filled),
      el("span", { class: "percent", text: percent(Math.floor(done * 100) / 100) }));
  return el("tr", { "data-slot": String(slot.index), class: slot.urgent ? "urgent-slot" : "" },
    el("td", { class: "num" }, `#${slot.index}`, mark),
    el("td", { "data-col": "slot-state", text: code("slots.state", slot.state) }),
    el("td", { class: "task", "data-col": "slot-task", title: slot.task_id ?? "", text: slot.task_id ? slot.task_id.slice(0, 8) : "—" }),
    el("td", { class: "topic", "data-col": "slot-topic", text: slot.topic ?? "—" }),
    progress,
    el("td", { class: "num", "data-col": "memory", text: megabytes(slot.rss_bytes) }),
    el("td", { class: "num", "data-col": "running", text: duration(slot.running_s) }));
}

function megabytes(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  return `${number(bytes / 1048576, bytes < 10485760 ? 1 : 0)} MB`;
}

/** A farm's slots kept for urgent work, as a mark after its slot count (nothing when it keeps none). */
function urgent(farm) {
  if (!farm.urgent_slots) return [];
  const params = { priority: farm.urgent_priority };
  const title = tn("farms.urgentTitle", farm.urgent_slots, params);
  return [el("span", { class: "urgent", title, text: tn("farms.urgent", farm.urgent_slots, params) })];
}
