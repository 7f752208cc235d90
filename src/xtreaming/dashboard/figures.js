// The coordinator's figure history on the screen: the sparklines' last 30 minutes and the charts per base and per
// queue (GET api/figures/…), loaded at once on the first render and refreshed once a minute, only for charts in view.

import { drawChart, drawNoChart } from "./chart.js";
import { t } from "./i18n.js";

/** The history is kept at minute resolution: asking more often shows nothing new. */
const REFRESH_MS = 60_000;
const SPARK_MINUTES = 30;
const CHART_MINUTES = 1440;

export class FigureHistory {
  constructor(request) {
    this.request = request;
    this.sparks = { queues: {}, bases: {} };
    this.sparksAt = -Infinity;
    this.sparksLoading = false;
    this.charts = new Map(); // box → {kind, name, shownAt, visible, loading}
    this.now = null;
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        const chart = this.charts.get(entry.target);
        if (chart) chart.visible = entry.isIntersecting;
      }
      this.refresh();
    });
  }

  /** Whether the server's sparklines have been answered (the rows draw its minutes, not what the page saw). */
  hasSparklines() {
    const { queues, bases } = this.sparks;
    return Object.keys(queues).length + Object.keys(bases).length > 0;
  }

  /** Done per minute, oldest first, of a queue's last 30 minutes (null before the first answer). */
  sparkline(topic) {
    return this.sparks.queues[topic] ?? null;
  }

  /** Keep `box` showing the chart of a base (`kind` "bases") or queue ("queues") while it is in view. */
  watch(box, kind, name) {
    if (this.charts.get(box)?.name === name) return;
    this.charts.set(box, { kind, name, shownAt: -Infinity, visible: false, loading: false, points: null });
    box.dataset.chart = `${kind}/${name}`;
    this.observer.observe(box);
  }

  unwatch(box) {
    this.charts.delete(box);
    this.observer.unobserve(box);
  }

  /** Redraw a chart now (a queue just selected), without waiting for the minute. */
  reload(box) {
    const chart = this.charts.get(box);
    if (chart) {
      chart.shownAt = -Infinity;
      chart.visible = true;
    }
    this.refresh();
  }

  /** After each poll (`now`: the server's clock): fetch what is a minute old; returns whether sparklines changed. */
  async refresh(now = this.now) {
    this.now = now;
    if (now === null) return false;
    const due = performance.now() - REFRESH_MS;
    for (const [box, chart] of this.charts) {
      if (chart.visible && !chart.loading && chart.shownAt < due && box.isConnected) this.load(box, chart);
    }
    if (this.sparksLoading || this.sparksAt >= due) return false;
    return this.loadSparklines();
  }

  /** Ask for the sparklines as the page loads, before the first status; resolves to whether they were answered. */
  prefetch() {
    return this.sparksLoading ? Promise.resolve(false) : this.loadSparklines();
  }

  async loadSparklines() {
    this.sparksLoading = true;
    try {
      this.sparks = await this.request("GET", `api/figures/sparklines?minutes=${SPARK_MINUTES}`);
      return true;
    } catch {
      return false; // no history yet: the sparklines use the speeds the page saw
    } finally {
      this.sparksAt = performance.now();
      this.sparksLoading = false;
    }
  }

  async load(box, chart) {
    chart.loading = true;
    const { kind, name } = chart;
    try {
      const answer = await this.request("GET", `api/figures/${kind}/${encodeURIComponent(name)}?minutes=${CHART_MINUTES}`);
      chart.points = answer.points;
      if (this.charts.get(box) === chart) drawChart(box, answer.points, this.now);
    } catch {
      chart.points = null;
      if (this.charts.get(box) === chart) drawNoChart(box, t("chart.none"));
    } finally {
      chart.shownAt = performance.now();
      chart.loading = false;
    }
  }

  /** Draw every chart shown again from its last answer (after a language change). */
  redraw() {
    for (const [box, chart] of this.charts) {
      if (chart.points) drawChart(box, chart.points, this.now);
      else if (chart.shownAt > -Infinity) drawNoChart(box, t("chart.none"));
    }
  }
}
