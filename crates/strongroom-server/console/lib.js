// The console's shared pieces: building elements as text, calling /api with the signed-in
// token, the one message area, the loading indicator, the confirmation step of every
// destructive action, times people read, and what the token may do.

export const $ = (id) => document.getElementById(id);

/** The signed-in state: the token and who it is; null when signed out. */
export let session = null;

/** Called when the API says the token is no longer valid (401). */
let onSignedOut = () => {};

export function setSession(value) {
  session = value;
}

export function whenSignedOut(handler) {
  onSignedOut = handler;
}

/** An element with attributes and children; strings become text nodes, never HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Requests in flight: the `loading` indicator shows while there is one. */
let inFlight = 0;

function loading(change) {
  inFlight += change;
  $("loading").hidden = inFlight === 0;
  document.querySelector("main").setAttribute("aria-busy", inFlight > 0 ? "true" : "false");
}

/** One call to this origin's API with the signed-in token. */
export async function api(method, path, body, token = session?.token) {
  const headers = { Authorization: `Bearer ${token}` };
  const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  loading(1);
  let response;
  let data;
  try {
    response = await fetch(path, init);
    data = response.status === 204 ? null : await response.json().catch(() => null);
  } catch {
    throw new ApiFailure(0, "The server could not be reached. Check the connection and try again.");
  } finally {
    loading(-1);
  }
  if (!response.ok) {
    const message = (data && typeof data.message === "string") ? data.message : `HTTP ${response.status}`;
    if (response.status === 401 && session) onSignedOut();
    throw new ApiFailure(response.status, message);
  }
  return data;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function secretPath(key, suffix = "") {
  return `/api/secrets/${encodeURIComponent(key)}${suffix}`;
}

// ---- The one message area (`notice`): what the last action did, success or error. -----

export function showError(error) {
  const text = error instanceof Error ? error.message : String(error);
  $("notice").replaceChildren(el("p", { "data-testid": "error", class: "error", role: "alert" }, text));
  $("notice").hidden = false;
}

export function showNotice(text) {
  $("notice").replaceChildren(el("p", { class: "ok" }, text));
  $("notice").hidden = false;
}

export function clearMessages() {
  $("notice").replaceChildren();
  $("notice").hidden = true;
}

/** Runs an action, reporting its failure in the message area; the previous action's
 * message is cleared first, so what it says is always about the last thing done. */
export function guarded(action) {
  return async (event) => {
    event?.preventDefault?.();
    clearMessages();
    try {
      await action(event);
    } catch (error) {
      showError(error);
    }
  };
}

/** Runs `action` with `button` disabled, so a double click acts once. */
export async function busy(button, action) {
  if (button.disabled) return;
  button.disabled = true;
  try {
    await action();
  } finally {
    button.disabled = false;
  }
}

// ---- The confirmation step (`confirm`) of every destructive action ----------------------

let pending = null;

/**
 * Asks before a destructive action: a modal dialog says what will happen, `confirm-yes`
 * acts (once: it is disabled while the action runs), `cancel` or Escape does nothing.
 */
export function confirmThen(question, yesLabel, action) {
  const dialog = $("confirm");
  $("confirm-text").textContent = question;
  $("confirm-yes").textContent = yesLabel;
  pending = action;
  dialog.showModal();
  $("cancel").focus();
}

export function wireConfirm() {
  const dialog = $("confirm");
  $("cancel").addEventListener("click", () => { pending = null; dialog.close(); });
  dialog.addEventListener("close", () => { pending = null; });
  $("confirm-yes").addEventListener("click", guarded(async () => {
    const action = pending;
    if (!action) return;
    await busy($("confirm-yes"), async () => {
      try {
        await action();
      } finally {
        pending = null;
        dialog.close();
      }
    });
  }));
}

/** A button whose click asks first (see `confirmThen`). */
export function destructive(attrs, label, question, yesLabel, action) {
  return el("button", {
    type: "button", class: "danger", ...attrs,
    onclick: guarded(() => confirmThen(question, yesLabel, action)),
  }, label);
}

// ---- Times -------------------------------------------------------------------------------

/** A time as people read it ("3 minutes ago"), the exact local time on hover. */
export function when(text) {
  if (!text) return "";
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return text;
  return el("time", { datetime: date.toISOString(), title: date.toLocaleString() }, relative(date));
}

/** "3 minutes ago", "in 2 hours": the nearest whole unit, in the browser's language. */
function relative(date) {
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const units = [["year", 31_536_000], ["month", 2_592_000], ["week", 604_800], ["day", 86_400],
    ["hour", 3_600], ["minute", 60], ["second", 1]];
  const [unit, size] = units.find(([, size]) => Math.abs(seconds) >= size) ?? ["second", 1];
  return format.format(Math.round(seconds / size), unit);
}

/** Gives each cell its column's name (`data-label`), shown before the value where the
 * tables become cards (phone widths). */
export function labelCells(body) {
  const names = [...body.closest("table").querySelectorAll("thead th")].map((th) => th.textContent);
  for (const tr of body.rows) {
    [...tr.cells].forEach((td, i) => {
      if (names[i] && td.colSpan === 1 && !td.dataset.label) td.dataset.label = names[i];
    });
  }
}

// ---- Revealed values ---------------------------------------------------------------------

const REVEAL_MS = 30_000;
const revealTimers = new Set();

/** Removes every revealed value from the page. */
export function hideAllValues() {
  for (const timer of revealTimers) clearTimeout(timer);
  revealTimers.clear();
  for (const value of document.querySelectorAll("[data-testid=value]")) {
    value.textContent = "";
    value.hidden = true;
  }
  for (const masked of document.querySelectorAll("[data-testid=masked]")) masked.hidden = false;
  for (const button of document.querySelectorAll("[data-testid=reveal]")) button.textContent = button.dataset.label ?? "Reveal";
}

/**
 * The masked value, the revealed one, and Reveal/Copy buttons for one secret; `read`
 * fetches the value (an audited read). The value is removed from the page 30 s after a
 * reveal.
 */
export function valueControls(name, read) {
  const masked = el("span", { class: "masked", "data-testid": "masked" }, "********");
  const value = el("span", { class: "value", "data-testid": "value", hidden: true });
  const reveal = el("button", { type: "button", "data-testid": "reveal", "aria-label": `Reveal ${name}` }, "Reveal");
  reveal.dataset.label = "Reveal";
  const hide = () => {
    value.textContent = "";
    value.hidden = true;
    masked.hidden = false;
    reveal.textContent = "Reveal";
  };
  reveal.addEventListener("click", guarded(async () => {
    if (!value.hidden) return hide();
    await busy(reveal, async () => {
      const answer = await read();
      value.textContent = answer.value;
      value.hidden = false;
      masked.hidden = true;
      reveal.textContent = "Hide";
      const timer = setTimeout(() => { revealTimers.delete(timer); hide(); }, REVEAL_MS);
      revealTimers.add(timer);
    });
  }));
  const copy = el("button", { type: "button", "data-testid": "copy", "aria-label": `Copy ${name}` }, "Copy");
  copy.addEventListener("click", guarded(async () => {
    const text = value.hidden ? (await read()).value : value.textContent;
    await navigator.clipboard.writeText(text);
    showNotice(`Copied ${name} to the clipboard.`);
  }));
  return { masked, value, reveal, copy };
}

// ---- Scopes ------------------------------------------------------------------------------

/** `namespace/env[/keys][:caps]` as {namespace, env, caps}. */
export function parseScope(text) {
  const [place, caps] = text.split(":");
  const [namespace, env] = place.split("/");
  const all = ["list", "read", "write", "delete", "use"];
  return { namespace, env, caps: caps ? caps.split(",") : all };
}

/** Whether the token may do `capability` in `namespace`/`env` (`*`: every env). The
 * server decides; this only hides buttons that would be refused. */
export function may(capability, namespace, env) {
  if (!session) return false;
  if (session.superuser) return true;
  return session.scopes.map(parseScope).some((s) =>
    (s.namespace === "*" || s.namespace === namespace) &&
    (env === "*" ? s.env === "*" : (s.env === "*" || s.env === env)) &&
    s.caps.includes(capability));
}
