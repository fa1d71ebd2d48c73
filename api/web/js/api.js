// The HTTP API, same origin, same bearer tokens. The token lives in sessionStorage:
// it is gone when the tab closes (shared police PCs), and never leaves this origin.

const TOKEN_KEY = "gridmgr.token";
let unauthorized = () => {};

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.detail ? body.detail : `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.error) || `http_${status}`;
    this.detail = (body && body.detail) || "";
    this.problems = (body && body.problems) || null;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function onUnauthorized(fn) {
  unauthorized = fn;
}

function headers(extra) {
  const h = { Accept: "application/json", ...extra };
  const tok = token();
  if (tok) h.Authorization = `Bearer ${tok}`;
  return h;
}

async function failure(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = { error: `http_${res.status}`, detail: res.statusText };
  }
  const err = new ApiError(res.status, body);
  if (res.status === 401) unauthorized(err);
  return err;
}

export async function api(path, { method = "GET", body, as = "json", signal } = {}) {
  const init = { method, headers: headers(body !== undefined ? { "Content-Type": "application/json" } : {}), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  if (!res.ok) throw await failure(res);
  if (as === "text") return res.text();
  if (res.status === 204) return null;
  return res.json();
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

// Every page of an OGC items listing (follows rel=next), up to maxItems features.
export async function allFeatures(path, maxItems = 5000) {
  const features = [];
  let url = path;
  while (url && features.length < maxItems) {
    const page = await api(url);
    features.push(...page.features);
    const next = (page.links || []).find((l) => l.rel === "next");
    url = next ? new URL(next.href, location.origin).pathname + new URL(next.href, location.origin).search : null;
  }
  return features;
}
