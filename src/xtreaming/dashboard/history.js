// "Histórico de um cliente": every settled attempt of the messages with a key (a CPF), newest first.

import { dateTime } from "./clock.js";
import { el, setText } from "./dom.js";
import { duration } from "./format.js";
import { code, number, t, tn } from "./i18n.js";

/** The lookup form and its table; `search(key)` asks GET api/messages and shows what it answers. */
export class HistoryLookup {
  constructor(form, input, tbody, note, { request, describe }) {
    this.input = input;
    this.tbody = tbody;
    this.note = note;
    this.request = request;
    this.describe = describe;
    this.asked = 0;
    this.last = null; // what was last shown, shown again in another language
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search(input.value.trim());
    });
  }

  async search(key) {
    if (!key) return;
    const asked = ++this.asked; // a slower earlier answer never replaces a later one
    setText(this.note, "…");
    try {
      const page = await this.request("GET", `api/messages?key=${encodeURIComponent(key)}&limit=200`);
      if (asked !== this.asked) return;
      this.last = { key, attempts: page.attempts, more: page.next !== null, error: null };
    } catch (error) {
      if (asked !== this.asked) return;
      this.last = { key, attempts: [], more: false, error };
    }
    this.render();
  }

  /** Show the last answer (again, after a language change). */
  render() {
    if (this.last === null) return;
    const { key, attempts, more, error } = this.last;
    let summary = t("history.none", { key });
    if (error) summary = this.describe(error);
    else if (attempts.length) summary = tn(more ? "history.countMore" : "history.count", attempts.length, { key });
    setText(this.note, summary);
    this.tbody.replaceChildren(
      ...attempts.map((a) =>
        el("tr", { "data-result": a.result },
          el("td", { title: a.at, text: dateTime(a.at) }),
          el("td", { class: "topic", text: a.topic }),
          el("td", { class: "topic", text: `${a.partition}/${a.offset}` }),
          el("td", { class: "num", text: number(a.attempt) }),
          el("td", {}, el("span", { class: `result result-${a.result}`, text: code("result", a.result) })),
          el("td", { text: `${a.farm} #${a.slot}` }),
          el("td", { class: "num", text: duration(a.duration_s) }),
          el("td", { class: "detail", title: a.detail || "", text: a.detail || "" })),
      ),
    );
  }
}
