// The sign-in shared by every page of the web client: one token per browser tab (sessionStorage),
// which an operator can hand to a page in the URL fragment (`#token=...`, never sent to the
// server by the browser), and a small REST helper that answers like the contract's errors.

export const TOKEN_KEY = "pairwire.token";
export const STAFF_ROLES = ["moderator", "admin"];

/**
 * The tab's token. A `#token=...` in the address replaces the stored one and is removed from
 * the address bar at once (history.replaceState), so it is not left in the history or shared.
 */
export function takeToken() {
  const hash = location.hash.startsWith("#") ? location.hash.slice(1) : "";
  if (hash) {
    const params = new URLSearchParams(hash);
    const handed = (params.get("token") || "").trim();
    if (handed) {
      sessionStorage.setItem(TOKEN_KEY, handed);
      params.delete("token");
      const rest = params.toString();
      history.replaceState(null, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
    }
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The role a token claims (read, not verified: only to decide what to show; the API decides). */
export function tokenRole(token) {
  try {
    const part = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    return typeof claims.role === "string" ? claims.role : null;
  } catch {
    return null;
  }
}

export function isStaff(role) {
  return STAFF_ROLES.includes(role);
}

/**
 * One REST call with the bearer token. Never throws: answers {ok, status, data, error}, where
 * `error` is the contract's {code, message} (or a made-up one when the server did not answer).
 */
export async function api(token, method, path, body) {
  const headers = { Authorization: `Bearer ${token}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    return { ok: false, status: 0, data: null, error: { code: "unavailable", message: "the server did not answer" } };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.ok) return { ok: true, status: response.status, data, error: null };
  const error = (data && data.error) || { code: "unavailable", message: `HTTP ${response.status}` };
  return { ok: false, status: response.status, data, error };
}

/** A readable local time (with the date when it is not today). */
export function when(iso, { seconds = true } = {}) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", ...(seconds ? { second: "2-digit" } : {}) });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${date.toLocaleDateString([], { day: "numeric", month: "short", year: "numeric" })} ${time}`;
}

/** Seconds as m:ss or h:mm:ss. */
export function duration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = `${String(s % 60).padStart(2, "0")}`;
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/** A new element with a class and text (text only: never parsed as HTML). */
export function make(tag, className = "", text = null) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== null && text !== undefined) node.textContent = String(text);
  return node;
}
