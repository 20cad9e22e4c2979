// The flow list: a virtual table whose DOM holds only the rows in sight.
//
// Theory of operation
// -------------------
// Every row is ROW_HEIGHT pixels. The scroller holds a spacer as tall as all the flows
// (`total` rows, from the model) and a pool of row elements, one per position in sight plus
// OVERSCAN on each side, absolutely placed over the spacer. A scroll or a resize schedules one
// render per animation frame: it works out the positions in sight from scrollTop, reuses the
// pool's elements for them (a row is rewritten only when its flow, position or selection
// changed), and tells the model which positions it needs, which fetches their pages. A row whose
// flow has not arrived yet shows as a placeholder.
//
// Browsers cap an element's height (Chromium near 33 million pixels); past MAX_SPACER pixels the
// spacer stays at that height and scrollTop is scaled onto the rows, so ten million flows
// scroll as well as ten thousand.
//
// The selection is a position and, once its flow is loaded, a flow id. j/k and the arrow keys
// move it (loading the flow it lands on if need be), Enter opens it, Escape closes the detail.
// New flows keep what is in sight still: in descending order the view scrolls down by the rows
// added above it, unless it is at the very top; in ascending order, a view at the bottom
// follows the new flows.

import { h, replaceChildren } from "./dom.js";
import { formatClock, formatDuration, formatSize } from "./format.js";

export const ROW_HEIGHT = 24;
export const OVERSCAN = 8;
const MAX_SPACER = 8_000_000;

/** The columns: [sort key, title, the text of a flow's cell]. */
const COLUMNS = [
  ["id", "time", (flow) => formatClock(flow.started)],
  ["method", "method", (flow) => (flow.kind && flow.kind !== "http" ? flow.kind.toUpperCase() : flow.method ?? "")],
  ["host", "host", (flow) => (flow.port && !defaultPort(flow) ? `${flow.host}:${flow.port}` : flow.host ?? "")],
  ["path", "path", (flow) => flow.path ?? ""],
  ["status", "status", (flow) => (flow.error ? "error" : (flow.status ?? "…").toString())],
  ["type", "type", (flow) => (flow.content_type ?? "").split(";")[0]],
  ["size", "size", (flow) => formatSize(flow.response_size)],
  ["duration", "duration", (flow) => formatDuration(flow.duration)],
];

function defaultPort(flow) {
  return (flow.scheme === "https" && flow.port === 443) || (flow.scheme === "http" && flow.port === 80);
}

function statusClass(flow) {
  if (flow.error) return "status-error";
  if (!flow.status) return "status-pending";
  return `status-${Math.floor(flow.status / 100)}xx`;
}

export class FlowList {
  /**
   * @param root the element to fill
   * @param model a FlowModel
   * @param onOpen called with a flow's id when it is opened (click, Enter)
   * @param onSortError called with a message when a sort fails (the server did not answer)
   */
  constructor(root, model, { onOpen, onSortError }) {
    this.model = model;
    this.onOpen = onOpen;
    this.onSortError = onSortError ?? (() => {});
    this.selectedPosition = -1;
    this.selectedId = null;
    this.#pendingOpen = false;

    this.headerCells = COLUMNS.map(([key, title]) =>
      h(
        "button",
        {
          type: "button",
          class: `cell col-${title}`,
          role: "columnheader",
          dataset: { sort: key },
          title: key === "id" ? "sort by time (flow id)" : `sort by ${title}`,
          onclick: () => this.#sortBy(key),
        },
        title,
      ),
    );
    this.header = h("div", { class: "flow-header", role: "row" }, this.headerCells);
    this.spacer = h("div", { class: "flow-spacer" });
    this.empty = h("div", { class: "flow-empty", hidden: true }, "no flows yet");
    this.scroller = h(
      "div",
      { class: "flow-scroller", tabindex: 0, role: "grid", "aria-label": "flows" },
      this.header,
      this.spacer,
      this.empty,
    );
    replaceChildren(root, this.scroller);
    this.pool = [];
    this.#frame = 0;

    this.scroller.addEventListener("scroll", () => this.schedule());
    new ResizeObserver(() => this.schedule()).observe(this.scroller);
    this.spacer.addEventListener("click", (event) => {
      const row = event.target.closest(".flow-row");
      if (row) this.select(Number(row.dataset.position), { open: true });
    });
    model.addEventListener("change", (event) => this.#changed(event.detail));
    this.#updateHeader();
  }

  #frame;
  #pendingOpen;
  #atBottom = true;

  schedule() {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.render();
    });
  }

  get viewHeight() {
    return Math.max(0, this.scroller.clientHeight - this.header.offsetHeight);
  }

  /** [contentHeight, spacerHeight, the virtual scrollTop of the rows]. */
  #geometry() {
    const content = this.model.total * ROW_HEIGHT;
    const spacer = Math.min(content, MAX_SPACER);
    const view = this.viewHeight;
    const maxScroll = Math.max(0, spacer - view);
    const top = Math.min(this.scroller.scrollTop, maxScroll);
    const virtualTop = maxScroll > 0 ? (top * Math.max(0, content - view)) / maxScroll : 0;
    return { content, spacer, view, top, virtualTop };
  }

  /** The scrollTop that shows the row at `position` at `virtual` pixels of the rows. */
  #scrollTopFor(virtual) {
    const { content, spacer, view } = this.#geometry();
    const maxScroll = Math.max(0, spacer - view);
    const maxVirtual = Math.max(0, content - view);
    return maxVirtual > 0 ? (virtual * maxScroll) / maxVirtual : 0;
  }

  render() {
    const model = this.model;
    const { spacer, view, top, virtualTop } = this.#geometry();
    this.spacer.style.height = `${spacer}px`;
    this.empty.hidden = model.total > 0;
    const first = Math.max(0, Math.floor(virtualTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(model.total, Math.ceil((virtualTop + view) / ROW_HEIGHT) + OVERSCAN);
    const shift = top - virtualTop;
    const count = Math.max(0, last - first);
    while (this.pool.length < count) {
      const row = h(
        "div",
        { class: "flow-row", role: "row" },
        COLUMNS.map(([, title]) => h("span", { class: `cell col-${title}`, role: "gridcell" })),
      );
      this.pool.push(row);
      this.spacer.append(row);
    }
    while (this.pool.length > count) this.pool.pop().remove();
    for (let i = 0; i < count; i += 1) {
      const position = first + i;
      const row = this.pool[i];
      row.style.transform = `translateY(${position * ROW_HEIGHT + shift}px)`;
      this.#fill(row, position, model.rowAt(position));
    }
    model.want(first, last);
    this.#atBottom = top + view >= spacer - 2;
    if (this.selectedPosition >= 0 && this.selectedId === null) {
      const flow = model.rowAt(this.selectedPosition);
      if (flow) this.#selected(flow);
    }
  }

  #fill(row, position, flow) {
    const selected = position === this.selectedPosition;
    if (row._flow === flow && row._position === position && row._selected === selected) return;
    row._flow = flow;
    row._position = position;
    row._selected = selected;
    row.dataset.position = position;
    row.classList.toggle("selected", selected);
    row.setAttribute("aria-selected", selected ? "true" : "false");
    const cells = row.children;
    if (!flow) {
      row.className = selected ? "flow-row loading selected" : "flow-row loading";
      delete row.dataset.id;
      for (const cell of cells) cell.textContent = "";
      return;
    }
    row.className = `flow-row ${statusClass(flow)}${selected ? " selected" : ""}`;
    row.dataset.id = flow.id;
    COLUMNS.forEach(([, , text], i) => {
      cells[i].textContent = text(flow);
    });
    if (flow.error) cells[4].title = flow.error.reason ?? "";
    else cells[4].removeAttribute("title");
    cells[3].title = flow.url ?? "";
  }

  #changed(detail) {
    if (detail.reset) {
      this.selectedPosition = this.selectedId === null ? -1 : this.model.positionOf(this.selectedId);
      this.#updateHeader();
    } else if (detail.appended) {
      if (this.model.descending) {
        if (this.selectedPosition >= 0) this.selectedPosition += detail.appended;
        if (this.scroller.scrollTop > 0) {
          this.scroller.scrollTop += detail.appended * ROW_HEIGHT;
        }
      } else if (this.#atBottom) {
        this.spacer.style.height = `${Math.min(this.model.total * ROW_HEIGHT, MAX_SPACER)}px`;
        this.scroller.scrollTop = this.scroller.scrollHeight;
      }
    } else if (detail.removed && this.selectedId !== null) {
      this.selectedPosition = this.model.positionOf(this.selectedId);
    }
    this.schedule();
  }

  async #sortBy(key) {
    const model = this.model;
    // A new column sorts ascending first; a second click flips it.
    const descending = model.sortKey === key ? !model.descending : false;
    try {
      await model.sort(key, descending);
    } catch (error) {
      this.onSortError(error.message);
    }
  }

  #updateHeader() {
    for (const cell of this.headerCells) {
      const active = cell.dataset.sort === this.model.sortKey;
      cell.classList.toggle("sorted", active);
      cell.classList.toggle("descending", active && this.model.descending);
      cell.setAttribute(
        "aria-sort",
        active ? (this.model.descending ? "descending" : "ascending") : "none",
      );
    }
  }

  /** Select the row at `position` (scrolled into view); `open` opens its detail. */
  select(position, { open = false } = {}) {
    if (this.model.total === 0) return;
    const clamped = Math.max(0, Math.min(this.model.total - 1, position));
    this.selectedPosition = clamped;
    this.selectedId = null;
    this.#pendingOpen = open;
    this.#scrollIntoView(clamped);
    const flow = this.model.rowAt(clamped);
    if (flow) this.#selected(flow);
    this.schedule();
  }

  #selected(flow) {
    this.selectedId = flow.id;
    if (this.#pendingOpen) {
      this.#pendingOpen = false;
      this.onOpen(flow.id);
    }
  }

  /** Select flow `id` if it is in the list (after a replay made it). */
  selectId(id, { open = false } = {}) {
    const position = this.model.positionOf(id);
    this.selectedId = id;
    this.selectedPosition = position;
    if (position >= 0) this.#scrollIntoView(position);
    if (open) this.onOpen(id);
    this.schedule();
  }

  #scrollIntoView(position) {
    const { virtualTop, view } = this.#geometry();
    const rowTop = position * ROW_HEIGHT;
    if (rowTop < virtualTop) this.scroller.scrollTop = this.#scrollTopFor(rowTop);
    else if (rowTop + ROW_HEIGHT > virtualTop + view) {
      this.scroller.scrollTop = this.#scrollTopFor(rowTop + ROW_HEIGHT - view);
    }
  }

  /** j/k, arrows, Page Up/Down, Home/End, Enter: true when the key was the list's. */
  handleKey(event) {
    const page = Math.max(1, Math.floor(this.viewHeight / ROW_HEIGHT) - 1);
    const from = this.selectedPosition;
    const moves = {
      j: from + 1,
      ArrowDown: from + 1,
      k: from < 0 ? 0 : from - 1,
      ArrowUp: from < 0 ? 0 : from - 1,
      PageDown: from + page,
      PageUp: from - page,
      Home: 0,
      End: this.model.total - 1,
    };
    if (event.key in moves) {
      this.select(moves[event.key], { open: this.detailOpen?.() ?? false });
      return true;
    }
    if (event.key === "Enter" && this.selectedId !== null) {
      this.onOpen(this.selectedId);
      return true;
    }
    return false;
  }

  focus() {
    this.scroller.focus({ preventScroll: true });
  }
}
