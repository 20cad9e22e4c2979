// The intercept panel: the filter that pauses flows, the flows paused now, and the editor of
// one of them.
//
// A paused flow is not in the store yet: it lives under /api/live by its process id. The list
// here starts from GET /api/live, and follows the WebSocket ("live" when a flow pauses, at its
// request or later at its response; "resumed" when it goes on or is killed); it is read again
// whenever the socket reconnects. Editing is a PATCH of the request (method, URL, headers,
// body) or of the response (status, reason, headers, body); a refusal (400) is shown with its
// reason and changes nothing. "save & resume" patches, then resumes.

import { getIntercept, killLive, listLive, patchLive, resumeAll, resumeLive, setIntercept } from "./api.js";
import { h, pairTable, replaceChildren, toast } from "./dom.js";
import { messageEditor } from "./editor.js";
import { filterProblem } from "./filterbox.js";

export class InterceptPanel {
  /** @param root the panel; @param detail the FlowDetail whose panel shows the editor */
  constructor(root, detail) {
    this.root = root;
    this.detail = detail;
    this.paused = new Map();
    this.editing = null;

    this.input = h("input", {
      type: "search",
      id: "intercept-filter",
      placeholder: "intercept filter, e.g. ~d example.com & ~m POST",
      spellcheck: "false",
      autocomplete: "off",
      "aria-label": "intercept filter",
    });
    this.problem = h("div", { class: "filter-problem", role: "alert" });
    this.state = h("span", { class: "intercept-state" });
    this.count = h("span", { class: "paused-count" });
    this.list = h("ul", { class: "paused-list" });
    const form = h(
      "form",
      { class: "intercept-form", onsubmit: (event) => { event.preventDefault(); this.apply(this.input.value); } },
      h("label", { for: "intercept-filter" }, "intercept"),
      this.input,
      h("button", { type: "submit" }, "set"),
      h("button", { type: "button", onclick: () => this.apply("") }, "off"),
      this.state,
    );
    replaceChildren(
      root,
      form,
      this.problem,
      h(
        "div",
        { class: "paused-bar" },
        this.count,
        h("button", { type: "button", id: "resume-all", onclick: () => this.#act(resumeAll(), "resumed all") }, "resume all"),
      ),
      this.list,
    );
    this.#renderList();
  }

  async load() {
    try {
      const [{ filter }, live] = await Promise.all([getIntercept(), listLive()]);
      this.#showFilter(filter);
      this.paused = new Map(live.map((flow) => [flow.id, flow]));
      this.#renderList();
    } catch (error) {
      toast(`intercept: ${error.message}`, { error: true });
    }
  }

  #showFilter(filter) {
    this.current = filter || null;
    this.input.value = filter ?? "";
    this.state.textContent = filter ? "on" : "off";
    this.root.classList.toggle("active", Boolean(filter));
  }

  async apply(filter) {
    try {
      const answer = await setIntercept(filter.trim());
      replaceChildren(this.problem);
      this.input.removeAttribute("aria-invalid");
      this.#showFilter(answer?.filter ?? (filter.trim() || null));
    } catch (error) {
      if (error.status !== 400) throw error;
      this.input.setAttribute("aria-invalid", "true");
      replaceChildren(this.problem, filterProblem(filter, error));
    }
  }

  /** A message of the WebSocket. */
  handle(message) {
    if (message.type === "live") {
      const before = this.paused.get(message.flow.id);
      this.paused.set(message.flow.id, message.flow);
      this.#renderList();
      if (this.editing === message.flow.id && before?.phase !== message.flow.phase) this.edit(message.flow.id);
    } else if (message.type === "resumed") {
      this.paused.delete(message.id);
      this.#renderList();
      if (this.editing === message.id) {
        this.editing = null;
        this.detail.showNode(h("p", { class: "empty" }, "this flow went on: it is in the list when it is stored"));
      }
    }
  }

  #renderList() {
    const count = this.paused.size;
    this.count.textContent = count ? `${count} paused` : "nothing paused";
    this.root.classList.toggle("has-paused", count > 0);
    document.getElementById("paused-badge")?.replaceChildren(count ? `${count} paused` : "");
    replaceChildren(
      this.list,
      [...this.paused.values()].map((live) => {
        const request = live.flow;
        return h(
          "li",
          { class: `paused phase-${live.phase}`, dataset: { liveId: live.id } },
          h("span", { class: "badge" }, `paused: ${live.phase}`),
          h("button", { type: "button", class: "link", onclick: () => this.edit(live.id) }, `${request.method} ${request.url}`),
          h("button", { type: "button", onclick: () => this.#act(resumeLive(live.id), "resumed") }, "resume"),
          h("button", { type: "button", class: "danger", onclick: () => this.#act(killLive(live.id), "killed") }, "kill"),
        );
      }),
    );
  }

  async #act(promise, done) {
    try {
      await promise;
      toast(done);
    } catch (error) {
      toast(error.message, { error: true });
    }
  }

  /** Open the editor of paused flow `id` in the detail panel. */
  edit(id) {
    const live = this.paused.get(id);
    if (!live) return;
    this.editing = id;
    const flow = live.flow;
    const phase = live.phase;
    const fields =
      phase === "request"
        ? { method: flow.method, url: flow.url, headers: flow.request.headers, body: live.request_body, bodyBase64: live.request_body_base64 }
        : {
            status_code: flow.response.status,
            reason: flow.response.reason,
            headers: flow.response.headers,
            body: live.response_body,
            bodyBase64: live.response_body_base64,
          };
    const editor = messageEditor(phase, fields);
    const problem = h("p", { class: "error", role: "alert" });
    const save = async () => {
      let change;
      try {
        change = { [phase]: editor.read() };
      } catch (error) {
        problem.textContent = error.message;
        return false;
      }
      try {
        await patchLive(id, change);
        problem.textContent = "";
        return true;
      } catch (error) {
        problem.textContent = error.message;
        return false;
      }
    };
    const context =
      phase === "response"
        ? [h("h3", null, "request"), h("p", { class: "code" }, `${flow.method} ${flow.url}`), pairTable(flow.request.headers, { className: "pairs headers" })]
        : [];
    this.detail.showNode(
      h(
        "div",
        { class: "live-editor", dataset: { liveId: id } },
        h("h2", null, h("span", { class: "badge" }, `paused: ${phase}`), " ", `${flow.method} ${flow.url}`),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", onclick: async () => { if (await save()) toast("saved"); } }, "save"),
          h("button", { type: "button", class: "primary", onclick: async () => { if (await save()) this.#act(resumeLive(id), "resumed"); } }, "save & resume"),
          h("button", { type: "button", onclick: () => this.#act(resumeLive(id), "resumed") }, "resume unchanged"),
          h("button", { type: "button", class: "danger", onclick: () => this.#act(killLive(id), "killed") }, "kill"),
        ),
        problem,
        context,
        h("h3", null, phase),
        editor.element,
      ),
    );
  }
}
