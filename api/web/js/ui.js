// Small DOM helpers shared by the views: elements, tables, tabs, status line, dialogs, CSV.

import { label, labelAttr, t, language } from "./i18n.js";

// h("button", {class: "btn", i18n: "key", onclick}, child, ...) builds an element.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "i18n") label(el, v, attrs.i18nArgs);
    else if (k === "i18nArgs") continue;
    else if (k.startsWith("i18n:")) labelAttr(el, k.slice(5), v, attrs.i18nArgs);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// Replace an element's children (null, undefined and false children are left out).
export function put(el, ...children) {
  clear(el).append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

let statusTimer = null;
export function status(key, args, kind = "info") {
  const el = document.getElementById("status");
  label(el, key, args);
  el.className = `status show ${kind}`;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => (el.className = "status"), kind === "error" ? 8000 : 4000);
}

// An error box (role=alert) showing an API error's detail under a translated heading.
export function errorBox(err, headingKey = "common.error") {
  return h("div", { class: "error", role: "alert" },
    h("strong", { i18n: headingKey }), " ",
    h("span", { class: "detail" }, err && err.detail ? err.detail : String(err && err.message || err)));
}

export function fmtNum(v, digits = 0) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Number(v).toLocaleString(language() === "zh" ? "zh-CN" : "en-US", {
    maximumFractionDigits: digits, minimumFractionDigits: digits,
  });
}

export function fmtPct(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return `${(Number(v) * 100).toFixed(1)} %`;
}

export function today() {
  const d = new Date();
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
}

export function displayCode(code) {
  if (!code || code.length !== 23) return code || "";
  return `${code.slice(0, 12)}-${code.slice(12, 16)}-${code.slice(16, 18)}-${code.slice(18, 22)}-${code.slice(22)}`;
}

// Accessible tabs: buttons with role=tab, arrow keys move between them.
export function tabs(name, specs) {
  const list = h("div", { class: "tabs", role: "tablist", "aria-label": name });
  const panels = [];
  const buttons = specs.map((spec, i) => {
    const id = `${name}-tab-${spec.id}`;
    const panel = h("div", { class: "tabpanel", role: "tabpanel", id: `${id}-panel`, "aria-labelledby": id, tabindex: "0" });
    panel.hidden = i !== 0;
    panels.push(panel);
    const btn = h("button", {
      type: "button", role: "tab", id, class: "tab", i18n: spec.i18n,
      "aria-controls": `${id}-panel`, "aria-selected": i === 0 ? "true" : "false",
      tabindex: i === 0 ? "0" : "-1", dataset: { tab: spec.id },
    });
    btn.addEventListener("click", () => select(i));
    btn.addEventListener("keydown", (e) => {
      const d = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (!d) return;
      e.preventDefault();
      const j = (i + d + specs.length) % specs.length;
      select(j);
      buttons[j].focus();
    });
    list.append(btn);
    return btn;
  });
  function select(i) {
    buttons.forEach((b, j) => {
      b.setAttribute("aria-selected", j === i ? "true" : "false");
      b.tabIndex = j === i ? 0 : -1;
      panels[j].hidden = j !== i;
    });
    if (specs[i].onshow) specs[i].onshow();
  }
  const byId = Object.fromEntries(specs.map((s, i) => [s.id, panels[i]]));
  return { list, panels: byId, select: (id) => select(specs.findIndex((s) => s.id === id)) };
}

// A table from column specs {key, i18n, render?(row) -> Node|string, num?: bool}.
export function table(columns, rows, { captionKey, captionArgs, rowClass, empty = "common.none" } = {}) {
  const thead = h("thead", {}, h("tr", {}, columns.map((c) =>
    h("th", { scope: "col", class: c.num ? "num" : null, i18n: c.i18n, title: c.title ? t(c.title) : null }))));
  const tbody = h("tbody");
  for (const row of rows) {
    const tr = h("tr", { class: rowClass ? rowClass(row) : null });
    for (const c of columns) {
      const v = c.render ? c.render(row) : row[c.key];
      const cell = c.header ? h("th", { scope: "row" }) : h("td", { class: c.num ? "num" : null });
      cell.append(v instanceof Node ? v : document.createTextNode(v === null || v === undefined ? "–" : String(v)));
      tr.append(cell);
    }
    tbody.append(tr);
  }
  if (!rows.length) tbody.append(h("tr", {}, h("td", { colspan: columns.length, class: "muted", i18n: empty })));
  const tableEl = h("table", { class: "data" });
  if (captionKey) tableEl.append(h("caption", { i18n: captionKey, i18nArgs: captionArgs }));
  tableEl.append(thead, tbody);
  return tableEl;
}

// A modal confirmation (<dialog>: focus trapped, Esc cancels). Resolves true on confirm.
export function confirmDialog(titleKey, body, { okKey = "common.confirm", args } = {}) {
  const dlg = document.getElementById("confirm-dialog");
  label(document.getElementById("confirm-title"), titleKey, args);
  label(document.getElementById("confirm-ok"), okKey);
  clear(document.getElementById("confirm-body")).append(body);
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.returnValue = "cancel";
    dlg.showModal();
    dlg.querySelector("button[value=cancel]").focus();
  });
}

function csvCell(v) {
  if (v === null || v === undefined) return "";
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(columns, rows) {
  const lines = [columns.map((c) => csvCell(c.header ?? c.key)).join(",")];
  for (const r of rows) lines.push(columns.map((c) => csvCell(c.value ? c.value(r) : r[c.key])).join(","));
  return lines.join("\r\n") + "\r\n";
}

// Save text as a file (UTF-8 with BOM so spreadsheet programs read the Chinese names).
export function download(filename, textContent, type = "text/csv;charset=utf-8") {
  const blob = new Blob(["\ufeff", textContent], { type });
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  setTimeout(() => {
    URL.revokeObjectURL(url);
    a.remove();
  }, 1000);
}

export const TIER_COLOURS = { strengthened: "#D55E00", key: "#E69F00", routine: "#56B4E9" };
