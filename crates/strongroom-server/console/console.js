// Strongroom console: a plain ES module, served from the binary. It talks only to this
// origin's /api with the signed-in token. Every piece of data from the API is rendered as
// text (textContent, never HTML), and the token lives in this tab's sessionStorage only.

const TOKEN_KEY = "strongroom.console.token";
const REVEAL_MS = 30_000;
const PAGE_SIZE = 25;
const ACTIONS = [
  "create", "update", "delete", "rollback", "rotate", "metadata_update", "expired_cleanup",
  "read", "gateway_read", "vault_read", "copy_out", "copy_in", "move_out", "move_in",
];

const $ = (id) => document.getElementById(id);

/** The signed-in state: the token and who it is; null when signed out. */
let session = null;
let secretsPage = 1;
let auditBefore = null;
/** Timers that hide revealed values again. */
const revealTimers = new Set();

/** An element with attributes and children; strings become text nodes, never HTML. */
function el(tag, attrs = {}, ...children) {
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

class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** One call to this origin's API with the signed-in token. */
async function api(method, path, body, token = session?.token) {
  const headers = { Authorization: `Bearer ${token}` };
  const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const message = (data && typeof data.message === "string") ? data.message : `HTTP ${response.status}`;
    if (response.status === 401 && session) {
      signOut();
    }
    throw new ApiFailure(response.status, message);
  }
  return data;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// ---- The address: the view and the secrets' filters live in the URL's fragment, so a
// reload keeps them and Back returns to the previous view or filter. ----------------------

let currentView = "secrets";

/** The fragment for the current view and filters: `#secrets?namespace=…&env=…&page=2`. */
function fragment() {
  if (currentView !== "secrets") return `#${currentView}`;
  const { namespace, env, prefix } = filters();
  return `#secrets${query({
    namespace: namespace === "default" ? undefined : namespace, env, prefix,
    page: secretsPage > 1 ? secretsPage : undefined,
  })}`;
}

/** Records the current state as a new history entry (unless it is the same). */
function remember() {
  const next = fragment();
  if (location.hash !== next) history.pushState(null, "", next);
}

/** Applies a fragment: sets the filters and shows its view (true when there was one). */
async function follow(hash) {
  const match = /^#(secrets|audit|tokens|keys)(?:\?(.*))?$/.exec(hash);
  if (!match) return false;
  const [, view, search] = match;
  if (view === "secrets") {
    const params = new URLSearchParams(search ?? "");
    $("f-namespace").value = params.get("namespace") ?? "default";
    $("f-env").value = params.get("env") ?? "";
    $("f-prefix").value = params.get("prefix") ?? "";
    const page = Number.parseInt(params.get("page") ?? "1", 10);
    secretsPage = Number.isFinite(page) && page > 0 ? page : 1;
  }
  const tab = document.querySelector(`#nav .tab[data-view='${view}']`);
  if (tab?.hidden) return false;
  await show(view, false);
  return true;
}

function secretPath(key, suffix = "") {
  return `/api/secrets/${encodeURIComponent(key)}${suffix}`;
}

function showError(error) {
  const box = $("error");
  box.textContent = error instanceof Error ? error.message : String(error);
  box.hidden = false;
  $("notice").hidden = true;
}

function showNotice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = false;
  $("error").hidden = true;
}

function clearMessages() {
  $("error").hidden = true;
  $("notice").hidden = true;
}

/** Runs an action, reporting its failure in the error box; the previous action's message
 * is cleared first, so what the box says is always about the last thing done. */
function guarded(action) {
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

/** A time as people read it ("3 minutes ago"), the exact local time on hover. */
function when(text) {
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

// ---- Signing in and out ----------------------------------------------------------------

async function signIn(token) {
  const me = await api("GET", "/api/session", undefined, token);
  session = { token, ...me };
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  $("who-name").textContent = me.superuser ? `${me.name} (superuser)` : me.name;
  $("who").hidden = false;
  $("nav").hidden = false;
  for (const tab of document.querySelectorAll(".admin-only")) tab.hidden = !me.superuser;
  prepareEnvs();
  $("new-secret").hidden = !(me.superuser || me.scopes.some((s) => parseScope(s).caps.includes("write")));
  clearMessages();
  if (!(await follow(location.hash))) await show("secrets");
}

function signOut() {
  session = null;
  sessionStorage.removeItem(TOKEN_KEY);
  // The next token starts where it can look, not where this one was.
  history.replaceState(null, "", location.pathname);
  hideAllValues();
  for (const body of ["secret-rows", "audit-rows", "token-rows", "key-rows", "history-rows"]) {
    $(body).replaceChildren();
  }
  $("token-secret").textContent = "";
  $("token-once").hidden = true;
  $("who").hidden = true;
  $("nav").hidden = true;
  for (const id of ["view-secrets", "view-audit", "view-tokens", "view-keys"]) $(id).hidden = true;
  $("view-sign-in").hidden = false;
  $("token").focus();
}

// ---- Scopes ------------------------------------------------------------------------------

/** `namespace/env[:caps]` as {namespace, env, caps}. */
function parseScope(text) {
  const [place, caps] = text.split(":");
  const [namespace, env] = place.split("/");
  const all = ["list", "read", "write", "delete", "use"];
  return { namespace, env, caps: caps ? caps.split(",") : all };
}

function may(capability, namespace, env) {
  if (!session) return false;
  if (session.superuser) return true;
  return session.scopes.map(parseScope).some((s) =>
    (s.namespace === "*" || s.namespace === namespace) &&
    (env === "*" ? s.env === "*" : (s.env === "*" || s.env === env)) &&
    s.caps.includes(capability));
}

/** Suggests envs from the scopes and the fallback chains; a scoped token starts on its own. */
function prepareEnvs() {
  const names = new Set([session.default_env, ...Object.keys(session.fallback)]);
  for (const chainEnvs of Object.values(session.fallback)) chainEnvs.forEach((e) => names.add(e));
  const scoped = session.scopes.map(parseScope).filter((s) => s.env !== "*");
  scoped.forEach((s) => names.add(s.env));
  $("env-names").replaceChildren(...[...names].sort().map((name) => el("option", { value: name })));
  const namespace = $("f-namespace").value.trim() || "default";
  if (!may("list", namespace, "*")) {
    // Start where the token can look: a scope on a whole namespace (`payments/*`) lists
    // all its envs; otherwise the first env a scope may list.
    const all = session.scopes.map(parseScope);
    const wide = all.find((s) => s.env === "*" && s.namespace !== "*" && s.caps.includes("list"));
    const first = scoped.find((s) => s.caps.includes("list"));
    if (wide) {
      $("f-namespace").value = wide.namespace;
      $("f-env").value = "";
    } else if (first) {
      $("f-namespace").value = first.namespace === "*" ? "default" : first.namespace;
      $("f-env").value = first.env;
    }
  } else {
    $("f-env").value = "";
  }
}

// ---- Views -------------------------------------------------------------------------------

async function show(view, record = true) {
  // A revealed value never outlives the view it was revealed in.
  hideAllValues();
  currentView = view;
  for (const name of ["secrets", "audit", "tokens", "keys"]) {
    $(`view-${name}`).hidden = name !== view;
  }
  $("view-sign-in").hidden = true;
  for (const tab of document.querySelectorAll("#nav .tab")) {
    if (tab.dataset.view === view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (view === "secrets") await loadSecrets(record);
  else if (record) remember();
  if (view === "audit") await Promise.all([loadAudit(true), loadChainStatus()]);
  if (view === "tokens") await loadTokens();
  if (view === "keys") await loadKeys();
}

// ---- Secrets -----------------------------------------------------------------------------

function filters() {
  return {
    namespace: $("f-namespace").value.trim() || "default",
    env: $("f-env").value.trim(),
    prefix: $("f-prefix").value.trim(),
  };
}

async function loadSecrets(record = true) {
  hideAllValues();
  if (record) remember();
  const { namespace, env, prefix } = filters();
  // With an env selected, the server answers what that env serves: its own secrets and,
  // for keys it does not hold, those of the envs it falls back to (each item's `env` says
  // where it comes from), ordered and paged on the server.
  let listed;
  try {
    listed = await api("GET", `/api/secrets${query({
      namespace, env, prefix, page: secretsPage, perPage: PAGE_SIZE, details: true,
      served: env ? true : undefined,
    })}`);
  } catch (error) {
    // A refused or failed listing leaves no rows of the previous filter behind.
    $("secret-rows").replaceChildren();
    $("page-info").textContent = "";
    $("prev-page").disabled = true;
    $("next-page").disabled = true;
    throw error;
  }
  const rows = listed.items.map((item) => ({
    item,
    requestedEnv: env || item.env,
    via: env && item.env !== env ? item.env : null,
  }));
  const names = new Set([...$("env-names").options].map((o) => o.value));
  for (const { item } of rows) {
    if (!names.has(item.env)) {
      names.add(item.env);
      $("env-names").append(el("option", { value: item.env }));
    }
  }
  $("secret-rows").replaceChildren(...rows.map((row) => secretRow(namespace, row)));
  labelCells($("secret-rows"));
  if (rows.length === 0) {
    $("secret-rows").append(el("tr", {}, el("td", { colspan: 8, class: "hint" }, "No secrets here.")));
  }
  const pages = Math.max(1, Math.ceil(listed.total / PAGE_SIZE));
  $("page-info").textContent = `Page ${secretsPage} of ${pages} (${listed.total} secrets)`;
  $("prev-page").disabled = secretsPage <= 1;
  $("next-page").disabled = secretsPage >= pages;
}

function secretRow(namespace, { item, requestedEnv, via }) {
  const masked = el("span", { class: "masked", "data-testid": "masked" }, item.masked_value);
  const value = el("span", { class: "value", "data-testid": "value", hidden: true });
  const revealButton = el("button", { type: "button", "data-testid": "reveal" }, "Reveal");
  const hide = () => {
    value.textContent = "";
    value.hidden = true;
    masked.hidden = false;
    revealButton.textContent = "Reveal";
  };
  const fetchValue = async () => {
    const read = await api("GET", `${secretPath(item.key)}${query({ namespace, env: requestedEnv })}`);
    return read;
  };
  revealButton.addEventListener("click", guarded(async () => {
    if (!value.hidden) return hide();
    const read = await fetchValue();
    value.textContent = read.value;
    value.hidden = false;
    masked.hidden = true;
    revealButton.textContent = "Hide";
    const timer = setTimeout(() => { revealTimers.delete(timer); hide(); }, REVEAL_MS);
    revealTimers.add(timer);
    value.dataset.timer = "armed";
  }));
  const copyButton = el("button", { type: "button", "data-testid": "copy" }, "Copy");
  copyButton.addEventListener("click", guarded(async () => {
    const text = value.hidden ? (await fetchValue()).value : value.textContent;
    await navigator.clipboard.writeText(text);
    showNotice(`Copied ${item.key} to the clipboard.`);
  }));
  const canWrite = may("write", namespace, item.env);
  const canDelete = may("delete", namespace, item.env);
  // A value is offered only while the secret is active: an expired, deleted or destroyed
  // current version answers 410, so no Reveal or Copy is shown for it.
  const canRead = may("read", namespace, requestedEnv) && item.state === "active";
  const state = el("span", { class: `badge ${item.state}` }, item.state);
  const envCell = el("td", {}, item.env);
  if (via) envCell.append(" ", el("span", { class: "badge fallback", title: `read from ${via} when ${requestedEnv} has no value` }, `fallback for ${requestedEnv}`));
  const actions = el("div", { class: "row-actions" });
  if (canRead) actions.append(copyButton);
  if (canWrite && !via) {
    actions.append(el("button", { type: "button", "data-testid": "edit", onclick: () => openEditor(item) }, "Edit"));
  }
  actions.append(el("button", { type: "button", "data-testid": "history", onclick: guarded(() => openHistory(namespace, item)) }, "History"));
  if (canDelete && !via) actions.append(deleteButton(namespace, item));
  return el("tr", { "data-testid": "secret-row", "data-key": item.key, "data-env": item.env },
    el("td", { class: "key" }, item.key),
    envCell,
    el("td", {}, masked, value, " ", canRead ? revealButton : null),
    el("td", {}, `v${item.version}`),
    el("td", {}, state, item.expires ? el("div", { class: "hint" }, "expires ", when(item.expires)) : null),
    el("td", { class: "desc", "data-testid": "description" }, item.description),
    el("td", { class: "when" }, when(item.updated)),
    el("td", {}, actions));
}

/** How long a destructive button stays armed for its confirming click. */
const CONFIRM_MS = 5_000;

/**
 * A destructive action asks once more in place: the first click arms the button
 * ("Confirm …"), a second click within 5 s acts, and the button disarms on its own after
 * that. While the action runs the button is disabled, so a double click acts once.
 */
function confirming(button, confirmLabel, action) {
  const label = button.textContent;
  let timer = null;
  const disarm = () => {
    clearTimeout(timer);
    delete button.dataset.confirm;
    button.textContent = label;
  };
  button.addEventListener("click", guarded(async () => {
    if (button.dataset.confirm !== "yes") {
      button.dataset.confirm = "yes";
      button.textContent = confirmLabel;
      timer = setTimeout(disarm, CONFIRM_MS);
      return;
    }
    disarm();
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
    }
  }));
  return button;
}

/** Delete asks once more in place, then deletes. */
function deleteButton(namespace, item) {
  const button = el("button", { type: "button", class: "danger", "data-testid": "delete", "aria-label": `Delete ${item.key}` }, "Delete");
  return confirming(button, "Confirm delete", async () => {
    await api("DELETE", `${secretPath(item.key)}${query({ namespace, env: item.env })}`);
    showNotice(`Deleted ${item.key} (${item.env}).`);
    await loadSecrets();
  });
}

/** Gives each cell its column's name (`data-label`), shown before the value where the
 * tables become cards (phone widths). */
function labelCells(body) {
  const names = [...body.closest("table").querySelectorAll("thead th")].map((th) => th.textContent);
  for (const tr of body.rows) {
    [...tr.cells].forEach((td, i) => {
      if (names[i] && td.colSpan === 1) td.dataset.label = names[i];
    });
  }
}

function hideAllValues() {
  for (const timer of revealTimers) clearTimeout(timer);
  revealTimers.clear();
  for (const value of document.querySelectorAll("[data-testid=value]")) value.textContent = "";
}

let editing = null;

function openEditor(item) {
  editing = item ?? null;
  const { env } = filters();
  $("editor-title").textContent = item ? `New version of ${item.key}` : "New secret";
  $("key-input").value = item ? item.key : $("f-prefix").value.trim();
  $("key-input").readOnly = Boolean(item);
  $("env-input").value = item ? item.env : env;
  $("env-input").readOnly = Boolean(item);
  $("value-input").value = "";
  $("description-input").value = item ? item.description : "";
  $("ttl-input").value = "";
  $("editor").hidden = false;
  (item ? $("value-input") : $("key-input")).focus();
}

function closeEditor() {
  editing = null;
  $("value-input").value = "";
  $("editor").hidden = true;
}

async function saveSecret() {
  // One write per Save: a second click while this one runs does nothing.
  const save = $("editor").querySelector("button[type=submit]");
  if (save.disabled) return;
  save.disabled = true;
  try {
    await writeSecret();
  } finally {
    save.disabled = false;
  }
}

async function writeSecret() {
  const { namespace } = filters();
  const key = $("key-input").value.trim();
  const env = $("env-input").value.trim() || undefined;
  const body = { value: $("value-input").value, description: $("description-input").value };
  const ttl = $("ttl-input").value.trim();
  if (ttl) body.ttl = ttl;
  if (editing) {
    await api("PUT", `${secretPath(key)}${query({ namespace, env })}`, { ...body, env });
  } else {
    await api("POST", `/api/secrets${query({ namespace })}`, { key, env, ...body });
  }
  closeEditor();
  showNotice(`Saved ${key}.`);
  await loadSecrets();
}

async function openHistory(namespace, item) {
  const history = await api("GET", `${secretPath(item.key, "/history")}${query({ namespace, env: item.env })}`);
  $("history-title").textContent = `History of ${item.key} (${item.env})`;
  const canWrite = may("write", namespace, item.env);
  $("history-rows").replaceChildren(...history.items.map((v) => {
    const state = v.destroyed ? "destroyed" : v.deleted ? "deleted" : v.current ? "current" : "kept";
    const rollback = (canWrite && !v.current && !v.deleted && !v.destroyed)
      ? confirming(el("button", { type: "button", "data-testid": "rollback", "data-version": v.version },
        `Roll back to v${v.version}`), `Confirm roll back to v${v.version}`, async () => {
        await api("POST", secretPath(item.key, `/rollback${query({ namespace })}`), { version: v.version, env: item.env });
        showNotice(`Rolled ${item.key} back to version ${v.version}.`);
        $("history-panel").hidden = true;
        await loadSecrets();
      })
      : null;
    return el("tr", { "data-testid": "version-row", "data-version": v.version },
      el("td", {}, `v${v.version}`), el("td", {}, String(v.kek_version)), el("td", { class: "when" }, when(v.created)),
      el("td", {}, v.actor), el("td", {}, state), el("td", {}, rollback));
  }));
  labelCells($("history-rows"));
  $("history-panel").hidden = false;
  $("history-panel").scrollIntoView({ block: "nearest" });
  $("history-close").focus();
}

// ---- Audit -------------------------------------------------------------------------------

function localToIso(text) {
  if (!text) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

async function loadAudit(fresh) {
  if (fresh) {
    auditBefore = null;
    $("audit-rows").replaceChildren();
  }
  const page = await api("GET", `/api/audit${query({
    actor: $("a-actor").value.trim(), action: $("a-action").value.trim(), key: $("a-key").value.trim(),
    env: $("a-env").value.trim(), since: localToIso($("a-since").value), until: localToIso($("a-until").value),
    before: auditBefore, perPage: 50,
  })}`);
  $("audit-rows").append(...page.items.map((e) => el("tr", { "data-testid": "audit-row", "data-action": e.action, "data-key": e.key },
    el("td", {}, String(e.id)), el("td", { class: "when" }, when(e.time)), el("td", {}, e.actor), el("td", {}, e.action),
    el("td", {}, e.namespace), el("td", {}, e.env), el("td", { class: "key" }, e.key),
    el("td", {}, e.version === null ? "" : `v${e.version}`))));
  labelCells($("audit-rows"));
  auditBefore = page.next;
  $("audit-more").disabled = page.next === null;
}

async function loadChainStatus() {
  const status = $("chain-status");
  status.className = "chain";
  status.textContent = "Checking the audit chain…";
  const report = await api("GET", "/api/audit/verify");
  if (report.intact) {
    status.classList.add("ok");
    status.dataset.state = "intact";
    status.textContent = `Audit chain intact: ${report.events} events and ${report.versions} versions checked.`;
  } else {
    status.classList.add("broken");
    status.dataset.state = "broken";
    status.textContent = `Audit chain BROKEN at event ${report.broken_at}: ${report.reason}`;
  }
}

// ---- Tokens ------------------------------------------------------------------------------

async function loadTokens() {
  const listed = await api("GET", "/api/tokens");
  $("token-rows").replaceChildren(...listed.items.map((t) => {
    const revoke = t.revoked ? null : confirming(el("button", {
      type: "button", class: "danger", "data-testid": "revoke", "aria-label": `Revoke ${t.name}`,
    }, "Revoke"), t.superuser ? "Confirm: revoke a superuser" : "Confirm revoke", async () => {
      await api("DELETE", `/api/tokens/${encodeURIComponent(t.name)}`);
      showNotice(`Revoked ${t.name}.`);
      await loadTokens();
    });
    return el("tr", { "data-testid": "token-row", "data-name": t.name, "data-revoked": t.revoked ? "yes" : "no" },
      el("td", {}, t.name), el("td", {}, el("code", {}, t.id)),
      el("td", {}, el("code", { "data-testid": "token-accessor" }, t.accessor)),
      el("td", {}, t.superuser ? "superuser" : t.scopes.join(" ")),
      el("td", {}, t.method),
      el("td", { class: "when" }, when(t.created)),
      el("td", { class: "when", "data-testid": "token-expires" }, t.expires ? when(t.expires) : "never"),
      el("td", { "data-testid": "token-uses" }, t.uses_left === null ? "unlimited" : String(t.uses_left)),
      el("td", { class: "when" }, t.revoked ? when(t.revoked) : ""),
      el("td", {}, revoke));
  }));
  labelCells($("token-rows"));
}

async function createToken() {
  const superuser = $("t-superuser").checked;
  const scopes = $("t-scopes").value.split(/\s+/).filter(Boolean);
  const created = await api("POST", "/api/tokens", { name: $("t-name").value.trim(), superuser, scopes: superuser ? [] : scopes });
  $("token-secret").textContent = created.token;
  $("token-once").hidden = false;
  $("t-name").value = "";
  $("t-scopes").value = "";
  $("t-superuser").checked = false;
  await loadTokens();
}

// ---- Keys --------------------------------------------------------------------------------

async function loadKeys() {
  const status = await api("GET", "/api/rotation");
  const older = status.by_version.filter((v) => v.kek_version !== status.active_version);
  const waiting = older.reduce((sum, v) => sum + v.current + v.history, 0);
  $("keys-summary").textContent = `Active key version ${status.active_version}. ` +
    (waiting === 0 ? "Every value is on the active key." : `${waiting} values wait for rotation to the active key.`) +
    (status.pending ? " An interrupted rotation is pending: run strongroom rotate to finish it." : "");
  $("key-rows").replaceChildren(...status.by_version.map((v) => el("tr", { "data-testid": "key-row" },
    el("td", {}, v.kek_version === status.active_version ? `${v.kek_version} (active)` : String(v.kek_version)),
    el("td", {}, String(v.current)), el("td", {}, String(v.history)))));
  labelCells($("key-rows"));
}

// ---- Wiring ------------------------------------------------------------------------------

function wire() {
  $("sign-in-form").addEventListener("submit", guarded(async () => {
    const token = $("token").value.trim();
    if (!token) throw new Error("Paste an API token to sign in.");
    try {
      await signIn(token);
    } catch (error) {
      session = null;
      sessionStorage.removeItem(TOKEN_KEY);
      throw error.status === 401 ? new Error("That token is not valid (unknown, revoked or mistyped).") : error;
    }
  }));
  $("sign-out").addEventListener("click", () => { signOut(); clearMessages(); });
  for (const tab of document.querySelectorAll("#nav .tab")) {
    tab.addEventListener("click", guarded(() => { clearMessages(); return show(tab.dataset.view); }));
  }
  $("secret-filters").addEventListener("submit", guarded(() => { secretsPage = 1; return loadSecrets(); }));
  $("prev-page").addEventListener("click", guarded(() => { secretsPage -= 1; return loadSecrets(); }));
  $("next-page").addEventListener("click", guarded(() => { secretsPage += 1; return loadSecrets(); }));
  $("new-secret").addEventListener("click", () => openEditor(null));
  $("editor").addEventListener("submit", guarded(saveSecret));
  $("editor-cancel").addEventListener("click", closeEditor);
  $("history-close").addEventListener("click", () => { $("history-panel").hidden = true; });
  $("audit-filters").addEventListener("submit", guarded(() => loadAudit(true)));
  $("audit-more").addEventListener("click", guarded(() => loadAudit(false)));
  $("action-names").replaceChildren(...ACTIONS.map((a) => el("option", { value: a })));
  $("token-form").addEventListener("submit", guarded(createToken));
  $("token-copy").addEventListener("click", guarded(async () => {
    await navigator.clipboard.writeText($("token-secret").textContent);
    showNotice("Token copied.");
  }));
  $("token-dismiss").addEventListener("click", () => {
    $("token-secret").textContent = "";
    $("token-once").hidden = true;
  });
  window.addEventListener("popstate", guarded(async () => {
    if (session) await follow(location.hash);
  }));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      closeEditor();
      $("history-panel").hidden = true;
    }
  });
  const remembered = sessionStorage.getItem(TOKEN_KEY);
  if (remembered) {
    guarded(async () => {
      try {
        await signIn(remembered);
      } catch (error) {
        sessionStorage.removeItem(TOKEN_KEY);
        throw error;
      }
    })();
  } else {
    $("token").focus();
  }
}

wire();
