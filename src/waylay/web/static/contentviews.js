// A body as a person wants to read it: the view is chosen by content type, then by the bytes.
//
// A body is fetched once per (flow, part, decoded) and only its first VIEW_LIMIT bytes (1 MiB):
// a 100 MiB download or a stream of binary garbage costs the page one megabyte and shows a
// download link for the rest. Images are not fetched here at all: an <img> loads the body URL.
// Views that build many elements have their own smaller limits (HIGHLIGHT_LIMIT, HEX_LIMIT,
// JSON folds open lazily), so no view makes the page stall.
//
// The views: json (pretty-printed, every object and array foldable), html/xml/javascript/css
// (highlight.js), form (application/x-www-form-urlencoded as a table), multipart (the parts of
// multipart/form-data as a table), image, text, hex.
// "auto" picks by the Content-Type, and for a type that says nothing (octet-stream, none) by
// the bytes: UTF-8 without control characters is text (JSON when it parses), else hex. Bytes
// that are not the text their type promises (a gzip body seen raw) are shown in hex too.

import { bodyUrl, fetchPrefix } from "./api.js";
import { h, pairTable, replaceChildren } from "./dom.js";
import { formatSize } from "./format.js";
import { highlighted } from "./highlight.js";

export const VIEW_LIMIT = 1024 * 1024;
const HIGHLIGHT_LIMIT = 256 * 1024;
const HEX_LIMIT = 64 * 1024;
const JSON_OPEN_DEPTH = 2;
const JSON_MAX_CHILDREN = 1000;

export const VIEWS = ["auto", "json", "html", "xml", "javascript", "css", "form", "multipart", "image", "text", "hex"];
const MULTIPART_VALUE_LIMIT = 2000;

/** The view a Content-Type asks for, or null when it does not say. */
export function viewForType(contentType) {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (!type || type === "application/octet-stream") return null;
  if (type.startsWith("image/")) return "image";
  if (type === "application/json" || type.endsWith("+json") || type.endsWith("/json")) return "json";
  if (type === "text/html" || type === "application/xhtml+xml") return "html";
  if (type.endsWith("/xml") || type.endsWith("+xml")) return "xml";
  if (type.includes("javascript") || type.includes("ecmascript")) return "javascript";
  if (type === "text/css") return "css";
  if (type === "application/x-www-form-urlencoded") return "form";
  if (type === "multipart/form-data") return "multipart";
  if (type.startsWith("text/")) return "text";
  return "hex";
}

/** The bytes as text if they are UTF-8 without control characters, else null. */
export function asText(bytes) {
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    // A cut at VIEW_LIMIT may split a character: try once without the last three bytes.
    if (bytes.length < VIEW_LIMIT) return null;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, -3));
    } catch {
      return null;
    }
  }
  // Text has no NUL and few control characters besides tab, newline, carriage return.
  return /[\x00-\x08\x0e-\x1a\x1c-\x1f]/.test(text.slice(0, 4096)) ? null : text;
}

function sniff(bytes) {
  const text = asText(bytes);
  if (text === null) return "hex";
  const start = text.trimStart()[0];
  if (start === "{" || start === "[") {
    try {
      JSON.parse(text);
      return "json";
    } catch {
      return "text";
    }
  }
  if (start === "<") return /^\s*<(!doctype html|html)/i.test(text) ? "html" : "xml";
  return "text";
}

/** The view for bytes of a type: the type's, unless the bytes are not the text it promised
 * (a compressed body seen raw, a mislabelled download). */
function autoView(typed, bytes) {
  if (!typed || typed === "hex") return sniff(bytes);
  const mayBeBinary = typed === "image" || typed === "multipart";
  return !mayBeBinary && asText(bytes) === null ? "hex" : typed;
}

/** Offset, sixteen bytes in hex, and the same as ASCII, a line each. */
export function hexDump(bytes, limit = HEX_LIMIT) {
  const lines = [];
  const end = Math.min(bytes.length, limit);
  for (let offset = 0; offset < end; offset += 16) {
    const row = bytes.subarray(offset, Math.min(offset + 16, end));
    let hex = "";
    let ascii = "";
    for (let i = 0; i < 16; i += 1) {
      if (i === 8) hex += " ";
      if (i < row.length) {
        hex += `${row[i].toString(16).padStart(2, "0")} `;
        ascii += row[i] >= 0x20 && row[i] < 0x7f ? String.fromCharCode(row[i]) : ".";
      } else hex += "   ";
    }
    lines.push(`${offset.toString(16).padStart(8, "0")}  ${hex} |${ascii}|`);
  }
  return lines.join("\n");
}

/**
 * The parts of a multipart/form-data body (RFC 7578) as [name, value] rows: a text field's
 * value, or for a file or binary part its file name, type and size.
 */
export function multipartFields(bytes, contentType) {
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? "");
  if (!boundary) return null;
  // windows-1252 maps each byte to one character, so offsets in the string are byte offsets.
  const raw = new TextDecoder("windows-1252").decode(bytes);
  const delimiter = `--${boundary[1] ?? boundary[2]}`;
  const rows = [];
  let at = raw.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (raw.startsWith("--", start)) break;
    const next = raw.indexOf(`\r\n${delimiter}`, start);
    const part = [start + 2, next < 0 ? raw.length : next];
    const headEnd = raw.indexOf("\r\n\r\n", part[0]);
    if (headEnd < 0 || headEnd > part[1]) break;
    const head = raw.slice(part[0], headEnd);
    const disposition = /content-disposition:[^\r\n]*/i.exec(head)?.[0] ?? "";
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1] ?? "(no name)";
    const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1];
    const type = /content-type:\s*([^\r\n]*)/i.exec(head)?.[1];
    const value = bytes.subarray(headEnd + 4, part[1]);
    const text = filename === undefined ? asText(value) : null;
    rows.push([
      name,
      text !== null && text.length <= MULTIPART_VALUE_LIMIT
        ? text
        : `${filename !== undefined ? `file "${filename}", ` : ""}${type ? `${type}, ` : ""}${formatSize(value.length)}`,
    ]);
    at = next < 0 ? -1 : next + 2;
  }
  return rows;
}

// --- JSON -------------------------------------------------------------------------------

function jsonScalar(value) {
  if (value === null) return h("span", { class: "tok-keyword" }, "null");
  if (typeof value === "string") return h("span", { class: "tok-string" }, JSON.stringify(value));
  if (typeof value === "number") return h("span", { class: "tok-number" }, String(value));
  return h("span", { class: "tok-keyword" }, String(value));
}

/** `value` as a tree: a line per member, each object and array a fold opened on click. */
function jsonNode(value, depth, key, last) {
  const comma = last ? "" : ",";
  const label = key === undefined ? null : [h("span", { class: "tok-property" }, JSON.stringify(key)), ": "];
  if (value === null || typeof value !== "object") {
    return h("div", { class: "json-line" }, label, jsonScalar(value), comma);
  }
  const isArray = Array.isArray(value);
  const entries = isArray ? value.map((v, i) => [undefined, v, i]) : Object.entries(value);
  const [open, close] = isArray ? ["[", "]"] : ["{", "}"];
  if (entries.length === 0) return h("div", { class: "json-line" }, label, open + close, comma);
  const count = `${entries.length} ${isArray ? (entries.length === 1 ? "item" : "items") : entries.length === 1 ? "key" : "keys"}`;
  const toggle = h("button", { type: "button", class: "json-toggle", "aria-expanded": "false", title: "fold or unfold" });
  const summary = h("span", { class: "json-summary" }, ` ${count} `, close, comma);
  const children = h("div", { class: "json-children", hidden: true });
  const node = h(
    "div",
    { class: "json-node" },
    h("div", { class: "json-line" }, toggle, label, open, summary),
    children,
    h("div", { class: "json-line json-close", hidden: true }, close, comma),
  );
  let built = false;
  const setOpen = (opened) => {
    if (opened && !built) {
      built = true;
      const shown = entries.slice(0, JSON_MAX_CHILDREN);
      children.append(
        ...shown.map(([name, child], i) =>
          jsonNode(child, depth + 1, isArray ? undefined : name, i === entries.length - 1),
        ),
      );
      if (entries.length > shown.length) {
        children.append(h("div", { class: "json-line empty" }, `… ${entries.length - shown.length} more (see the text view)`));
      }
    }
    toggle.setAttribute("aria-expanded", String(opened));
    toggle.textContent = opened ? "▾" : "▸";
    children.hidden = !opened;
    node.lastChild.hidden = !opened;
    summary.hidden = opened;
  };
  toggle.addEventListener("click", () => setOpen(children.hidden));
  setOpen(depth < JSON_OPEN_DEPTH);
  return node;
}

export function jsonView(text) {
  return h("div", { class: "json-view code" }, jsonNode(JSON.parse(text), 0, undefined, true));
}

// --- the body panel ---------------------------------------------------------------------

/**
 * Show the `part` ("request" or "response") body of flow `id` in `container`: a bar to choose
 * the view and decoded or raw, the body as that view, and a download link.
 */
export function bodyPanel({ id, part, contentType, size, encoded }) {
  const container = h("div", { class: "body-panel" });
  if (!size) {
    container.append(h("p", { class: "empty" }, "no body"));
    return container;
  }
  const state = { view: "auto", decoded: true };
  const cache = new Map();
  const select = h(
    "select",
    { class: "view-select", "aria-label": `${part} body view`, onchange: () => { state.view = select.value; show(); } },
    VIEWS.map((view) => h("option", { value: view }, view)),
  );
  const decodedBox = h("input", {
    type: "checkbox",
    checked: true,
    onchange: () => { state.decoded = decodedBox.checked; show(); },
  });
  const download = h("a", { class: "download", download: "" }, "download");
  const note = h("span", { class: "body-note" });
  const content = h("div", { class: "body-content" });
  container.append(
    h(
      "div",
      { class: "body-bar" },
      h("label", null, "view ", select),
      h("label", { title: encoded ? `undo the Content-Encoding (${encoded})` : "no Content-Encoding" }, decodedBox, " decoded"),
      h("span", { class: "body-size" }, formatSize(size)),
      note,
      download,
    ),
    content,
  );

  async function show() {
    const url = bodyUrl(id, part, { decoded: state.decoded });
    download.href = bodyUrl(id, part, { decoded: state.decoded, download: true });
    note.textContent = "";
    const typed = viewForType(contentType);
    if (state.view === "image" || (state.view === "auto" && typed === "image")) {
      replaceChildren(content, h("img", { class: "body-image", src: url, alt: `${part} body` }));
      return;
    }
    replaceChildren(content, h("p", { class: "empty" }, "loading…"));
    let body = cache.get(url);
    if (!body) {
      body = fetchPrefix(url, VIEW_LIMIT);
      cache.set(url, body);
    }
    let answer;
    try {
      answer = await body;
    } catch (error) {
      cache.delete(url);
      replaceChildren(content, h("p", { class: "error" }, `could not load the body: ${error.message}`));
      return;
    }
    const notes = [];
    if (state.decoded && !answer.decoded) notes.push("could not be decoded: raw bytes");
    if (answer.truncated) notes.push(`showing the first ${formatSize(VIEW_LIMIT)}`);
    note.textContent = notes.join("; ");
    const view = state.view === "auto" ? autoView(typed, answer.bytes) : state.view;
    replaceChildren(content, render(view, answer, contentType));
    if (answer.truncated) {
      content.append(h("p", { class: "truncated" }, `… cut at ${formatSize(VIEW_LIMIT)} of ${formatSize(size)}: `,
        h("a", { href: download.href, download: "" }, "download the whole body")));
    }
  }

  show();
  return container;
}

function render(view, { bytes, truncated }, contentType) {
  if (view === "hex") {
    const pre = h("pre", { class: "code hex" }, hexDump(bytes));
    if (bytes.length > HEX_LIMIT) {
      return h("div", null, pre, h("p", { class: "truncated" }, `hex of the first ${formatSize(HEX_LIMIT)}; download for the rest`));
    }
    return pre;
  }
  if (view === "multipart") {
    const fields = multipartFields(bytes, contentType);
    if (fields) return pairTable(fields, { empty: "no parts" });
  }
  const text = asText(bytes) ?? new TextDecoder("utf-8").decode(bytes);
  if (view === "json") {
    try {
      return jsonView(text);
    } catch (error) {
      const why = truncated ? "cut short" : error.message;
      return h("div", null, h("p", { class: "empty" }, `not JSON (${why}): as text`), h("pre", { class: "code" }, text));
    }
  }
  if (view === "form") {
    return pairTable([...new URLSearchParams(text)], { empty: "no fields" });
  }
  if (view === "html" || view === "xml" || view === "javascript" || view === "css") {
    if (text.length <= HIGHLIGHT_LIMIT) return highlighted(text, view);
    const pre = highlighted(text.slice(0, HIGHLIGHT_LIMIT), view);
    pre.append(text.slice(HIGHLIGHT_LIMIT));
    return pre;
  }
  return h("pre", { class: "code" }, text);
}
