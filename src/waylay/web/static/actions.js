// What a person does to a stored flow: replay it (as it was or edited), copy it as a curl or
// httpx command, download its bodies, delete it.
//
// Copying uses the Clipboard API where the page has it (a secure context: 127.0.0.1 and
// localhost are); where it is missing or refused, the text is shown selected in a box, to be
// copied by hand, so the action never silently does nothing.

import { bodyUrl, deleteFlow, exportFlow, fetchPrefix, replayFlow } from "./api.js";
import { asText, VIEW_LIMIT } from "./contentviews.js";
import { h, toast } from "./dom.js";
import { messageEditor } from "./editor.js";

/** Put `text` on the clipboard, or show it in a box to copy by hand. */
export async function copyText(text, what) {
  try {
    if (!navigator.clipboard?.writeText) throw new Error("no clipboard");
    await navigator.clipboard.writeText(text);
    toast(`copied ${what}`);
  } catch {
    showCopyBox(text, what);
  }
}

export function showCopyBox(text, what) {
  document.getElementById("copy-box")?.remove();
  const area = h("textarea", { readonly: true, rows: 8, spellcheck: "false", value: text, "aria-label": what });
  const dialog = h(
    "dialog",
    { id: "copy-box", class: "copy-box" },
    h("p", null, `The clipboard is not available here: copy ${what} from the box (Ctrl+C).`),
    area,
    h("form", { method: "dialog" }, h("button", { type: "submit" }, "close")),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  area.focus();
  area.select();
}

async function replay(flow, hooks, edits) {
  try {
    const { id } = await replayFlow(flow.id, edits);
    toast(`replayed as flow ${id}`);
    hooks.onReplayed?.(id);
    return true;
  } catch (error) {
    toast(`replay failed: ${error.message}`, { error: true, ms: 6000 });
    return false;
  }
}

async function editAndReplay(flow, hooks) {
  const fields = { method: flow.method, url: flow.url, headers: flow.request.headers, body: "" };
  if (flow.request.size) {
    try {
      const raw = await fetchPrefix(bodyUrl(flow.id, "request"), VIEW_LIMIT);
      const text = raw.truncated ? null : asText(raw.bytes);
      if (text === null) {
        fields.bodyLocked = true;
        fields.bodyNote = "The body is binary or over 1 MiB: it is replayed as it is.";
        fields.body = "";
      } else fields.body = text;
    } catch (error) {
      toast(`could not load the request body: ${error.message}`, { error: true });
      return;
    }
  }
  const editor = messageEditor("request", fields);
  const problem = h("p", { class: "error", role: "alert" });
  const dialog = h(
    "dialog",
    { class: "edit-replay" },
    h(
      "form",
      { method: "dialog" },
      h("h2", null, `Edit and replay flow ${flow.id}`),
      editor.element,
      problem,
      h(
        "div",
        { class: "buttons" },
        h("button", { type: "submit", value: "replay", class: "primary" }, "replay"),
        h("button", { type: "submit", value: "cancel", formnovalidate: true }, "cancel"),
      ),
    ),
  );
  dialog.addEventListener("submit", async (event) => {
    if (event.submitter?.value !== "replay") return;
    event.preventDefault();
    let edits;
    try {
      edits = editor.read();
    } catch (error) {
      problem.textContent = error.message;
      return;
    }
    if (await replay(flow, hooks, edits)) dialog.close();
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

/** The toolbar of a flow's detail. */
export function flowActions(flow, hooks) {
  const isHttp = !flow.kind || flow.kind === "http";
  const copy = (format) => async () => {
    try {
      await copyText(await exportFlow(flow.id, format), `as ${format}`);
    } catch (error) {
      toast(`could not export: ${error.message}`, { error: true });
    }
  };
  const button = (label, onclick, extra = {}) => h("button", { type: "button", onclick, ...extra }, label);
  return h(
    "div",
    { class: "actions" },
    isHttp ? button("replay", () => replay(flow, hooks), { title: "send the request again" }) : null,
    isHttp ? button("edit & replay", () => editAndReplay(flow, hooks)) : null,
    isHttp ? button("copy as curl", copy("curl")) : null,
    isHttp ? button("copy as httpx", copy("httpx")) : null,
    flow.request?.size
      ? h("a", { class: "button", href: bodyUrl(flow.id, "request", { download: true }), download: "" }, "request body")
      : null,
    flow.response?.size
      ? h("a", { class: "button", href: bodyUrl(flow.id, "response", { download: true }), download: "" }, "response body")
      : null,
    button(
      "delete",
      async () => {
        if (!confirm(`Delete flow ${flow.id}?`)) return;
        try {
          await deleteFlow(flow.id);
          hooks.onDeleted?.(flow.id);
        } catch (error) {
          toast(`could not delete: ${error.message}`, { error: true });
        }
      },
      { class: "danger" },
    ),
  );
}
