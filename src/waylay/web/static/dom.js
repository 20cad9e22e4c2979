// Building elements from data without ever parsing data as HTML.
//
// Flows carry hostile bytes: a header value or a body may hold "<script>". Everything the page
// shows goes through `h`, which turns strings into text nodes (`append`), never into markup;
// no module of the page hands a string to the HTML parser. Attributes are set one by one with
// setAttribute, and an href is only ever one of the API's own paths (api.js builds them).

/** `h("td", {class: "status"}, text, child)`: an element; strings become text nodes. */
export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (key === "value" || key === "checked" || key === "disabled") element[key] = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  appendChildren(element, children);
  return element;
}

/** Append strings (as text), nodes, and arrays of them; null and false are skipped. */
export function appendChildren(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Replace everything inside `element` with `children`. */
export function replaceChildren(element, ...children) {
  element.replaceChildren();
  return appendChildren(element, children);
}

/** A two-column table of [name, value] pairs (headers, query strings, form fields). */
export function pairTable(pairs, { className = "pairs", empty = "none" } = {}) {
  if (!pairs || pairs.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "table",
    { class: className },
    h(
      "tbody",
      null,
      pairs.map(([name, value]) => h("tr", null, h("th", null, name), h("td", null, value))),
    ),
  );
}

/** A short message at the bottom of the window that goes away by itself. */
export function toast(message, { error = false, ms = 3000 } = {}) {
  let area = document.getElementById("toasts");
  if (!area) {
    area = h("div", { id: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(area);
  }
  const item = h("div", { class: error ? "toast error" : "toast" }, message);
  area.append(item);
  setTimeout(() => item.remove(), ms);
}
