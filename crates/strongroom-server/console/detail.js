// The detail panel (`detail`) for one secret: its value (reveal, copy), description,
// expiry, settings (max versions, check-and-set), custom metadata, history with soft
// delete, undelete, destroy and roll back, and the secret's own audit events. It is a
// modal dialog: it takes focus, and Escape or Close returns to the view.

import {
  $, api, busy, destructive, el, guarded, labelCells, may, query, secretPath, session, showNotice,
  valueControls, when,
} from "./lib.js";

/** What the panel shows now: {namespace, key, env, readEnv}; null when closed. */
let current = null;
let hooks = { changed: async () => {}, edit: () => {} };

/** `changed` reloads the view behind the panel after a write; `edit(item)` opens the editor. */
export function wireDetail(given) {
  hooks = given;
  $("detail-close").addEventListener("click", () => closeDetail());
  $("detail").addEventListener("close", () => { current = null; $("detail-body").replaceChildren(); });
}

export function closeDetail() {
  if ($("detail").open) $("detail").close();
}

/**
 * Opens the panel for `key` in `env` of `namespace`. With `from` (a fallback cell) the
 * secret shown is `from`'s, read through `env` as the application would.
 */
export async function openDetail(namespace, key, env, from = null) {
  current = { namespace, key, env: from ?? env, readEnv: env, from };
  $("detail-title").textContent = from ? `${key} in ${env} (from ${from})` : `${key} in ${env}`;
  $("detail-body").replaceChildren(el("p", { class: "hint" }, "Loading…"));
  if (!$("detail").open) $("detail").showModal();
  $("detail-close").focus();
  await renderDetail();
}

/** Reloads the open panel and the view behind it after a change. */
async function refresh(message) {
  showNotice(message);
  await hooks.changed();
  if (current) await renderDetail();
}

async function renderDetail() {
  const shown = current;
  const { namespace, key, env } = shown;
  const where = query({ namespace, env });
  const [listed, history, settings, audit] = await Promise.all([
    api("GET", `/api/secrets${query({ namespace, env, prefix: key, perPage: 1, details: true })}`),
    api("GET", `${secretPath(key, "/history")}${where}`),
    api("GET", `${secretPath(key, "/settings")}${where}`),
    session.superuser
      ? api("GET", `/api/audit${query({ namespace, env, key, perPage: 20 })}`)
      : Promise.resolve(null),
  ]);
  if (current !== shown) return;
  const item = listed.items.find((i) => i.key === key && i.env === env);
  if (!item) throw new Error(`${key} is no longer in ${env}.`);
  $("detail-body").replaceChildren(
    ...fallbackNote(shown),
    valueSection(shown, item),
    facts(item),
    actions(shown, item),
    settingsForm(shown, settings),
    historySection(shown, history.items),
    auditSection(audit));
  labelCells($("detail-history-rows"));
  if (audit) labelCells($("detail-audit-rows"));
}

function fallbackNote({ namespace, key, readEnv, from }) {
  if (!from) return [];
  const note = el("p", { class: "note" }, `${readEnv} has no value of its own for ${key}: reads get ${from}'s, shown here.`);
  if (may("write", namespace, readEnv)) {
    note.append(" ", el("button", { type: "button", onclick: () => { closeDetail(); hooks.create(key, readEnv); } },
      `Set a value for ${readEnv}`));
  }
  return [note];
}

function valueSection({ namespace, key, readEnv }, item) {
  const section = el("section", { class: "value-line" }, el("h3", {}, "Value"));
  if (item.state !== "active") {
    section.append(el("p", { class: "hint" }, `No value to show: the secret is ${item.state}.`));
  } else if (!may("read", namespace, readEnv)) {
    section.append(el("p", { class: "hint" }, "This token may not read values here."));
  } else {
    const read = () => api("GET", `${secretPath(key)}${query({ namespace, env: readEnv })}`);
    const { masked, value, reveal, copy } = valueControls(key, read);
    section.append(el("div", { class: "value-box" }, masked, value), el("div", { class: "row-actions" }, reveal, copy));
  }
  return section;
}

function facts(item) {
  const pairs = [
    ["State", el("span", { class: `badge ${item.state}` }, item.state)],
    ["Version", `v${item.version}`],
    ["Updated", when(item.updated)],
    ["Created", when(item.created)],
    ["Expires", item.expires ? when(item.expires) : "never"],
    ["Description", item.description || "none"],
  ];
  return el("dl", { class: "facts", "data-testid": "detail-facts" },
    ...pairs.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
}

function actions({ namespace, key, env }, item) {
  const row = el("div", { class: "actions" });
  if (may("write", namespace, env)) {
    row.append(el("button", { type: "button", "data-testid": "edit", onclick: () => { closeDetail(); hooks.edit(item); } },
      "New version"));
  }
  if (may("delete", namespace, env)) {
    row.append(destructive({ "data-testid": "delete", "aria-label": `Delete secret ${key}` }, "Delete secret",
      `Delete ${key} from ${env}, with every version? This can not be undone.`, "Delete", async () => {
        await api("DELETE", `${secretPath(key)}${query({ namespace, env })}`);
        closeDetail();
        showNotice(`Deleted ${key} from ${env}.`);
        await hooks.changed();
      }));
  }
  return row;
}

function settingsForm({ namespace, key, env }, settings) {
  const writable = may("write", namespace, env);
  const maxVersions = el("input", { id: "detail-max-versions", type: "number", min: 1, max: 1000,
    value: settings.max_versions, disabled: !writable });
  const cas = el("input", { id: "detail-cas", type: "checkbox", disabled: !writable });
  cas.checked = Boolean(settings.cas_required);
  const custom = el("textarea", { id: "detail-custom", rows: 3, spellcheck: "false", disabled: !writable,
    placeholder: "owner=payments-team" });
  custom.value = Object.entries(settings.custom_metadata ?? {}).map(([n, v]) => `${n}=${v}`).join("\n");
  const save = el("button", { type: "submit", "data-testid": "settings-save" }, "Save settings");
  const form = el("form", { class: "settings", "data-testid": "detail-settings", autocomplete: "off" },
    el("h3", {}, "Settings"),
    el("div", { class: "grid" },
      el("label", { for: "detail-max-versions" }, "Versions kept", maxVersions),
      el("label", { class: "check", for: "detail-cas" }, cas, "Every write must give the current version (check-and-set)"),
      el("label", { class: "wide", for: "detail-custom" }, "Custom metadata (one name=value per line; not secret)", custom)),
    writable ? el("div", { class: "actions" }, save) : null);
  form.addEventListener("submit", guarded(() => busy(save, async () => {
    const labels = {};
    for (const line of custom.value.split("\n").map((l) => l.trim()).filter(Boolean)) {
      const at = line.indexOf("=");
      if (at < 1) throw new Error(`Custom metadata: "${line}" is not name=value.`);
      labels[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    await api("PUT", `${secretPath(key, "/settings")}${query({ namespace, env })}`, {
      max_versions: Number.parseInt(maxVersions.value, 10) || 0, cas_required: cas.checked, custom_metadata: labels,
    });
    await refresh(`Saved the settings of ${key}.`);
  })));
  return form;
}

function historySection({ namespace, key, env }, versions) {
  const canWrite = may("write", namespace, env);
  const canDelete = may("delete", namespace, env);
  const rows = versions.map((v) => {
    const state = v.destroyed ? "destroyed" : v.deleted ? "deleted" : v.current ? "current" : "kept";
    const buttons = el("div", { class: "row-actions" });
    const on = (action, done) => async () => {
      await api("POST", `${secretPath(key, `/versions/${action}`)}${query({ namespace, env })}`, { versions: [v.version] });
      await refresh(done);
    };
    if (canWrite && !v.current && !v.deleted && !v.destroyed) {
      buttons.append(destructive({ "data-testid": "rollback", "data-version": v.version, class: "" },
        `Roll back to v${v.version}`, `Make version ${v.version}'s value current again (as a new version)?`,
        "Roll back", async () => {
          await api("POST", secretPath(key, `/rollback${query({ namespace })}`), { version: v.version, env });
          await refresh(`Rolled ${key} back to version ${v.version}.`);
        }));
    }
    if (canDelete && !v.deleted && !v.destroyed) {
      buttons.append(destructive({ "data-testid": "delete-version", "data-version": v.version }, "Delete",
        `Soft-delete version ${v.version} of ${key}? Nobody can read it until it is undeleted.`, "Delete version",
        on("delete", `Deleted version ${v.version} of ${key}.`)));
    }
    if (canWrite && v.deleted && !v.destroyed) {
      buttons.append(el("button", { type: "button", "data-testid": "undelete", "data-version": v.version,
        onclick: guarded(on("undelete", `Undeleted version ${v.version} of ${key}.`)) }, "Undelete"));
    }
    if (canDelete && !v.destroyed) {
      buttons.append(destructive({ "data-testid": "destroy", "data-version": v.version }, "Destroy",
        `Destroy version ${v.version} of ${key} for good? Its sealed value is erased and can not be recovered.`,
        "Destroy for good", on("destroy", `Destroyed version ${v.version} of ${key}.`)));
    }
    return el("tr", { "data-testid": "version-row", "data-version": v.version, "data-state": state },
      el("td", {}, `v${v.version}`), el("td", {}, state), el("td", { class: "when" }, when(v.created)),
      el("td", {}, v.actor), el("td", {}, String(v.kek_version)), el("td", {}, buttons));
  });
  return el("section", { "data-testid": "history" }, el("h3", {}, "History"),
    el("table", {},
      el("thead", {}, el("tr", {}, ...["Version", "State", "Created", "By", "Key version", "Actions"].map((h) => el("th", {}, h)))),
      el("tbody", { id: "detail-history-rows" }, ...rows)));
}

function auditSection(audit) {
  const section = el("section", { "data-testid": "detail-audit" }, el("h3", {}, "Recent audit events"));
  if (!audit) {
    section.append(el("p", { class: "hint" }, "Audit events are shown to superuser tokens."));
    return section;
  }
  section.append(el("table", {},
    el("thead", {}, el("tr", {}, ...["Time", "Actor", "Action", "Version"].map((h) => el("th", {}, h)))),
    el("tbody", { id: "detail-audit-rows" }, ...audit.items.map((e) => el("tr", { "data-testid": "detail-audit-row", "data-action": e.action },
      el("td", { class: "when" }, when(e.time)), el("td", {}, e.actor), el("td", {}, e.action),
      el("td", {}, e.version === null ? "" : `v${e.version}`))))));
  if (audit.items.length === 0) section.append(el("p", { class: "hint" }, "No events yet."));
  return section;
}
