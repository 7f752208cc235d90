// The farms panel: labels, busy/total slots (and those kept for urgent work), last heartbeat; lost farms first
// and in red.

import { el } from "./dom.js";
import { ago, labels } from "./format.js";
import { number, t } from "./i18n.js";

export function renderFarms(tbody, empty, farms, now) {
  const ordered = [...farms].sort((a, b) => Number(b.lost) - Number(a.lost) || (a.id < b.id ? -1 : 1));
  const serverNow = Date.parse(now);
  tbody.replaceChildren(
    ...ordered.map((farm) => {
      const silent = (serverNow - Date.parse(farm.last_heartbeat_at)) / 1000;
      return el("tr", { "data-farm": farm.id, class: farm.lost ? "lost" : "" },
        el("td", { text: farm.id }),
        el("td", { class: "labels", text: labels(farm.labels) }),
        el("td", { class: "num", "data-col": "slots", text: `${number(farm.busy)}/${number(farm.slots)}` },
          ...urgent(farm)),
        el("td", { "data-col": "heartbeat", title: farm.last_heartbeat_at, text: ago(silent) }),
        el("td", { "data-col": "state", text: farm.lost ? t("farms.lost") : t("farms.ok") }));
    }),
  );
  empty.hidden = farms.length > 0;
}

/** A farm's slots kept for urgent work, as a mark after its slot count (nothing when it keeps none). */
function urgent(farm) {
  if (!farm.urgent_slots) return [];
  const params = { count: number(farm.urgent_slots), priority: farm.urgent_priority };
  return [el("span", { class: "urgent", title: t("farms.urgentTitle", params), text: t("farms.urgent", params) })];
}
