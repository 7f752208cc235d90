// Messages in pt-BR (default) or English, from messages.<lang>.json; numbers and times in that language.

const LANG_KEY = "xtreaming.lang";
export const LANGUAGES = ["pt-BR", "en"];

let catalog = {};
let current = "pt-BR";
let numbers = new Map();
let plurals = null;

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
  plurals = null;
  if (remember) localStorage.setItem(LANG_KEY, lang);
  document.documentElement.lang = lang;
  translate(document);
}

/** The message `key` with `{name}` placeholders filled from `params`; the key itself when missing. */
export function t(key, params = {}) {
  const text = catalog[key];
  if (typeof text !== "string") return key;
  return fill(text, params);
}

/** A code the API answers with (an attempt's `result`, a slot's `state`) as the catalog words it under `prefix`
 * ("result" + "retry" → "nova tentativa"); a code the catalog does not know as the API gave it, never the key. */
export function code(prefix, value) {
  const text = catalog[`${prefix}.${value}`];
  return typeof text === "string" ? text : String(value);
}

/** The message `key` for `count` things: the catalog holds it as {"one": …, "other": …} (Intl plural rules),
 * `{count}` filled with the number formatted for the language ("1 fila", "0 filas", "1.234 filas"). */
export function tn(key, count, params = {}) {
  const forms = catalog[key];
  if (forms === null || typeof forms !== "object" || Array.isArray(forms)) return t(key, { count: number(count), ...params });
  plurals ??= new Intl.PluralRules(current);
  // Nothing reads as plural in both languages ("0 filas"), though Portuguese rules call 0 "one".
  const text = (count === 0 ? forms.zero : forms[plurals.select(count)]) ?? forms.other;
  return typeof text === "string" ? fill(text, { count: number(count), ...params }) : key;
}

function fill(text, params) {
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

/** A fraction (0..1) as a percentage in the language: "75%", "75 %". */
export function percent(fraction) {
  let format = numbers.get("%");
  if (format === undefined) {
    format = new Intl.NumberFormat(current, { style: "percent", maximumFractionDigits: 0 });
    numbers.set("%", format);
  }
  return format.format(fraction);
}

/** The coordinator's explanation (English) in the screen's language, by the catalog's patterns. */
export function reason(text) {
  for (const [pattern, replacement] of list("reasons")) {
    const match = new RegExp(`^${pattern}$`).exec(text);
    if (match) return replacement.replace(/\$(\d)/g, (_, n) => match[Number(n)] ?? "");
  }
  return text;
}
