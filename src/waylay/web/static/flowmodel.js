// The flows the list shows, by position, without ever holding them all.
//
// Theory of operation
// -------------------
// The server answers windows of the flows matching a filter, sorted by a column: `offset`,
// `limit`, and `total`, the count of all that match. The model keeps `total` and a bounded
// cache of pages (PAGE_SIZE flows each, at most MAX_PAGES of them, least recently wanted
// evicted) for one view, (filter, sort, order) (`#view`): another view starts another cache.
// Sorted by id, the pages are always asked ascending and a position in the list maps onto the
// flow's index: the same in ascending order, mirrored (total - 1 - position) in descending
// order, so both id orders share one cache and flipping them costs no request. Sorted by any
// other column, the server sorts, in either order, and a position is the index.
//
// The view says which positions it shows (`want`); the pages they fall in are fetched, at most
// MAX_CONCURRENT at once, nearest first, and only while still wanted, so dragging the scroll bar
// across 100,000 flows fetches the pages it stops on, not every page it passed.
//
// New flows: the WebSocket says "there is more" (`noteNewFlow`); a short moment later, sorted
// by id, one request asks for the flows matching the filter with an id over the last one known
// (`?after=`), and they are appended; sorted by another column, new flows land anywhere, so the
// model counts again and fetches the windows in sight again (a resync). The store is the truth: a burst of a thousand messages
// costs a request or two, and a dropped socket loses nothing (the page catches up the same way
// when it reconnects). A deletion or a reconnection marks the cached pages stale (`freshness`):
// they are still shown, and fetched again as they are wanted.
//
// Catch-ups, resyncs and (re)loads run one after the other (`#serial`): each reads `total` and
// the last id as the one before left them. An answer for an older filter or sort
// (`#generation`) is dropped.

import { listFlows } from "./api.js";

export const PAGE_SIZE = 200;
const MAX_PAGES = 50;
const MAX_CONCURRENT = 3;
const CATCH_UP_LIMIT = 1000;
const CATCH_UP_DELAY_MS = 120;
// Past this many flows behind, reload instead of paging through them all.
const CATCH_UP_MAX_ROUNDS = 5;

/** The columns the server sorts by (`sort=`); "id" is the order flows were stored in. */
export const SORT_KEYS = ["id", "started", "method", "host", "path", "status", "type", "size", "duration"];

export class FlowModel extends EventTarget {
  filter = "";
  sortKey = "id";
  descending = false;
  total = 0;
  #generation = 0;
  #freshness = 0;
  #pages = new Map();
  #loading = new Map();
  #wanted = [];
  #lastId = 0;
  #serial = Promise.resolve();
  #catchUpQueued = false;
  #lateFlow = false;

  get lastId() {
    return this.#lastId;
  }

  get cachedRows() {
    let count = 0;
    for (const page of this.#pages.values()) count += page.rows.length;
    return count;
  }

  /** Run `operation` after every catch-up, resync and load queued before it. */
  #queue(operation) {
    const result = this.#serial.then(operation);
    this.#serial = result.catch(() => {});
    return result;
  }

  #emit(detail) {
    this.dispatchEvent(new CustomEvent("change", { detail }));
  }

  /** The flows matching `filter`, from the first. A filter that does not parse throws the
   * server's ApiError (status 400, reason, column) and leaves the model as it was. */
  load(filter) {
    return this.#queue(() => this.#reload(filter, this.sortKey, this.descending));
  }

  /** Order by `key` (one of SORT_KEYS), descending or not. */
  sort(key, descending) {
    return this.#queue(async () => {
      if (key === "id" && this.sortKey === "id") {
        this.descending = descending;
        this.#emit({ reset: true });
        return;
      }
      await this.#reload(this.filter, key, descending);
    });
  }

  /** The query of the view (filter, sort, order) for `offset` and `limit`. */
  #query(offset, limit, view = this) {
    if (view.sortKey === "id") return { filter: view.filter, offset, limit };
    const order = view.descending ? "desc" : "asc";
    return { filter: view.filter, sort: view.sortKey, order, offset, limit };
  }

  async #reload(filter, sortKey, descending) {
    const view = { filter, sortKey, descending };
    const first = await listFlows(this.#query(0, PAGE_SIZE, view));
    this.#generation += 1;
    Object.assign(this, view);
    this.#pages.clear();
    this.total = first.total;
    this.#store(0, first.flows);
    this.#lastId = 0;
    if (sortKey === "id") {
      this.#lastId = first.flows.length ? first.flows.at(-1).id : 0;
      if (first.total > first.flows.length) await this.#loadLastPage();
    }
    this.#emit({ reset: true });
  }

  async #loadLastPage() {
    const generation = this.#generation;
    const index = Math.floor((this.total - 1) / PAGE_SIZE);
    const answer = await listFlows(this.#query(index * PAGE_SIZE, PAGE_SIZE));
    if (generation !== this.#generation) return;
    this.#store(index, answer.flows);
    if (answer.flows.length) this.#lastId = Math.max(this.#lastId, answer.flows.at(-1).id);
  }

  /** The flow's index in the server's order for a position in the list. */
  #index(position) {
    return this.descending && this.sortKey === "id" ? this.total - 1 - position : position;
  }

  /** The flow shown at `position`, or undefined while its page is being fetched. */
  rowAt(position) {
    if (position < 0 || position >= this.total) return undefined;
    const index = this.#index(position);
    return this.#pages.get(Math.floor(index / PAGE_SIZE))?.rows[index % PAGE_SIZE];
  }

  /** The position of flow `id` if the model has it at hand, else -1. */
  positionOf(id) {
    for (const [pageIndex, page] of this.#pages) {
      const offset = page.rows.findIndex((flow) => flow?.id === id);
      if (offset >= 0) return this.#index(pageIndex * PAGE_SIZE + offset);
    }
    return -1;
  }

  /** The view shows positions [first, last): fetch the pages they need. */
  want(first, last) {
    if (last <= first) {
      this.#wanted = [];
      return;
    }
    const a = this.#index(first);
    const b = this.#index(last - 1);
    const low = Math.floor(Math.min(a, b) / PAGE_SIZE);
    const high = Math.floor(Math.max(a, b) / PAGE_SIZE);
    const wanted = [];
    for (let page = low; page <= high; page += 1) wanted.push(page);
    this.#wanted = wanted;
    for (const page of wanted) {
      const cached = this.#pages.get(page);
      if (cached) {
        // Map order is the eviction order: a wanted page goes to the back.
        this.#pages.delete(page);
        this.#pages.set(page, cached);
      }
    }
    this.#pump();
  }

  #needsFetch(page) {
    if (page * PAGE_SIZE >= this.total) return false;
    const cached = this.#pages.get(page);
    const complete =
      cached &&
      cached.rows.length >= Math.min(PAGE_SIZE, this.total - page * PAGE_SIZE) &&
      !cached.rows.includes(undefined);
    return !complete || cached.freshness !== this.#freshness;
  }

  #pump() {
    for (const page of this.#wanted) {
      if (this.#loading.size >= MAX_CONCURRENT) return;
      if (this.#loading.has(page) || !this.#needsFetch(page)) continue;
      this.#fetchPage(page);
    }
  }

  async #fetchPage(page) {
    const generation = this.#generation;
    const freshness = this.#freshness;
    this.#loading.set(page, freshness);
    try {
      const answer = await listFlows(this.#query(page * PAGE_SIZE, PAGE_SIZE));
      if (generation !== this.#generation) return;
      this.#store(page, answer.flows, freshness);
      this.#emit({});
    } catch (error) {
      this.dispatchEvent(new CustomEvent("error", { detail: error }));
    } finally {
      this.#loading.delete(page);
      if (generation === this.#generation) setTimeout(() => this.#pump(), 0);
    }
  }

  #store(page, flows, freshness = this.#freshness) {
    const cached = this.#pages.get(page);
    // Flows appended while the page was on its way stay: they sit past what it answered.
    const rows = cached && cached.rows.length > flows.length ? cached.rows : [];
    flows.forEach((flow, i) => {
      rows[i] = flow;
    });
    this.#pages.delete(page);
    this.#pages.set(page, { freshness, rows });
    this.#evict();
  }

  #evict() {
    if (this.#pages.size <= MAX_PAGES) return;
    const keep = new Set(this.#wanted);
    for (const page of this.#pages.keys()) {
      if (this.#pages.size <= MAX_PAGES) return;
      if (!keep.has(page)) this.#pages.delete(page);
    }
  }

  /** A flow was stored (the WebSocket said so): fetch what is new, soon, once for a burst.
   * A flow's id is taken when it starts and it is stored when it ends, so a long one can be
   * stored after flows with higher ids: one at or under the last id known is no news for
   * `after=`, and the model counts again and fetches the windows in sight instead. */
  noteNewFlow(id) {
    if (id !== undefined && id <= this.#lastId) this.#lateFlow = true;
    if (this.#catchUpQueued) return;
    this.#catchUpQueued = true;
    setTimeout(() => {
      this.#catchUpQueued = false;
      const late = this.#lateFlow;
      this.#lateFlow = false;
      (late ? this.resync() : this.catchUp()).catch((error) => {
        this.dispatchEvent(new CustomEvent("error", { detail: error }));
      });
    }, CATCH_UP_DELAY_MS);
  }

  /** Append the flows matching the filter with an id over the last one known; sorted by
   * another column than id, count again and fetch the windows in sight again. */
  catchUp() {
    return this.#queue(async () => {
      if (this.sortKey !== "id") {
        await this.#resync();
        return;
      }
      const generation = this.#generation;
      for (let round = 0; round < CATCH_UP_MAX_ROUNDS; round += 1) {
        const answer = await listFlows({
          filter: this.filter,
          after: this.#lastId,
          limit: CATCH_UP_LIMIT,
        });
        if (generation !== this.#generation) return;
        this.#append(answer.flows.filter((flow) => flow.id > this.#lastId));
        if (answer.flows.length < CATCH_UP_LIMIT) return;
      }
      await this.#resync();
    });
  }

  #append(flows) {
    if (flows.length === 0) return;
    for (const flow of flows) {
      const index = this.total;
      const page = this.#pages.get(Math.floor(index / PAGE_SIZE));
      if (page) page.rows[index % PAGE_SIZE] = flow;
      else if (index % PAGE_SIZE === 0) {
        this.#pages.set(index / PAGE_SIZE, { freshness: this.#freshness, rows: [flow] });
      }
      this.total += 1;
      this.#lastId = flow.id;
    }
    this.#evict();
    this.#emit({ appended: flows.length });
  }

  /** Count again and mark every cached page stale (after a deletion or a reconnection). */
  resync() {
    return this.#queue(() => this.#resync());
  }

  async #resync() {
    const generation = this.#generation;
    // Sorted by id, the first page and the last (for the last id); else the first page in
    // sight answers the count. The rest in sight follow (#pump).
    const byId = this.sortKey === "id";
    const page = byId || !this.#wanted.length ? 0 : this.#wanted[0];
    const first = await listFlows(this.#query(page * PAGE_SIZE, PAGE_SIZE));
    if (generation !== this.#generation) return;
    this.#freshness += 1;
    this.total = first.total;
    this.#store(page, first.flows);
    if (byId) {
      if (first.total > first.flows.length) await this.#loadLastPage();
      else this.#lastId = first.flows.length ? first.flows.at(-1).id : 0;
    }
    this.#emit({ reset: true });
    this.#pump();
  }

  /** Flow `id` was deleted. */
  removed(id) {
    if (this.sortKey !== "id" || id <= this.#lastId) this.resync().catch(() => {});
  }

  /** Every flow was deleted. */
  cleared() {
    this.#generation += 1;
    this.#pages.clear();
    this.total = 0;
    this.#emit({ reset: true });
  }
}
