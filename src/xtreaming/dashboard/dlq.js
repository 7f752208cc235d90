// "Mensagens na DLQ": per topic, the open dead letters grouped by error, with samples, and a replay that
// first asks the coordinator how many it would put back (a dry run) and then asks the operator.

import { el } from "./dom.js";
import { number, t, tn } from "./i18n.js";

/** Loads GET api/dlq now and then; `replay` does the dry run, the confirmation and the replay. */
export class DeadLetterPanel {
  constructor(list, empty, { request, act, confirmed, message }) {
    this.list = list;
    this.empty = empty;
    this.request = request;
    this.act = act;
    this.confirmed = confirmed;
    this.message = message;
    this.canAct = false;
    this.topics = [];
  }

  async refresh() {
    try {
      this.topics = await this.request("GET", "api/dlq");
    } catch {
      return; // the status poll says what is wrong with the connection
    }
    this.render();
  }

  render() {
    const shown = this.topics.filter((topic) => topic.open + topic.replayed + topic.skipped > 0);
    this.empty.hidden = shown.length > 0;
    this.list.replaceChildren(...shown.map((topic) => this.card(topic)));
  }

  card(topic) {
    const everything = this.button(topic.topic, null, t("dlq.replayAll"), topic.open === 0);
    const header = el("header", {},
      el("strong", { text: topic.topic }),
      el("span", { class: "spacer" }),
      el("span", { "data-col": "counts", text: [
        tn("dlq.open", topic.open), tn("dlq.replayed", topic.replayed), tn("dlq.skipped", topic.skipped),
      ].join(" · ") }),
      everything);
    const rows = topic.errors.map((group) =>
      el("tr", { "data-error": group.error },
        el("td", { class: "num", text: number(group.count) }),
        el("td", { class: "detail", title: group.error, text: group.error }),
        el("td", { class: "labels", text: group.samples.map((s) => s.key ?? s.id).join(", ") }),
        el("td", {}, this.button(topic.topic, group.error, t("dlq.replay"), false))));
    const table = el("table", {},
      el("thead", {}, el("tr", {},
        el("th", { class: "num", text: t("dlq.count") }),
        el("th", { text: t("dlq.error") }),
        el("th", { text: t("dlq.samples") }),
        el("th", { text: "" }))),
      el("tbody", {}, ...rows));
    return el("div", { class: "card", "data-topic": topic.topic }, header, table);
  }

  button(topic, error, text, disabled) {
    return el("button", {
      type: "button",
      class: "replay",
      text,
      disabled: disabled || !this.canAct,
      onclick: () => this.replay(topic, error),
    });
  }

  async replay(topic, error) {
    const filter = error === null ? {} : { error };
    const url = `api/dlq/${encodeURIComponent(topic)}/replay`;
    let counted;
    try {
      counted = await this.request("POST", url, { filter, dry_run: true });
    } catch (failure) {
      this.act(() => Promise.reject(failure));
      return;
    }
    if (counted.matched === 0) {
      this.message("info", t("dlq.nothing", { topic }));
      return;
    }
    const words = error === null
      ? tn("confirm.replayAll", counted.matched, { topic })
      : tn("confirm.replay", counted.matched, { topic, error });
    if (!(await this.confirmed(words))) return;
    await this.act(async () => {
      const done = await this.request("POST", url, { filter });
      this.message("info", tn("dlq.started", done.matched, { topic, id: done.replay_id }));
      await this.refresh();
    });
  }
}
