// A form for a request (method, URL) or a response (status, reason), with headers and body:
// the editor of "edit & replay" and of a paused flow.
//
// Headers are edited as text, a "Name: value" line each, as they are on the wire; `read`
// turns the lines back into [[name, value], ...] in order, repeats kept, and says which line
// is not a header. A body that is not text (given as base64) is shown as base64 and sent back
// as base64; a body left as it was is not sent at all, so the server keeps its bytes.

import { h } from "./dom.js";

export function headerLines(headers) {
  return (headers ?? []).map(([name, value]) => `${name}: ${value}`).join("\n");
}

/** "Name: value" lines -> [[name, value], ...]; throws an Error naming a bad line. */
export function parseHeaderLines(text) {
  const headers = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`header line ${i + 1} has no "name:": ${line.slice(0, 60)}`);
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).replace(/^[ \t]+/, "")]);
  });
  return headers;
}

/**
 * fields: {method, url} or {status_code, reason}, plus headers and either body (text) or
 * bodyBase64. `read()` answers what the API takes: {method, url, headers, body?|body_base64?}.
 */
export function messageEditor(kind, fields) {
  const inputs = {};
  const rows = [];
  const line = (label, input) => h("label", { class: "field" }, h("span", null, label), input);
  if (kind === "request") {
    inputs.method = h("input", { name: "method", value: fields.method ?? "", size: 8, required: true, autocomplete: "off" });
    inputs.url = h("input", { name: "url", value: fields.url ?? "", class: "wide", required: true, autocomplete: "off" });
    rows.push(h("div", { class: "field-row" }, line("method", inputs.method), line("URL", inputs.url)));
  } else {
    inputs.status_code = h("input", { name: "status_code", type: "number", min: 100, max: 999, value: fields.status_code ?? 200 });
    inputs.reason = h("input", { name: "reason", value: fields.reason ?? "", autocomplete: "off" });
    rows.push(h("div", { class: "field-row" }, line("status", inputs.status_code), line("reason", inputs.reason)));
  }
  inputs.headers = h("textarea", { name: "headers", rows: 8, spellcheck: "false", value: headerLines(fields.headers) });
  rows.push(line("headers (one “Name: value” a line)", inputs.headers));
  const binary = fields.body === null || fields.body === undefined ? fields.bodyBase64 ?? null : null;
  const original = binary ?? fields.body ?? "";
  inputs.body = h("textarea", { name: "body", rows: 10, spellcheck: "false", value: original });
  if (fields.bodyNote) rows.push(h("p", { class: "empty" }, fields.bodyNote));
  rows.push(line(binary !== null ? "body (binary: base64)" : "body", inputs.body));
  if (fields.bodyLocked) inputs.body.disabled = true;

  function read() {
    const result = { headers: parseHeaderLines(inputs.headers.value) };
    if (kind === "request") {
      result.method = inputs.method.value.trim();
      result.url = inputs.url.value.trim();
    } else {
      result.status_code = Number(inputs.status_code.value);
      result.reason = inputs.reason.value;
    }
    const body = inputs.body.value;
    if (!fields.bodyLocked && (body !== original || fields.alwaysSendBody)) {
      if (binary !== null) result.body_base64 = body.replace(/\s+/g, "");
      else result.body = body;
    }
    return result;
  }

  return { element: h("div", { class: "editor" }, rows), inputs, read };
}
