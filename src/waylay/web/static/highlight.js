// Simple syntax highlighting of HTML, XML, JavaScript and CSS: tokens, not parse trees.
//
// Each tokenizer walks the text with sticky regular expressions and yields [kind, text]
// pairs whose texts, joined, are exactly the input; `render` turns them into spans (kind as the
// class, text as textContent). Being wrong costs a colour, never a character: a regular
// expression literal in JavaScript is read as punctuation, an unclosed comment or string runs
// to the end. Markup hands the insides of <script> and <style> to the JavaScript and CSS
// tokenizers. Every pattern moves forward by at least one character, so any input ends.

import { h } from "./dom.js";

const JS_KEYWORDS = new Set(
  (
    "await break case catch class const continue debugger default delete do else export " +
    "extends false finally for from function if import in instanceof let new null of return " +
    "static super switch this throw true try typeof undefined var void while with yield async"
  ).split(" "),
);

const JS_TOKEN = new RegExp(
  [
    String.raw`(?<comment>\/\/[^\n]*|\/\*[\s\S]*?(?:\*\/|$))`,
    String.raw`(?<string>"(?:[^"\\\n]|\\[\s\S])*"?|'(?:[^'\\\n]|\\[\s\S])*'?|\x60(?:[^\x60\\]|\\[\s\S])*\x60?)`,
    String.raw`(?<number>\b(?:0[xob][\da-f_]+|\d[\d_]*(?:\.\d*)?(?:e[+-]?\d+)?n?)|\.\d+(?:e[+-]?\d+)?)`,
    String.raw`(?<word>[A-Za-z_$][\w$]*)`,
    String.raw`(?<space>\s+)`,
    String.raw`(?<punct>[\s\S])`,
  ].join("|"),
  "iy",
);

export function* tokenizeJavaScript(text) {
  JS_TOKEN.lastIndex = 0;
  let match;
  while (JS_TOKEN.lastIndex < text.length && (match = JS_TOKEN.exec(text))) {
    const [kind, value] = Object.entries(match.groups).find(([, v]) => v !== undefined);
    if (kind === "word") yield [JS_KEYWORDS.has(value) ? "keyword" : "name", value];
    else yield [kind === "space" ? "" : kind, value];
  }
}

const CSS_TOKEN = new RegExp(
  [
    String.raw`(?<comment>\/\*[\s\S]*?(?:\*\/|$))`,
    String.raw`(?<string>"(?:[^"\\\n]|\\[\s\S])*"?|'(?:[^'\\\n]|\\[\s\S])*'?)`,
    String.raw`(?<atrule>@[\w-]+)`,
    String.raw`(?<color>#[\da-f]{3,8}\b)`,
    String.raw`(?<number>-?(?:\d+\.?\d*|\.\d+)(?:%|[a-z]+)?)`,
    String.raw`(?<word>-?[A-Za-z_][\w-]*)`,
    String.raw`(?<space>\s+)`,
    String.raw`(?<punct>[\s\S])`,
  ].join("|"),
  "iy",
);

const COLON = /\s*:/y;

export function* tokenizeCss(text) {
  CSS_TOKEN.lastIndex = 0;
  let depth = 0;
  let match;
  while (CSS_TOKEN.lastIndex < text.length && (match = CSS_TOKEN.exec(text))) {
    const [kind, value] = Object.entries(match.groups).find(([, v]) => v !== undefined);
    if (kind === "punct") {
      if (value === "{") depth += 1;
      else if (value === "}") depth = Math.max(0, depth - 1);
      yield ["punct", value];
    } else if (kind === "word") {
      // Inside a block, a word before a colon is a property; outside, words are selectors.
      COLON.lastIndex = CSS_TOKEN.lastIndex;
      yield [depth > 0 ? (COLON.test(text) ? "property" : "value") : "selector", value];
    } else {
      yield [kind === "space" ? "" : kind, value];
    }
  }
}

const MARKUP_TOKEN =
  /(?<comment><!--[\s\S]*?(?:-->|$))|(?<cdata><!\[CDATA\[[\s\S]*?(?:\]\]>|$))|(?<doctype><![^>]*>?)|(?<pi><\?[\s\S]*?(?:\?>|$))|(?<tag><\/?[A-Za-z][^\s/>]*)|(?<text>[^<]+|<)/y;
const ATTRIBUTE_TOKEN =
  /(?<space>\s+)|(?<end>\/?>)|(?<value>"[^"]*"?|'[^']*'?)|(?<equals>=)|(?<attr>[^\s=>"'/]+|\/)/y;

const CLOSE_SCRIPT = /<\/script/gi;
const CLOSE_STYLE = /<\/style/gi;

export function* tokenizeMarkup(text) {
  let at = 0;
  while (at < text.length) {
    MARKUP_TOKEN.lastIndex = at;
    const match = MARKUP_TOKEN.exec(text);
    const [kind, value] = Object.entries(match.groups).find(([, v]) => v !== undefined);
    at = MARKUP_TOKEN.lastIndex;
    if (kind !== "tag") {
      yield [kind === "text" ? "" : kind === "cdata" || kind === "pi" ? "comment" : kind, value];
      continue;
    }
    yield ["tag", value];
    // The attributes, up to the tag's end.
    let closed = false;
    while (at < text.length && !closed) {
      ATTRIBUTE_TOKEN.lastIndex = at;
      const attribute = ATTRIBUTE_TOKEN.exec(text);
      const [part, piece] = Object.entries(attribute.groups).find(([, v]) => v !== undefined);
      at = ATTRIBUTE_TOKEN.lastIndex;
      closed = part === "end";
      yield [part === "space" ? "" : part === "end" ? "tag" : part === "equals" ? "punct" : part, piece];
    }
    // <script> and <style> hold another language, up to their closing tag.
    const name = value.slice(1).toLowerCase();
    if (closed && (name === "script" || name === "style")) {
      const closing = name === "script" ? CLOSE_SCRIPT : CLOSE_STYLE;
      closing.lastIndex = at;
      const end = closing.exec(text)?.index ?? -1;
      const inner = text.slice(at, end < 0 ? text.length : end);
      yield* name === "script" ? tokenizeJavaScript(inner) : tokenizeCss(inner);
      at += inner.length;
    }
  }
}

export const TOKENIZERS = {
  html: tokenizeMarkup,
  xml: tokenizeMarkup,
  javascript: tokenizeJavaScript,
  css: tokenizeCss,
};

/** A <pre> of `text` in `language` (a TOKENIZERS name), highlighted. */
export function highlighted(text, language) {
  const pre = h("pre", { class: `code lang-${language}` });
  const fragment = document.createDocumentFragment();
  let plain = "";
  for (const [kind, value] of TOKENIZERS[language](text)) {
    if (!kind) {
      plain += value;
      continue;
    }
    if (plain) {
      fragment.append(plain);
      plain = "";
    }
    fragment.append(h("span", { class: `tok-${kind}` }, value));
  }
  if (plain) fragment.append(plain);
  pre.append(fragment);
  return pre;
}
