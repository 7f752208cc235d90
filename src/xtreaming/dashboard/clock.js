// Times as the site reads them: in the site's time zone (GET api/status's `time_zone`), in the screen's language.

import { language } from "./i18n.js";

let zone; // undefined: the browser's own zone, until the coordinator names the site's
const formats = new Map();

/** The site's IANA zone; an unknown name leaves the browser's zone (Intl would throw on it). */
export function setTimeZone(name) {
  if (!name || name === zone) return;
  try {
    new Intl.DateTimeFormat("en", { timeZone: name });
  } catch {
    return;
  }
  zone = name;
  formats.clear();
}

function format(kind, options) {
  const key = `${language()}|${kind}`;
  let found = formats.get(key);
  if (found === undefined) {
    found = new Intl.DateTimeFormat(language(), { timeZone: zone, ...options });
    formats.set(key, found);
  }
  return found;
}

/** "14:20" (the hour and minute of `at`, an ISO string or a Date). */
export function hhmm(at) {
  return format("hhmm", { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(at));
}

/** "14:20:05". */
export function hhmmss(at) {
  return format("hhmmss", { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(
    new Date(at),
  );
}

/** "07/12/2026, 14:20:05" (date and time of a past event). */
export function dateTime(at) {
  return format("dateTime", { dateStyle: "short", timeStyle: "medium" }).format(new Date(at));
}

/** "07/12" (the day of `at` in the site's zone). */
export function dayMonth(at) {
  return format("dayMonth", { day: "2-digit", month: "2-digit" }).format(new Date(at));
}

/** Whether `at` and `now` fall on the same day in the site's zone. */
export function sameDay(at, now) {
  const day = format("day", { year: "numeric", month: "2-digit", day: "2-digit" });
  return day.format(new Date(at)) === day.format(new Date(now));
}
