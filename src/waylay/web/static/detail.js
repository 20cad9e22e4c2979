// One stored flow in full: its request and response (headers, query, body views), its timing
// (the four moments and the phases between them as bars), its connection and each side's TLS,
// and the actions on it (actions.js).
//
// The detail of flow N is fetched when it is opened (GET /api/flows/N); the bodies only when
// their tab is shown (contentviews.js). The tab chosen stays chosen from one flow to the next,
// as a person walking the list with j/k reads the same part of each.

import { getFlow } from "./api.js";
import { flowActions } from "./actions.js";
import { bodyPanel } from "./contentviews.js";
import { h, pairTable, replaceChildren } from "./dom.js";
import { formatAddress, formatDateTime, formatDuration, formatSize } from "./format.js";

const TABS = ["request", "response", "timing", "connection"];

/** The value of the first header `name` in [[name, value], ...], or null. */
export function headerValue(headers, name) {
  const lower = name.toLowerCase();
  return (headers ?? []).find(([key]) => key.toLowerCase() === lower)?.[1] ?? null;
}

export function queryPairs(url) {
  try {
    return [...new URL(url).searchParams];
  } catch {
    return [];
  }
}

const known = (value) => value !== null && value !== undefined;

/**
 * The flow's four moments, and the three phases between them as bars over its whole time:
 * connecting and sending the request, waiting for the first response byte, receiving the rest.
 */
export function timingView(timestamps) {
  const { start, request_sent: sent, first_response_byte: first, end } = timestamps ?? {};
  if (!known(start)) return h("p", { class: "empty" }, "no timestamps");
  const phases = [
    ["whole", "the whole flow", start, end],
    ["send", "connecting and sending the request", start, sent],
    ["wait", "waiting for the response", sent, first],
    ["receive", "receiving the response", first, end],
  ];
  const finish = end ?? first ?? sent ?? start;
  const whole = Math.max(finish - start, 1e-6);
  const shown = phases.filter(([, , from, to]) => known(from) && known(to));
  const rows = shown.map(([phase, label, from, to]) => {
    const bar = h("span", { class: `timing-bar timing-${phase}` });
    bar.style.left = `${((from - start) / whole) * 100}%`;
    bar.style.width = `${Math.max(((to - from) / whole) * 100, 0.5)}%`;
    return h(
      "div",
      { class: "timing-row", dataset: { phase } },
      h("span", { class: "timing-label" }, label),
      h("span", { class: "timing-track" }, bar),
      h("span", { class: "timing-value" }, formatDuration(to - from)),
    );
  });
  if (shown.length < phases.length) {
    rows.push(h("p", { class: "empty" }, "the other moments of this flow were not recorded"));
  }
  const moments = [
    ["started", start],
    ["request sent", sent],
    ["first response byte", first],
    ["ended", end],
  ].map(([label, at]) => [label, known(at) ? `${formatDateTime(at)} (+${formatDuration(at - start)})` : "not recorded"]);
  return h(
    "div",
    { class: "timing" },
    rows,
    h("p", null, `started ${formatDateTime(start)}, `, end ? `took ${formatDuration(end - start)}` : "not finished"),
    pairTable(moments, { className: "pairs moments" }),
  );
}

/** One side's TLS (DETAIL's tls.client or tls.server) as name/value rows. */
export function tlsRows(side) {
  const rows = [
    ["TLS version", side.version ?? "unknown"],
    ["ALPN", side.alpn ?? "none"],
    ["SNI", side.sni ?? "none"],
    ["certificate names", (side.cert_names ?? []).join(", ")],
    ["issuer", side.issuer ?? ""],
    ["valid from", known(side.not_before) ? formatDateTime(side.not_before) : ""],
    ["valid to", known(side.not_after) ? formatDateTime(side.not_after) : ""],
  ];
  return rows.filter(([, value]) => value !== "");
}

function connectionView(flow) {
  const rows = [
    ["client", formatAddress(flow.client)],
    ["server", flow.server ? formatAddress(flow.server) : "none (no connection made)"],
    ["kind", flow.kind ?? ""],
    ["scheme", flow.scheme ?? ""],
    ["host and port", `${flow.host ?? ""}:${flow.port ?? ""}`],
    ["HTTP version", flow.http_version ?? ""],
    ["request size", formatSize(flow.request_size)],
    ["response size", formatSize(flow.response_size)],
  ];
  if (flow.error) rows.push(["error", `${flow.error.code ?? ""} ${flow.error.reason ?? ""}`.trim()]);
  const sections = [pairTable(rows.filter(([, value]) => value !== ""), { className: "pairs connection" })];
  const sides = [
    ["client", "TLS with the client (the certificate waylay forged)"],
    ["server", "TLS with the server (its own certificate)"],
  ];
  for (const [side, title] of sides) {
    const details = flow.tls?.[side];
    if (!details) continue;
    sections.push(h("h3", null, title), pairTable(tlsRows(details), { className: `pairs tls tls-${side}` }));
  }
  if (!flow.tls?.client && !flow.tls?.server) sections.push(h("p", { class: "empty tls-none" }, "no TLS intercepted"));
  return h("div", { class: "connection-view" }, sections);
}

function messageView(flow, part) {
  const message = flow[part];
  if (!message) {
    return h("p", { class: "empty" }, flow.error ? `no response: ${flow.error.reason}` : "no response yet");
  }
  const first =
    part === "request"
      ? `${flow.method} ${flow.url} ${flow.http_version ?? ""}`
      : `${message.http_version ?? ""} ${message.status} ${message.reason ?? ""}`;
  const sections = [h("p", { class: "start-line code" }, first.trim()), h("h3", null, "headers"),
    pairTable(message.headers, { className: "pairs headers", empty: "no headers" })];
  if (part === "request") {
    const query = queryPairs(flow.url);
    if (query.length) sections.push(h("h3", null, "query"), pairTable(query, { className: "pairs query" }));
  }
  if (message.trailers?.length) {
    sections.push(h("h3", null, "trailers"), pairTable(message.trailers, { className: "pairs trailers" }));
  }
  sections.push(h("h3", null, "body"));
  if (message.truncated) sections.push(h("p", { class: "truncated" }, "the store kept only the first part of this body"));
  sections.push(
    bodyPanel({
      id: flow.id,
      part,
      contentType: headerValue(message.headers, "content-type"),
      encoded: headerValue(message.headers, "content-encoding"),
      size: message.size,
    }),
  );
  return h("div", { class: `message ${part}` }, sections);
}

export class FlowDetail {
  /** @param root the panel; @param hooks {onClose, onReplayed(id), onDeleted(id), filter()} */
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.tab = "request";
    this.flowId = null;
    this.#token = 0;
  }

  #token;

  get isOpen() {
    return !this.root.hidden;
  }

  async show(id) {
    const token = ++this.#token;
    this.flowId = id;
    this.root.hidden = false;
    document.body.classList.add("detail-open");
    replaceChildren(this.root, this.#closeButton(), h("p", { class: "empty" }, "loading…"));
    let flow;
    try {
      flow = await getFlow(id);
    } catch (error) {
      if (token !== this.#token) return;
      const message = error.status === 404 ? `flow ${id} is gone` : error.message;
      replaceChildren(this.root, this.#closeButton(), h("p", { class: "error" }, message));
      return;
    }
    if (token !== this.#token) return;
    this.render(flow);
  }

  /** Render an arbitrary node (the intercept panel's editor) in the panel. */
  showNode(node) {
    ++this.#token;
    this.flowId = null;
    this.root.hidden = false;
    document.body.classList.add("detail-open");
    replaceChildren(this.root, this.#closeButton(), node);
  }

  close() {
    ++this.#token;
    this.flowId = null;
    this.root.hidden = true;
    document.body.classList.remove("detail-open");
    replaceChildren(this.root);
    this.hooks.onClose?.();
  }

  #closeButton() {
    return h("button", { type: "button", class: "close", title: "close (Escape)", onclick: () => this.close() }, "×");
  }

  render(flow) {
    const status = flow.error
      ? h("span", { class: "status-error" }, `error: ${flow.error.reason ?? flow.error.code}`)
      : flow.status
        ? h("span", { class: `status-${Math.floor(flow.status / 100)}xx` }, `${flow.status} ${flow.reason ?? ""}`)
        : h("span", null, "no response");
    const panels = new Map();
    const tabBar = h("div", { class: "tabs", role: "tablist" });
    const body = h("div", { class: "tab-body" });
    const choose = (tab) => {
      this.tab = tab;
      for (const button of tabBar.children) {
        button.setAttribute("aria-selected", String(button.dataset.tab === tab));
      }
      if (!panels.has(tab)) {
        const make = {
          request: () => messageView(flow, "request"),
          response: () => messageView(flow, "response"),
          timing: () => timingView(flow.timestamps),
          connection: () => connectionView(flow),
        }[tab];
        panels.set(tab, make());
      }
      replaceChildren(body, panels.get(tab));
    };
    for (const tab of TABS) {
      tabBar.append(h("button", { type: "button", role: "tab", dataset: { tab }, onclick: () => choose(tab) }, tab));
    }
    replaceChildren(
      this.root,
      this.#closeButton(),
      h("h2", { class: "detail-title" }, h("span", { class: "method" }, flow.method ?? flow.kind ?? ""), " ",
        h("span", { class: "url" }, flow.url ?? ""), " ", status),
      flowActions(flow, this.hooks),
      tabBar,
      body,
    );
    this.root.dataset.flowId = flow.id;
    choose(this.tab);
  }
}
