// The list's filter box: waylay's filter language, parsed by the server.
//
// The page does not parse filters itself (it would be a second parser to keep in step): it
// sends the expression with the list's request, and a 400 answer {"error", "column"} is shown
// under the box, the column marked under the expression. The list keeps showing what the last
// good filter matched, so a half-typed filter breaks nothing.

import { h, replaceChildren } from "./dom.js";

const DEBOUNCE_MS = 300;

/** The server's reason, and the expression with a caret under the column it names. */
export function filterProblem(expression, error) {
  const column = Number.isInteger(error.column) && error.column > 0 ? error.column : null;
  return h(
    "div",
    { class: "filter-error" },
    column ? h("pre", { class: "code" }, `${expression}\n${" ".repeat(column - 1)}^`) : null,
    h("span", { class: "reason" }, error.reason ?? error.message, column ? ` (column ${column})` : ""),
  );
}

export class FilterBox {
  /** @param apply called with the expression; rejects with the ApiError of a bad filter */
  constructor(input, problem, apply) {
    this.input = input;
    this.problem = problem;
    this.apply = apply;
    this.applied = input.value;
    this.#timer = 0;
    this.#sequence = 0;
    input.addEventListener("input", () => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.submit(), DEBOUNCE_MS);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        clearTimeout(this.#timer);
        this.submit();
      } else if (event.key === "Escape") {
        input.blur();
      }
    });
  }

  #timer;
  #sequence;

  async submit() {
    const expression = this.input.value.trim();
    const sequence = ++this.#sequence;
    try {
      await this.apply(expression);
      if (sequence !== this.#sequence) return;
      this.applied = expression;
      this.input.removeAttribute("aria-invalid");
      replaceChildren(this.problem);
    } catch (error) {
      if (sequence !== this.#sequence) return;
      if (error.status !== 400) throw error;
      this.input.setAttribute("aria-invalid", "true");
      replaceChildren(this.problem, filterProblem(expression, error));
    }
  }
}
