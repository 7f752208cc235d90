// The rows of a long table that are in (or near) its scrolling box's view: only those are in the document, between
// two spacer rows that stand for the rest, so laying out and painting 2,000 queues costs what 60 do.

import { el } from "./dom.js";

/** Up to this many rows every row is in the document: nothing to save, and the page finds any row (Ctrl+F). */
export const PLAIN_ROWS = 200;
/** Rows shown beyond each edge of the view: Tab reaches the next row, a wheel turn shows no gap. Other rows are
 *  shown once fewer than half of them are left (a scroll of a few rows, or a height measured a fraction off, moves
 *  nothing). */
const OVERSCAN = 12;
/** A row's height before one is measured (a queue row at 1,920 px; taller on narrower screens, so more rows than
 *  the view needs the first time, not fewer); measured once rows are laid out. */
const ROW_PX = 31;

/** Which rows of a table body are shown, and the body's children: a spacer, those rows, a spacer. An `extra` row
 *  (a detail row) may follow one row; its height counts for the spacers while that row is out of view. */
export class RowWindow {
  /** `tbody` in a box that scrolls it (`.table-wrap`); `columns`: the spacers' colspan; `repaint()`: called when
   *  a scroll or a resize brings other rows into view (it calls `range` and `show` again). */
  constructor(tbody, columns, repaint) {
    this.tbody = tbody;
    this.scroller = tbody.closest(".table-wrap");
    this.repaint = repaint;
    this.top = spacer(columns);
    this.bottom = spacer(columns);
    this.count = 0;
    this.extraAt = -1;
    this.first = 0;
    this.last = 0;
    this.extra = null; // the extra row while it is among the rows shown
    // Kept from the last frame rather than read while rendering: reading layout then would lay the page out twice.
    this.rowPx = ROW_PX;
    this.extraPx = 0;
    this.scrollPx = 0;
    this.viewPx = window.innerHeight;
    this.bodyPx = 0;
    this.pending = false;
    this.scroller.addEventListener("scroll", () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(this.scroller);
  }

  /** Whether every row is shown (few rows). */
  isPlain() {
    return this.count <= PLAIN_ROWS;
  }

  /** The rows [first, last) to show of `count`, the extra row following row `extraAt` (-1: none), `margin` rows
   *  beyond each edge of the view. */
  range(count, extraAt, margin = OVERSCAN) {
    this.count = count;
    this.extraAt = extraAt;
    if (this.isPlain()) return { first: 0, last: count };
    const total = count * this.rowPx + (extraAt >= 0 ? this.extraPx : 0);
    const y1 = Math.min(total, Math.max(0, this.scrollPx - this.bodyPx) + this.viewPx);
    const y0 = Math.max(0, y1 - this.viewPx); // scrolled past the end (the rows just got fewer): the last rows
    return {
      first: Math.max(0, this.indexAt(y0) - margin),
      last: Math.min(count, this.indexAt(y1) + 1 + margin),
    };
  }

  /** Make the body's children the spacers around `trs` (rows `first` to `last`, and the extra row if its row is
   *  among them); `keep` (the extra row) stays in the body, hidden by its owner, while it is not among them. Rows
   *  already in place are not moved: a focused control keeps its focus while the rows around it change. */
  show(first, last, trs, keep) {
    const { tbody, top, bottom } = this;
    this.first = first;
    this.last = last;
    this.extra = trs.includes(keep) ? keep : null;
    tbody.parentElement.setAttribute("aria-rowcount", String(this.count + 1)); // and the head's row
    const plain = this.isPlain();
    top.hidden = bottom.hidden = plain;
    this.size();
    const wanted = new Set(trs);
    for (const child of [...tbody.children]) {
      if (child !== top && child !== bottom && child !== keep && !wanted.has(child)) child.remove();
    }
    if (tbody.firstChild !== top) tbody.prepend(top);
    let cursor = top.nextSibling;
    for (const tr of trs) {
      if (tr === cursor) cursor = cursor.nextSibling;
      else tbody.insertBefore(tr, cursor);
    }
    if (cursor !== bottom) tbody.insertBefore(bottom, cursor);
    if (this.extra === null && keep && bottom.nextSibling !== keep) bottom.after(keep);
    if (!plain) this.schedule();
  }

  /** Give the spacers the height of the rows they stand for (the extra row's too when its row is among them). */
  size() {
    const { first, last, extraAt, extraPx, rowPx } = this;
    const plain = this.isPlain();
    const above = first * rowPx + (extraAt >= 0 && extraAt < first ? extraPx : 0);
    const below = (this.count - last) * rowPx + (extraAt >= last ? extraPx : 0);
    this.top.firstChild.style.height = plain ? "" : `${above}px`;
    this.bottom.firstChild.style.height = plain ? "" : `${below}px`;
  }

  /** The row at `y` px from the body's top (the extra row's band counts as its row). */
  indexAt(y) {
    const { rowPx, extraAt, extraPx } = this;
    if (extraAt >= 0 && y >= (extraAt + 1) * rowPx) return Math.max(extraAt, Math.floor((y - extraPx) / rowPx));
    return Math.floor(y / rowPx);
  }

  /** Measure at the next frame (the layout is done by then) and repaint when other rows are due in view. */
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      if (this.isPlain()) return;
      const resized = this.measure();
      const { first, last } = this.range(this.count, this.extraAt, OVERSCAN / 2);
      if (first < this.first || last > this.last) this.repaint();
      else if (resized) this.size();
    });
  }

  /** Read the view and the heights of the rows shown; returns whether a height changed by half a pixel or more
   *  (the rows' is an average: collapsed borders make rows differ by a fraction). */
  measure() {
    const { scroller, top, bottom, extra } = this;
    const before = [this.rowPx, this.extraPx];
    this.scrollPx = scroller.scrollTop;
    this.viewPx = scroller.clientHeight;
    this.bodyPx = this.tbody.getBoundingClientRect().top - scroller.getBoundingClientRect().top + this.scrollPx;
    if (extra !== null) this.extraPx = extra.getBoundingClientRect().height;
    const rows = this.last - this.first;
    if (rows > 0) {
      const span = bottom.getBoundingClientRect().top - top.getBoundingClientRect().bottom;
      const px = (span - (extra === null ? 0 : this.extraPx)) / rows;
      if (px > 0) this.rowPx = px;
    }
    return Math.abs(this.rowPx - before[0]) >= 0.5 || Math.abs(this.extraPx - before[1]) >= 0.5;
  }
}

function spacer(columns) {
  return el("tr", { class: "spacer", "aria-hidden": "true", hidden: true }, el("td", { colspan: String(columns) }));
}
