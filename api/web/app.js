// gridmgr web app: sign in with a token, then the view for the token's role.
// Plain ES modules, no build step; every asset comes from this server.

import { api, ApiError, onUnauthorized, setToken, token } from "./js/api.js";
import { label, preferredLanguage, setLanguage, t } from "./js/i18n.js";
import { h, clear, put, status } from "./js/ui.js";

// Which views each role may open (the first is its home). The server enforces the same
// rules on every route; hiding a view is only a courtesy.
export const VIEWS_BY_ROLE = {
  police: ["police"],
  planner: ["planner"],
  supervisor: ["supervisor", "planner"],
  admin: ["supervisor", "planner", "police"],
};

const VIEW_MODULES = {
  police: () => import("./js/police.js"),
  planner: () => import("./js/planner.js"),
  supervisor: () => import("./js/supervisor.js"),
};

const state = { me: null, views: {}, current: null };
window.gridmgrApp = state; // for people debugging on site, and for the end-to-end tests

function show(id) {
  for (const el of document.querySelectorAll("main > .view")) el.hidden = el.id !== id;
}

function allowed() {
  return state.me ? VIEWS_BY_ROLE[state.me.role] || [] : [];
}

function renderChrome() {
  const nav = document.getElementById("nav");
  const who = document.getElementById("whoami");
  const out = document.getElementById("sign-out");
  clear(nav);
  if (!state.me) {
    nav.hidden = who.hidden = out.hidden = true;
    return;
  }
  for (const v of allowed()) {
    nav.append(h("a", { href: `#/${v}`, class: "navlink", i18n: `nav.${v}`, dataset: { view: v } }));
  }
  nav.hidden = allowed().length < 2;
  put(who,
    h("span", { class: "who-name" }, state.me.name), " · ",
    h("span", { i18n: `role.${state.me.role}` }),
    state.me.area_code ? h("span", { class: "muted" }, ` · ${state.me.area_code}`) : null,
  );
  who.hidden = false;
  out.hidden = false;
}

async function route() {
  if (!state.me) {
    show("view-signin");
    document.getElementById("token-input").focus();
    return;
  }
  const wanted = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const views = allowed();
  const name = wanted || views[0];
  for (const a of document.querySelectorAll("#nav .navlink")) {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!views.includes(name) || !VIEW_MODULES[name]) {
    label(document.getElementById("denied-text"), "denied.text", { role: t(`role.${state.me.role}`) });
    document.getElementById("denied-home").setAttribute("href", `#/${views[0]}`);
    show("view-denied");
    state.current = null;
    return;
  }
  const section = document.getElementById(`view-${name}`);
  show(`view-${name}`);
  state.current = name;
  if (!state.views[name]) {
    const mod = await VIEW_MODULES[name]();
    state.views[name] = mod.mount(section, state.me);
  }
  const view = await state.views[name];
  if (view && view.shown) view.shown();
}

async function signIn(value) {
  setToken(value);
  try {
    state.me = await api("/me");
  } catch (err) {
    setToken(null);
    state.me = null;
    throw err;
  }
  renderChrome();
  await route();
}

function signOut() {
  setToken(null);
  state.me = null;
  location.hash = "";
  location.reload();
}

async function start() {
  await setLanguage(preferredLanguage());
  const langSelect = document.getElementById("lang-select");
  langSelect.value = preferredLanguage();
  langSelect.addEventListener("change", () => setLanguage(langSelect.value));
  document.getElementById("sign-out").addEventListener("click", signOut);
  onUnauthorized(() => {
    if (!state.me) return;
    setToken(null);
    state.me = null;
    renderChrome();
    show("view-signin");
    const box = document.getElementById("signin-error");
    label(box, "signin.expired");
    box.hidden = false;
  });
  const form = document.getElementById("signin-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const box = document.getElementById("signin-error");
    box.hidden = true;
    const value = document.getElementById("token-input").value.trim();
    try {
      await signIn(value);
      document.getElementById("token-input").value = "";
    } catch (err) {
      label(box, err instanceof ApiError && err.status === 401 ? "signin.bad" : "signin.failed",
        { detail: err.detail || err.message });
      box.hidden = false;
    }
  });
  window.addEventListener("hashchange", () => route().catch(report));
  if (token()) {
    try {
      await signIn(token());
      return;
    } catch {
      /* fall through to the sign-in page */
    }
  }
  renderChrome();
  await route();
}

function report(err) {
  console.error(err);
  status("common.failed", { detail: err.detail || err.message }, "error");
}

start().catch(report);
