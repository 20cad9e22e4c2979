// The page: wires the list, the detail, the intercept panel and the live feed together.

import { clearFlows, getInfo, harUrl } from "./api.js";
import { toast } from "./dom.js";
import { FlowDetail } from "./detail.js";
import { FilterBox } from "./filterbox.js";
import { FlowList } from "./flowlist.js";
import { FlowModel } from "./flowmodel.js";
import { InterceptPanel } from "./intercept.js";
import { Updates } from "./updates.js";

const $ = (id) => document.getElementById(id);

const model = new FlowModel();
const detail = new FlowDetail($("detail"), {
  onClose: () => list.focus(),
  onReplayed: (id) => {
    // The new flow comes in through the feed; open it once the list has it.
    model.catchUp().then(() => list.selectId(id, { open: true }));
  },
  onDeleted: () => detail.close(),
});
const list = new FlowList($("flows"), model, {
  onOpen: (id) => {
    if (detail.flowId !== id) detail.show(id);
  },
  onSortError: (message) => toast(message, { error: true, ms: 6000 }),
});
list.detailOpen = () => detail.isOpen && detail.flowId !== null;
const intercept = new InterceptPanel($("intercept"), detail);
const updates = new Updates();

function showCount() {
  const total = model.total.toLocaleString("en");
  $("flow-count").textContent = model.filter ? `${total} matching` : `${total} flows`;
}
model.addEventListener("change", showCount);
model.addEventListener("error", (event) => toast(event.detail.message, { error: true }));

const filterBox = new FilterBox($("filter"), $("filter-problem"), async (expression) => {
  await model.load(expression);
  $("har-link").href = harUrl(expression);
});

$("clear").addEventListener("click", async () => {
  if (!confirm("Delete every stored flow?")) return;
  try {
    await clearFlows();
    model.cleared();
    detail.close();
  } catch (error) {
    toast(`could not clear: ${error.message}`, { error: true });
  }
});

window.addEventListener("waylay:forbidden", () => {
  $("forbidden").hidden = false;
});

let loaded = false;
updates.addEventListener("status", (event) => {
  const { state, delay } = event.detail;
  const element = $("connection");
  element.dataset.state = state;
  element.textContent =
    state === "live" ? "live" : state === "reconnecting" ? `reconnecting in ${Math.ceil(delay / 1000)} s` : "connecting…";
});
updates.addEventListener("open", () => {
  if (!loaded) return;
  // Whatever came while the socket was away: new flows, and deletions the cache may hold.
  model.catchUp().then(() => model.resync()).catch(() => {});
  intercept.load();
});
updates.addEventListener("message", (event) => {
  const message = event.detail;
  switch (message.type) {
    case "flow":
      model.noteNewFlow(message.flow?.id);
      break;
    case "live":
    case "resumed":
      intercept.handle(message);
      break;
    case "cleared":
      model.cleared();
      if (detail.flowId !== null) detail.close();
      break;
    case "deleted":
      model.removed(message.id);
      if (detail.flowId === message.id) detail.close();
      break;
  }
});

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  if (document.querySelector("dialog[open]")) return;
  const target = event.target;
  if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) return;
  if (event.key === "Escape") {
    if (detail.isOpen) {
      detail.close();
      event.preventDefault();
    }
    return;
  }
  if (event.key === "/") {
    $("filter").focus();
    event.preventDefault();
    return;
  }
  if (target instanceof HTMLElement && target.closest("button, a, .detail")) {
    if (event.key === "Enter" || event.key === " ") return;
  }
  if (list.handleKey(event)) event.preventDefault();
});

async function start() {
  getInfo()
    .then((info) => {
      $("proxy-info").textContent = `proxy ${info.listen} · ${info.mode} · waylay ${info.version}`;
      if (info.install_page) {
        $("install-link").href = info.install_page;
        $("install-link").textContent = info.install_page;
      }
    })
    .catch(() => {});
  updates.start();
  intercept.load();
  try {
    await filterBox.submit();
  } catch (error) {
    toast(`could not load the flows: ${error.message}`, { error: true, ms: 8000 });
  } finally {
    loaded = true;
  }
  model.catchUp().catch(() => {});
  showCount();
  list.focus();
}

// For the browser tests and for a person at the console: the page's parts.
window.waylay = { model, list, detail, intercept, updates };
start();
