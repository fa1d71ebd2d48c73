// One message catalogue per language (i18n/zh.json, i18n/en.json); Chinese is the default.
// Labels in the page carry data-i18n="key" (and data-i18n-args='{"n":3}'), attributes
// data-i18n-attr="placeholder:key;aria-label:key", so switching language re-labels the
// whole page in place without losing what the user was doing.

const LANGS = ["zh", "en"];
const STORE_KEY = "gridmgr.lang";
let current = "zh";
let messages = {};
const listeners = new Set();

export function language() {
  return current;
}

export function preferredLanguage() {
  const saved = localStorage.getItem(STORE_KEY);
  return LANGS.includes(saved) ? saved : "zh";
}

export async function setLanguage(lang) {
  if (!LANGS.includes(lang)) lang = "zh";
  const res = await fetch(`/web/i18n/${lang}.json`, { headers: { Accept: "application/json" } });
  if (!res.ok) throw new Error(`cannot load the ${lang} catalogue (${res.status})`);
  messages = await res.json();
  current = lang;
  localStorage.setItem(STORE_KEY, lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("app.documentTitle");
  translate(document);
  for (const fn of listeners) fn(lang);
}

export function onLanguageChange(fn) {
  listeners.add(fn);
}

export function t(key, args) {
  let text = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
  if (args) {
    text = text.replace(/\{(\w+)\}/g, (m, name) => (name in args ? String(args[name]) : m));
  }
  return text;
}

function argsOf(el) {
  const raw = el.dataset.i18nArgs;
  if (!raw) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

export function translate(root) {
  const scope = root.querySelectorAll ? root : document;
  const nodes = [];
  if (root instanceof Element && root.matches("[data-i18n],[data-i18n-attr]")) nodes.push(root);
  nodes.push(...scope.querySelectorAll("[data-i18n],[data-i18n-attr]"));
  for (const el of nodes) {
    if (el.dataset.i18n) el.textContent = t(el.dataset.i18n, argsOf(el));
    if (el.dataset.i18nAttr) {
      for (const pair of el.dataset.i18nAttr.split(";")) {
        const [attr, key] = pair.split(":");
        if (attr && key) el.setAttribute(attr.trim(), t(key.trim(), argsOf(el)));
      }
    }
  }
}

// Set a label on an element so that it follows language switches.
export function label(el, key, args) {
  el.dataset.i18n = key;
  if (args) el.dataset.i18nArgs = JSON.stringify(args);
  else delete el.dataset.i18nArgs;
  el.textContent = t(key, args);
  return el;
}

export function labelAttr(el, attr, key, args) {
  const pairs = (el.dataset.i18nAttr || "").split(";").filter((p) => p && !p.startsWith(attr + ":"));
  pairs.push(`${attr}:${key}`);
  el.dataset.i18nAttr = pairs.join(";");
  if (args) el.dataset.i18nArgs = JSON.stringify(args);
  el.setAttribute(attr, t(key, args));
  return el;
}
