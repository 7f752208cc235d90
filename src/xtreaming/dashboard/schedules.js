// "Publicações agendadas": each schedule (GET api/schedules) with what it publishes, its last tick and outcome,
// and its next tick, in the site's time zone. Loaded now and then: ticks come at most once a second.

import { dateTime } from "./clock.js";
import { el } from "./dom.js";
import { number, t, tn } from "./i18n.js";

export class SchedulePanel {
  constructor(tbody, empty, { request }) {
    this.tbody = tbody;
    this.empty = empty;
    this.request = request;
    this.schedules = [];
  }

  async refresh() {
    try {
      this.schedules = await this.request("GET", "api/schedules");
    } catch {
      return; // the status poll says what is wrong with the connection
    }
    this.render();
  }

  render() {
    this.empty.hidden = this.schedules.length > 0;
    this.tbody.replaceChildren(...this.schedules.map((schedule) => this.row(schedule)));
  }

  row(schedule) {
    const last = schedule.last;
    return el("tr", { "data-schedule": String(schedule.id), class: last?.state === "failed" ? "failed" : "" },
      el("td", { text: schedule.topic }),
      el("td", { "data-col": "cron", text: schedule.cron, title: t(`schedules.misfire.${schedule.misfire}`) }),
      el("td", { "data-col": "source", text: source(schedule.source) }),
      el("td", { "data-col": "last", text: last ? dateTime(last.tick_at) : "—" }),
      el("td", { "data-col": "outcome", class: "detail", title: last?.error ?? "", text: last ? outcome(last) : "—" }),
      el("td", { "data-col": "next", text: schedule.next_at ? dateTime(schedule.next_at) : "—" }));
  }
}

function source(described) {
  if (described.kind === "csv") return t("schedules.csv", { path: described.path, column: described.key_column });
  if (described.kind === "message") return t("schedules.message", { key: described.key ?? "—" });
  return t("schedules.callable", { target: described.target });
}

function outcome(tick) {
  if (tick.state === "published") return tn("schedules.published", tick.published);
  if (tick.state === "claimed") return tn("schedules.publishing", tick.published);
  if (tick.state === "skipped") return tn("schedules.skipped", tick.missed + 1);
  return t("schedules.failed", { count: number(tick.published), error: tick.error ?? "" });
}
