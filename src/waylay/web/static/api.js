// The page's side of docs/web.md: one function per thing the server answers.
//
// Every call goes to the page's own origin with its cookie (the token set it). An answer that
// is not 2xx becomes an ApiError carrying the status and the server's JSON ({"error",
// "column"} for a filter that does not parse); a 403 also fires "waylay:forbidden" on window,
// so the page can say the token is missing instead of failing piecemeal.

export class ApiError extends Error {
  constructor(status, body) {
    const reason = body && typeof body === "object" && body.error ? body.error : null;
    super(reason ?? `the server answered ${status}`);
    this.status = status;
    this.body = body;
    this.reason = reason;
    this.column = body && typeof body === "object" ? (body.column ?? null) : null;
  }
}

async function failure(response) {
  let body = null;
  const text = await response.text().catch(() => "");
  try {
    body = JSON.parse(text);
  } catch {
    body = text ? { error: text.slice(0, 500) } : null;
  }
  if (response.status === 403) window.dispatchEvent(new CustomEvent("waylay:forbidden"));
  return new ApiError(response.status, body);
}

/** fetch `path`; JSON answers parsed, text as text, 204 as null. */
export async function request(path, { method = "GET", json, signal } = {}) {
  const init = { method, signal, credentials: "same-origin", headers: {} };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") ?? "";
  return type.includes("json") ? response.json() : response.text();
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

const flowPath = (id) => `/api/flows/${encodeURIComponent(id)}`;

export const getInfo = () => request("/api/info");

/** {total, flows}: `limit` flows from `offset` of those matching `filter`, sorted by `sort`
 * (a column; default id) in `order` ("asc", the default, or "desc"). */
export const listFlows = ({ filter, sort, order, offset, limit, after, signal } = {}) =>
  request(`/api/flows${query({ filter, sort, order, offset, limit, after })}`, { signal });

export const getFlow = (id) => request(flowPath(id));
export const deleteFlow = (id) => request(flowPath(id), { method: "DELETE" });
export const clearFlows = () => request("/api/flows/clear", { method: "POST" });
export const replayFlow = (id, edits) =>
  request(`${flowPath(id)}/replay`, { method: "POST", json: edits ?? {} });
export const exportFlow = (id, format) => request(`${flowPath(id)}/export${query({ format })}`);

/** The URL of a stored body; `decoded` undoes its Content-Encoding, `download` saves it. */
export const bodyUrl = (id, part, { decoded = false, download = false } = {}) =>
  `${flowPath(id)}/${part}/body${query({ decoded: decoded ? 1 : "", download: download ? 1 : "" })}`;

export const harUrl = (filter) => `/api/har${query({ filter })}`;

export const getIntercept = () => request("/api/intercept");
export const setIntercept = (filter) =>
  request("/api/intercept", { method: "PUT", json: { filter } });
export const listLive = () => request("/api/live");
export const patchLive = (id, change) =>
  request(`/api/live/${encodeURIComponent(id)}`, { method: "PATCH", json: change });
export const resumeLive = (id) =>
  request(`/api/live/${encodeURIComponent(id)}/resume`, { method: "POST" });
export const killLive = (id) =>
  request(`/api/live/${encodeURIComponent(id)}/kill`, { method: "POST" });
export const resumeAll = () => request("/api/live/resume-all", { method: "POST" });

/**
 * The first `limit` bytes of the body at `url`, reading no more of it than that: a 100 MiB
 * body costs the page one megabyte. {bytes, truncated, decoded, contentType}.
 */
export async function fetchPrefix(url, limit, { signal } = {}) {
  const response = await fetch(url, { credentials: "same-origin", signal });
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (size > limit) {
      truncated = true;
      await reader.cancel();
      break;
    }
  }
  const bytes = new Uint8Array(Math.min(size, limit));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - at);
    bytes.set(part, at);
    at += part.length;
    if (at >= bytes.length) break;
  }
  return {
    bytes,
    truncated,
    decoded: response.headers.get("X-Waylay-Decoded") !== "no",
    contentType: response.headers.get("Content-Type") ?? "",
  };
}
