// The operator screen: polls GET api/status (one request) every 1.5 s and wires the controls to the API.

import { ApiError, adoptTokenFromUrl, path, request, setToken } from "./api.js";
import { BasePanel } from "./bases.js";
import { dateTime, hhmmss, setTimeZone } from "./clock.js";
import { DeadLetterPanel } from "./dlq.js";
import { FarmPanel } from "./farms.js";
import { FigureHistory } from "./figures.js";
import { HistoryLookup } from "./history.js";
import { LANGUAGES, initialLanguage, language, load, number, reason, t, tn } from "./i18n.js";
import { QueueTable } from "./queues.js";
import { SchedulePanel } from "./schedules.js";
import { el, setText } from "./dom.js";
import { checkPriority } from "./validation.js";

/** At most 2 s between updates, as the issue asks; a poll answers in tens of milliseconds. */
const POLL_MS = 1500;
const STATUS_TIMEOUT_MS = 5000;
const MAX_MESSAGES = 5;
/** The dead-letter panel is refreshed less often than the queues: its figures change with failures only. */
const DLQ_POLL_MS = 10000;
/** Schedules tick at most once a second; their panel needs no fresher figures than this. */
const SCHEDULES_POLL_MS = 5000;
const ACTING_ROLES = new Set(["operator", "admin"]);
/** The name the coordinator gives every caller when it has no tokens configured (auth.ANONYMOUS). */
const ANONYMOUS = "anonymous";

const $ = (id) => document.getElementById(id);
const screen = {
  status: null,
  who: null,
  connection: "connecting",
  renders: 0,
  timer: null,
  polling: false,
  again: false,
  first: null, // the first answers, asked for before the messages are loaded
  historyShown: false, // whether the sparklines have drawn the server's figure history yet
};

const figures = new FigureHistory(request);

const queues = new QueueTable($("queue-rows"), document.querySelector("#queue-table thead"), {
  up: (topic) => act(() => request("POST", `${path.queue(topic)}/priority`, { delta: 1 }), undefined, undefined, `priority:${topic}`),
  down: (topic) => act(() => request("POST", `${path.queue(topic)}/priority`, { delta: -1 }), undefined, undefined, `priority:${topic}`),
  set: (topic, input) => setPriority(topic, input),
  pause: async (topic) => {
    if (await confirmed(t("confirm.pauseQueue", { topic }))) act(() => request("POST", `${path.queue(topic)}/pause`));
  },
  resume: (topic) => act(() => request("POST", `${path.queue(topic)}/resume`)),
  select: (topic) => select(topic),
}, (topic) => figures.sparkline(topic));

const bases = new BasePanel($("base-list"), {
  saveLimits: (name, body, onError) =>
    act(() => request("PATCH", path.base(name), body), t("done.limits", { base: name }), onError, `limits:${name}`),
  pause: async (name) => {
    if (await confirmed(t("confirm.pauseBase", { base: name }))) act(() => request("POST", `${path.base(name)}/pause`));
  },
  resume: (name) => act(() => request("POST", `${path.base(name)}/resume`)),
  addWindow: (name, body, onError) =>
    act(() => request("POST", `${path.base(name)}/windows`, body), t("done.window", { base: name }), onError, `window:${name}`),
  removeWindow: async (name, window, days) => {
    const text = t("confirm.removeWindow", { base: name, days, window: `${window.start}–${window.end}` });
    if (await confirmed(text)) return act(() => request("DELETE", path.window(window.id)));
    return false;
  },
}, figures);

const farms = new FarmPanel($("farm-rows"), $("farms-empty"), { request, describe: (error) => describe(error) });

const historyLookup = new HistoryLookup($("history-form"), $("history-key"), $("history-rows"), $("history-note"), {
  request,
  describe: (error) => describe(error),
});

const deadLetters = new DeadLetterPanel($("dlq-list"), $("dlq-empty"), {
  request,
  act: (call) => act(call),
  confirmed: (text) => confirmed(text),
  message: (kind, text) => message(kind, text),
});

const schedules = new SchedulePanel($("schedule-rows"), $("schedules-empty"), { request });

// -- talking to the API ------------------------------------------------------------------------------

/** Run one change; on success show `done`, clear the errors left by earlier tries of the same change (`key`),
 * and poll at once; on failure say why, in words. */
async function act(call, done, onError, key) {
  try {
    await call();
    if (key) clearMessages(key);
    if (done) message("info", done);
    pollNow();
    return true;
  } catch (error) {
    const words = describe(error);
    message("error", words, key);
    if (onError) onError(words);
    if (error instanceof ApiError && error.status === 401) askForToken();
    return false;
  }
}

function describe(error) {
  if (!(error instanceof ApiError)) return t("error.unexpected", { detail: String(error) });
  if (error.status === 0) return t("error.network");
  if (error.status === 401) return t("error.unauthorized");
  if (error.status === 403) return t("error.forbidden", { detail: error.detail });
  return t("error.http", { status: error.status, detail: error.detail });
}

async function setPriority(topic, input) {
  const checked = checkPriority(input.value);
  input.classList.toggle("invalid", Boolean(checked.error));
  if (checked.error) {
    message("error", t(checked.error), `priority:${topic}`);
    return;
  }
  delete input.dataset.dirty;
  const body = { priority: checked.value };
  await act(() => request("POST", `${path.queue(topic)}/priority`, body), undefined, undefined, `priority:${topic}`);
}

async function poll() {
  clearTimeout(screen.timer);
  if (screen.polling) {
    screen.again = true;
    return;
  }
  screen.polling = true;
  try {
    const first = screen.first;
    screen.first = null;
    const [who, status] = await (first ?? firstAnswers());
    screen.who = who;
    connection("ok");
    render(status);
    refreshExplanation();
    farms.refresh();
    if (await figures.refresh(status.now)) render(status, { fresh: false });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      connection("unauthorized");
      askForToken();
    } else if (error instanceof ApiError && error.status === 403) {
      connection("unauthorized");
      setText($("updated"), describe(error));
    } else {
      connection("lost");
    }
  } finally {
    screen.polling = false;
    const delay = screen.again ? 0 : POLL_MS;
    screen.again = false;
    screen.timer = setTimeout(poll, delay);
  }
}

/** Who the caller is (asked once per token) and the status, both at once: a poll waits for the slower one. */
function firstAnswers() {
  return Promise.all([
    screen.who ?? request("GET", "api/whoami"),
    request("GET", "api/status", undefined, { timeoutMs: STATUS_TIMEOUT_MS }),
  ]);
}

function pollNow() {
  poll();
}

// -- rendering -----------------------------------------------------------------------------------------

function render(status, { fresh = true } = {}) {
  const started = performance.now();
  screen.status = status;
  setTimeZone(status.time_zone);
  const canAct = ACTING_ROLES.has(screen.who?.role);
  if (deadLetters.canAct !== canAct) {
    deadLetters.canAct = canAct;
    deadLetters.render();
  }
  queues.canAct = bases.canAct = canAct;
  $("readonly").hidden = canAct || screen.who === null;
  const broker = $("broker");
  broker.hidden = status.broker_ok;
  setText(broker, status.broker_ok ? "" : t("broker.down", { error: status.broker_error || "" }));
  fillOptions($("filter-base"), status.bases.map((b) => b.name));
  fillOptions($("filter-kind"), [...new Set(status.queues.map((q) => q.kind))].sort());
  const { shown, total } = queues.render(status.queues, { fresh });
  setText($("queue-count"), tn("filter.count", total, { shown: number(shown) }));
  $("queues-empty").hidden = total > 0;
  bases.render(status.bases, status.now);
  farms.render(status.farms, status.now);
  setText($("updated"), t("updated", { time: hhmmss(status.now) }));
  // Which coordinator leads and since when: shown where several share the store (epoch 0: one, on its own).
  const leader = status.leader;
  const shared = leader && leader.epoch > 0;
  setText($("leader"), shared ? t("leader", { url: leader.url || "?", since: leader.since ? dateTime(leader.since) : "?" }) : "");
  setText($("who"), screen.who ? t("who", { name: whoName(screen.who.name), role: t(`role.${screen.who.role}`) }) : "");
  screen.renders += 1;
  document.body.dataset.renders = String(screen.renders);
  // Render times for the browser tests (performance API); cleared now and then: the page stays open all day.
  if (screen.renders % 1000 === 0) performance.clearMeasures("xtreaming:render");
  performance.measure("xtreaming:render", { start: started });
  if (screen.renders === 1) {
    performance.mark("xtreaming:first-render");
    // The browser lays the rows out and paints them after this script: a task queued from the next frame runs
    // once that frame is painted.
    requestAnimationFrame(() => setTimeout(() => performance.mark("xtreaming:first-paint")));
  }
  if (!screen.historyShown && figures.hasSparklines()) {
    screen.historyShown = true;
    performance.mark("xtreaming:first-history"); // the sparklines drew the server's figure history
  }
}

function whoName(name) {
  return name === ANONYMOUS ? t("who.anonymous") : name;
}

/** Re-render from the last answer (after a language change or a sort), without a request. */
function rerender() {
  if (screen.status) render(screen.status, { fresh: false });
  figures.redraw();
  deadLetters.render();
  schedules.render();
  historyLookup.render();
  connection(screen.connection);
}

function fillOptions(select, values) {
  const current = [...select.options].slice(1).map((o) => o.value);
  if (current.join("\n") === values.join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(select.options[0], ...values.map((value) => el("option", { value, text: value })));
  select.value = values.includes(chosen) ? chosen : "";
}

function connection(state) {
  screen.connection = state;
  const badge = $("connection");
  badge.dataset.state = state;
  setText(badge, t(`conn.${state}`));
  document.body.classList.toggle("disconnected", state === "lost");
}

/** Show a message; `key` names the change it is about, so a later success of that change removes its errors. */
function message(kind, text, key) {
  const box = $("messages");
  const close = el("button", { type: "button", "aria-label": t("close"), text: "×" });
  const item = el("div", { class: `message ${kind}`, "data-key": key }, el("span", { text }), close);
  close.addEventListener("click", () => item.remove());
  box.prepend(item);
  while (box.children.length > MAX_MESSAGES) box.lastChild.remove();
  if (kind === "info") setTimeout(() => item.remove(), 4000);
}

function clearMessages(key) {
  for (const item of $("messages").querySelectorAll(".message.error")) if (item.dataset.key === key) item.remove();
}

// -- the selected queue's detail: "Por que não está rodando?" and its chart -----------------------------

let explaining = false;

function select(topic) {
  const { chart } = queues.detail;
  if (queues.select(topic) === null) {
    figures.unwatch(chart);
    return;
  }
  setText($("explain-topic"), topic);
  setText($("explain-reason"), "…");
  chart.replaceChildren();
  figures.watch(chart, "queues", topic);
  figures.reload(chart);
  refreshExplanation();
}

async function refreshExplanation() {
  const topic = queues.selected;
  if (!topic || explaining) return;
  explaining = true;
  try {
    const answer = await request("GET", `${path.queue(topic)}/explain`);
    if (queues.selected === topic) {
      const words = answer.reason === "runnable" ? t("explain.runnable") : reason(answer.reason);
      const target = $("explain-reason");
      setText(target, words);
      target.title = answer.reason;
    }
  } catch (error) {
    if (queues.selected === topic) setText($("explain-reason"), describe(error));
  } finally {
    explaining = false;
  }
}

// -- confirmation, token, language ---------------------------------------------------------------------

function confirmed(text) {
  const dialog = $("confirm");
  setText($("confirm-text"), text);
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

function askForToken() {
  const form = $("token-form");
  form.hidden = false;
  $("token-input").focus();
}

$("token-button").addEventListener("click", () => {
  const form = $("token-form");
  form.hidden = !form.hidden;
});

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setToken($("token-input").value.trim());
  $("token-input").value = "";
  $("token-form").hidden = true;
  screen.who = null;
  pollNow();
});

$("token-forget").addEventListener("click", () => {
  setToken("");
  screen.who = null;
  $("token-form").hidden = true;
  pollNow();
});

$("lang-toggle").addEventListener("click", async () => {
  const next = LANGUAGES.find((lang) => lang !== language());
  await load(next, { remember: true });
  rerender();
  refreshExplanation();
});

for (const [id, key] of [["filter-base", "base"], ["filter-kind", "kind"], ["filter-text", "text"]]) {
  $(id).addEventListener("input", (event) => {
    queues.filter[key] = event.target.value;
    rerender();
  });
}

// -- start ---------------------------------------------------------------------------------------------

async function start() {
  adoptTokenFromUrl();
  // The first answers are asked for while the messages load: the first render waits for the slower, not both.
  screen.first = firstAnswers();
  screen.first.catch(() => {}); // handled by the first poll, which awaits it
  // The sparklines too, not after the first render: back before the status, that render draws them; after it,
  // the rows are drawn again with them at once rather than at the next poll.
  figures.prefetch().then((fresh) => {
    if (fresh && screen.status) render(screen.status, { fresh: false });
  });
  await load(initialLanguage());
  // The lookup's form works from the start: an answer shown before the messages came shows its codes in words now.
  historyLookup.render();
  connection("connecting");
  poll();
  deadLetters.refresh();
  setInterval(() => deadLetters.refresh(), DLQ_POLL_MS);
  schedules.refresh();
  setInterval(() => schedules.refresh(), SCHEDULES_POLL_MS);
}

start();
