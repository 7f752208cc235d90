// The API's rules for operator input, checked before sending so the form can say what is wrong.
// They mirror schemas.py (Priority 0..9, Workers 0..100000) and windows.py (HH:MM, end != start).

export const MAX_WORKERS = 100000;
const HHMM = /^([01][0-9]|2[0-3]):([0-5][0-9])$/;

function minutes(text, { allowMidnightEnd }) {
  if (allowMidnightEnd && text === "24:00") return 24 * 60;
  const match = HHMM.exec(text);
  return match ? Number(match[1]) * 60 + Number(match[2]) : null;
}

function wholeNumber(text, low, high) {
  if (!/^\d+$/.test(String(text).trim())) return null;
  const value = Number(text);
  return value >= low && value <= high ? value : null;
}

/** Priority 0..9 → number, or the message key of the problem. */
export function checkPriority(text) {
  const value = wholeNumber(text, 0, 9);
  return value === null ? { error: "v.priority" } : { value };
}

/** A window {weekdays, start, end, max} → the API body, or the message keys of every problem. */
export function checkWindow({ weekdays, start, end, max }) {
  const errors = [];
  if (!weekdays.length) errors.push("v.weekdays");
  const from = minutes(start.trim(), { allowMidnightEnd: false });
  const to = minutes(end.trim(), { allowMidnightEnd: true });
  if (from === null) errors.push("v.from");
  if (to === null) errors.push("v.to");
  if (from !== null && to !== null && from === to) errors.push("v.same");
  const maxWorkers = wholeNumber(max, 0, MAX_WORKERS);
  if (maxWorkers === null) errors.push("v.max");
  if (errors.length) return { errors };
  return { value: { weekdays, start: start.trim(), end: end.trim(), max_workers: maxWorkers } };
}

/** A base's limit and reserved minimum → the API body, or the message keys of every problem. */
export function checkLimits({ max, min }) {
  const errors = [];
  const maxWorkers = wholeNumber(max, 0, MAX_WORKERS);
  const minWorkers = wholeNumber(min, 0, MAX_WORKERS);
  if (maxWorkers === null) errors.push("v.limit");
  if (minWorkers === null) errors.push("v.min");
  if (maxWorkers !== null && minWorkers !== null && minWorkers > maxWorkers) errors.push("v.minAboveMax");
  if (errors.length) return { errors };
  return { value: { max_workers: maxWorkers, min_workers: minWorkers } };
}
