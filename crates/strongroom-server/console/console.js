// Strongroom console: plain ES modules, served from the binary. It talks only to this
// origin's /api with the signed-in token. Every piece of data from the API is rendered as
// text (textContent, never HTML), and the token lives in this tab's sessionStorage only.

import {
  $, api, clearMessages, destructive, el, guarded, hideAllValues, labelCells, may, parseScope, query,
  secretPath, session, setSession, showNotice, valueControls, when, whenSignedOut, wireConfirm,
} from "./lib.js";
import { forgetGrid, loadGrid } from "./grid.js";
import { closeDetail, openDetail, wireDetail } from "./detail.js";

const TOKEN_KEY = "strongroom.console.token";
const PAGE_SIZE = 25;
const VIEWS = ["secrets", "audit", "tokens", "keys"];
const ACTIONS = [
  "create", "update", "delete", "rollback", "rotate", "metadata_update", "expired_cleanup",
  "read", "gateway_read", "vault_read", "copy_out", "copy_in", "move_out", "move_in",
];
/** The audit filters kept in the address, by field id. */
const AUDIT_FIELDS = { actor: "a-actor", action: "a-action", key: "a-key", env: "a-env", since: "a-since", until: "a-until" };

let secretsPage = 1;
let auditBefore = null;
let currentView = "secrets";

// ---- The address: the view and its filters live in the URL's fragment
// (`#/secrets?namespace=N&env=E&prefix=P`, `#/audit?actor=…`, `#/tokens`), so a reload keeps
// them and Back returns to the previous view or filter. --------------------------------

function fragment() {
  if (currentView === "secrets") {
    const { namespace, env, prefix } = filters();
    return `#/secrets${query({
      namespace: namespace === "default" ? undefined : namespace, env, prefix,
      page: secretsPage > 1 ? secretsPage : undefined,
    })}`;
  }
  if (currentView === "audit") {
    return `#/audit${query(Object.fromEntries(Object.entries(AUDIT_FIELDS).map(([name, id]) => [name, $(id).value.trim()])))}`;
  }
  return `#/${currentView}`;
}

/** Records the current state as a new history entry (unless it is the same). */
function remember() {
  const next = fragment();
  if (location.hash !== next) history.pushState(null, "", next);
}

/** Applies a fragment: sets the filters and shows its view (true when there was one). */
async function follow(hash) {
  const match = /^#\/(secrets|audit|tokens|keys)(?:\?(.*))?$/.exec(hash);
  if (!match) return false;
  const [, view, search] = match;
  const params = new URLSearchParams(search ?? "");
  if (view === "secrets") {
    $("f-namespace").value = params.get("namespace") ?? "default";
    $("f-env").value = params.get("env") ?? "";
    $("f-prefix").value = params.get("prefix") ?? "";
    const page = Number.parseInt(params.get("page") ?? "1", 10);
    secretsPage = Number.isFinite(page) && page > 0 ? page : 1;
  }
  if (view === "audit") {
    for (const [name, id] of Object.entries(AUDIT_FIELDS)) $(id).value = params.get(name) ?? "";
  }
  const tab = document.querySelector(`#nav .tab[data-view='${view}']`);
  if (tab?.hidden) return false;
  await show(view, false);
  return true;
}

// ---- Signing in and out ----------------------------------------------------------------

async function signIn(token) {
  const me = await api("GET", "/api/session", undefined, token);
  setSession({ token, ...me });
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
  setSession(null);
  sessionStorage.removeItem(TOKEN_KEY);
  // The next token starts where it can look, not where this one was.
  history.replaceState(null, "", location.pathname);
  closeDetail();
  hideAllValues();
  forgetGrid();
  for (const body of ["secret-rows", "grid-head", "grid-rows", "audit-rows", "token-rows", "key-rows"]) {
    $(body).replaceChildren();
  }
  $("token-secret").textContent = "";
  $("token-once").hidden = true;
  $("who").hidden = true;
  $("nav").hidden = true;
  for (const name of VIEWS) $(`view-${name}`).hidden = true;
  $("view-sign-in").hidden = false;
  $("token").focus();
}

/** Suggests envs from the scopes and the fallback chains; a token starts on a namespace it
 * may look at (`payments/*` starts on `payments`). */
function prepareEnvs() {
  const names = new Set([session.default_env, ...Object.keys(session.fallback)]);
  for (const chainEnvs of Object.values(session.fallback)) chainEnvs.forEach((e) => names.add(e));
  const scopes = session.scopes.map(parseScope);
  scopes.filter((s) => s.env !== "*").forEach((s) => names.add(s.env));
  $("env-names").replaceChildren(...[...names].sort().map((name) => el("option", { value: name })));
  $("f-env").value = "";
  const namespace = $("f-namespace").value.trim() || "default";
  const listable = scopes.filter((s) => s.caps.includes("list"));
  if (!session.superuser && !listable.some((s) => s.namespace === "*" || s.namespace === namespace)) {
    const first = listable.find((s) => s.namespace !== "*");
    if (first) $("f-namespace").value = first.namespace;
  }
}

// ---- Views -------------------------------------------------------------------------------

async function show(view, record = true) {
  // A revealed value never outlives the view it was revealed in.
  hideAllValues();
  closeDetail();
  currentView = view;
  for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
  $("view-sign-in").hidden = true;
  for (const tab of document.querySelectorAll("#nav .tab")) {
    if (tab.dataset.view === view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (record) remember();
  if (view === "secrets") await loadSecrets();
  if (view === "audit") await Promise.all([loadAudit(true), loadChainStatus()]);
  if (view === "tokens") await loadTokens();
  if (view === "keys") await loadKeys();
}

// ---- Secrets: the grid (every env) or the list (one env) ---------------------------------

function filters() {
  return {
    namespace: $("f-namespace").value.trim() || "default",
    env: $("f-env").value.trim(),
    prefix: $("f-prefix").value.trim(),
  };
}

/** Reloads the secrets view as the filters say: the grid without an env, else its list. */
async function loadSecrets() {
  hideAllValues();
  const { namespace, env, prefix } = filters();
  $("grid-section").hidden = Boolean(env);
  $("list-section").hidden = !env;
  $("secrets-title").textContent = env ? `What ${env} serves in ${namespace}` : `Every env of ${namespace}`;
  let pages;
  try {
    pages = env ? await loadList(namespace, env, prefix) : (await loadGrid({ namespace, prefix, page: secretsPage }, {
      open: (key, cellEnv, cell) => guarded(() => openDetail(namespace, key, cellEnv, cell.state === "fallback" ? cell.from : null))(),
      create: (key, cellEnv) => openEditor(null, key, cellEnv),
      pick: (picked) => guarded(() => { $("f-env").value = picked; secretsPage = 1; remember(); return loadSecrets(); })(),
    })).pages;
  } catch (error) {
    pages = 0;
    throw error;
  } finally {
    $("prev-page").disabled = !pages || secretsPage <= 1;
    $("next-page").disabled = !pages || secretsPage >= pages;
  }
}

/** What `env` serves: its own secrets and, where it has none, its fallbacks' (marked),
 * computed and paged by the server. Returns the number of pages. */
async function loadList(namespace, env, prefix) {
  let listed;
  try {
    listed = await api("GET", `/api/secrets${query({
      namespace, env, prefix, page: secretsPage, perPage: PAGE_SIZE, details: true, served: true,
    })}`);
  } catch (error) {
    // A refused or failed listing leaves no rows of the previous filter behind.
    $("secret-rows").replaceChildren();
    $("page-info").textContent = "";
    throw error;
  }
  $("secret-rows").replaceChildren(...listed.items.map((item) => secretRow(namespace, env, item)));
  labelCells($("secret-rows"));
  if (listed.items.length === 0) {
    const hint = prefix ? `No key starts with ${prefix} in ${env}.` : `${env} holds no secrets and falls back to none: New secret adds one.`;
    $("secret-rows").append(el("tr", {}, el("td", { colspan: 8, class: "hint" }, hint)));
  }
  const pages = Math.max(1, Math.ceil(listed.total / PAGE_SIZE));
  $("page-info").textContent = `Page ${secretsPage} of ${pages} (${listed.total} secrets)`;
  return pages;
}

function secretRow(namespace, env, item) {
  const via = item.env !== env ? item.env : null;
  const read = () => api("GET", `${secretPath(item.key)}${query({ namespace, env })}`);
  const { masked, value, reveal, copy } = valueControls(item.key, read);
  // A value is offered only while the secret is active: an expired or deleted current
  // version answers 410, so no Reveal or Copy is shown for it.
  const canRead = may("read", namespace, env) && item.state === "active";
  const envCell = el("td", {}, item.env);
  if (via) envCell.append(" ", el("span", { class: "badge fallback", title: `read from ${via} when ${env} has no value` }, `fallback for ${env}`));
  const actions = el("div", { class: "row-actions" });
  if (canRead) actions.append(copy);
  actions.append(el("button", { type: "button", "data-testid": "history", "aria-label": `Details of ${item.key}`,
    onclick: guarded(() => openDetail(namespace, item.key, env, via)) }, "Details"));
  if (may("write", namespace, item.env) && !via) {
    actions.append(el("button", { type: "button", "data-testid": "edit", "aria-label": `Edit ${item.key}`, onclick: () => openEditor(item) }, "Edit"));
  }
  if (may("delete", namespace, item.env) && !via) {
    actions.append(destructive({ "data-testid": "delete", "aria-label": `Delete ${item.key}` }, "Delete",
      `Delete ${item.key} from ${item.env}, with every version? This can not be undone.`, "Delete", async () => {
        await api("DELETE", `${secretPath(item.key)}${query({ namespace, env: item.env })}`);
        showNotice(`Deleted ${item.key} from ${item.env}.`);
        await changed();
      }));
  }
  return el("tr", { "data-testid": "secret-row", "data-key": item.key, "data-env": item.env },
    el("td", { class: "key" }, item.key),
    envCell,
    el("td", {}, masked, value, " ", canRead ? reveal : null),
    el("td", {}, `v${item.version}`),
    el("td", {}, el("span", { class: `badge ${item.state}` }, item.state),
      item.expires ? el("div", { class: "hint" }, "expires ", when(item.expires)) : null),
    el("td", { class: "desc", "data-testid": "description" }, item.description),
    el("td", { class: "when" }, when(item.updated)),
    el("td", {}, actions));
}

/** After a write: what was shown is stale. */
async function changed() {
  forgetGrid();
  if (currentView === "secrets") await loadSecrets();
}

// ---- The editor: a new secret, or a new version of one ---------------------------------

let editing = null;

function openEditor(item, key = "", env = "") {
  closeDetail();
  editing = item ?? null;
  $("editor-title").textContent = item ? `New version of ${item.key} (${item.env})` : "New secret";
  $("key-input").value = item ? item.key : key || filters().prefix;
  $("key-input").readOnly = Boolean(item);
  $("env-input").value = item ? item.env : env || filters().env;
  $("env-input").readOnly = Boolean(item);
  $("value-input").value = "";
  $("description-input").value = item ? item.description : "";
  $("ttl-input").value = "";
  $("editor").hidden = false;
  $("editor").scrollIntoView({ block: "nearest" });
  (item || key ? $("value-input") : $("key-input")).focus();
}

function closeEditor() {
  editing = null;
  $("value-input").value = "";
  $("editor").hidden = true;
}

async function saveSecret() {
  // One write per Save: a second click while this one runs does nothing.
  const save = $("save");
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
  showNotice(`Saved ${key}${env ? ` in ${env}` : ""}.`);
  await changed();
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
  if (fresh && page.items.length === 0) {
    $("audit-rows").append(el("tr", {}, el("td", { colspan: 8, class: "hint" }, "No event matches these filters.")));
  }
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
  const [listed, methods] = await Promise.all([
    api("GET", "/api/tokens"),
    // The sign-in methods (Vault's `sys/auth`); absent when the /v1 surface is off.
    api("GET", "/v1/sys/auth").catch(() => null),
  ]);
  showMethods(methods?.data ?? null, listed.items);
  $("token-rows").replaceChildren(...listed.items.map((t) => {
    const revoke = t.revoked ? null : destructive({ "data-testid": "revoke", "aria-label": `Revoke ${t.name}` }, "Revoke",
      t.superuser
        ? `Revoke ${t.name}? It is a superuser token: whatever uses it stops working at once.`
        : `Revoke ${t.name}? Whatever uses it stops working at once.`,
      "Revoke", async () => {
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

/** The enabled sign-in methods, with how many live tokens each has issued. */
function showMethods(mounts, tokens) {
  if (!mounts) {
    $("method-rows").replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "hint" },
      "The Vault-compatible API (/v1) is off on this server, so only tokens made here or by strongroom token create sign in.")));
    return;
  }
  $("method-rows").replaceChildren(...Object.entries(mounts).map(([path, mount]) => {
    const live = tokens.filter((t) => !t.revoked && (t.method === mount.type || t.method === path.replace(/\/$/, ""))).length;
    return el("tr", { "data-testid": "auth-method", "data-path": path },
      el("td", {}, el("code", {}, path)), el("td", {}, mount.type), el("td", {}, mount.description || ""),
      el("td", {}, String(live)));
  }));
  labelCells($("method-rows"));
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
  whenSignedOut(signOut);
  wireConfirm();
  wireDetail({ changed, edit: (item) => openEditor(item), create: (key, env) => openEditor(null, key, env) });
  $("sign-in-form").addEventListener("submit", guarded(async () => {
    const token = $("token").value.trim();
    if (!token) throw new Error("Paste an API token to sign in.");
    try {
      await signIn(token);
    } catch (error) {
      setSession(null);
      sessionStorage.removeItem(TOKEN_KEY);
      throw error.status === 401 ? new Error("That token is not valid (unknown, revoked or mistyped).") : error;
    }
  }));
  $("sign-out").addEventListener("click", () => { signOut(); clearMessages(); });
  for (const tab of document.querySelectorAll("#nav .tab")) {
    tab.addEventListener("click", guarded(() => show(tab.dataset.view)));
  }
  const reload = (page) => guarded(() => { secretsPage = page(); remember(); return loadSecrets(); });
  $("secret-filters").addEventListener("submit", reload(() => 1));
  $("prev-page").addEventListener("click", reload(() => secretsPage - 1));
  $("next-page").addEventListener("click", reload(() => secretsPage + 1));
  $("all-envs").addEventListener("click", guarded(() => { $("f-env").value = ""; secretsPage = 1; remember(); return loadSecrets(); }));
  $("new-secret").addEventListener("click", () => openEditor(null));
  $("editor").addEventListener("submit", guarded(saveSecret));
  $("editor-cancel").addEventListener("click", closeEditor);
  $("audit-filters").addEventListener("submit", guarded(() => { remember(); return loadAudit(true); }));
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
    if (event.key === "Escape" && !$("detail").open && !$("confirm").open) closeEditor();
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
