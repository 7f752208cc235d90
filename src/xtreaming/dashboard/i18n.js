// Messages in pt-BR (default) or English, from messages.<lang>.json; numbers and times in that language.

const LANG_KEY = "xtreaming.lang";
export const LANGUAGES = ["pt-BR", "en"];

let catalog = {};
let current = "pt-BR";
let numbers = new Map();

/** The stored choice, else what the server chose from Accept-Language (the html lang attribute). */
export function initialLanguage() {
  const stored = localStorage.getItem(LANG_KEY);
  if (LANGUAGES.includes(stored)) return stored;
  const served = document.documentElement.lang;
  return LANGUAGES.includes(served) ? served : "pt-BR";
}

export function language() {
  return current;
}

export async function load(lang, { remember = false } = {}) {
  const response = await fetch(`static/messages.${lang}.json`, { cache: "no-cache" });
  if (!response.ok) throw new Error(`messages.${lang}.json: HTTP ${response.status}`);
  catalog = await response.json();
  current = lang;
  numbers = new Map();
  if (remember) localStorage.setItem(LANG_KEY, lang);
  document.documentElement.lang = lang;
  translate(document);
}

/** The message `key` with `{name}` placeholders filled from `params`; the key itself when missing. */
export function t(key, params = {}) {
  const text = catalog[key];
  if (typeof text !== "string") return key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export function list(key) {
  const value = catalog[key];
  return Array.isArray(value) ? value : [];
}

/** Fill every `data-i18n` element under `root` with its message. */
export function translate(root) {
  for (const element of root.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
}

export function number(value, digits = 0) {
  let format = numbers.get(digits);
  if (format === undefined) {
    format = new Intl.NumberFormat(current, { minimumFractionDigits: digits, maximumFractionDigits: digits });
    numbers.set(digits, format);
  }
  return format.format(value);
}

/** The coordinator's explanation (English) in the screen's language, by the catalog's patterns. */
export function reason(text) {
  for (const [pattern, replacement] of list("reasons")) {
    const match = new RegExp(`^${pattern}$`).exec(text);
    if (match) return replacement.replace(/\$(\d)/g, (_, n) => match[Number(n)] ?? "");
  }
  return text;
}
