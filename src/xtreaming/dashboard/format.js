// Durations, weekdays and labels as the screen shows them.

import { list, number, t } from "./i18n.js";

/** "2 h 05 min", "3 min 20 s", "45 s"; "—" when unknown. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  const hours = Math.floor(s / 3600);
  if (hours >= 48) return `${number(Math.floor(hours / 24))} d ${hours % 24} h`;
  return `${hours} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

export function ago(seconds) {
  return t("ago", { time: duration(seconds) });
}

/** Weekdays (Monday = 0) as "Seg–Sex", "Seg, Qua", or "todos os dias". */
export function weekdays(days) {
  const names = list("weekdays");
  const sorted = [...days].sort((a, b) => a - b);
  if (sorted.length === 7) return t("weekdays.all");
  const contiguous = sorted.length > 2 && sorted.every((day, i) => i === 0 || day === sorted[i - 1] + 1);
  if (contiguous) return `${names[sorted[0]]}–${names[sorted[sorted.length - 1]]}`;
  return sorted.map((day) => names[day]).join(", ");
}

export function labels(map) {
  const entries = Object.entries(map || {});
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(", ") : "—";
}
