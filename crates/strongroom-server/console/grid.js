// The key × env grid: one row per key, one column per env the token may list, each cell
// what a read of that key in that env finds (`GET /api/grid`, computed by the server).
// Values are never part of it; a cell opens the secret's detail panel.

import { $, api, el, labelCells, may, query } from "./lib.js";

const PAGE_SIZE = 50;

/** Pages already shown for the current filter: paging back does not fetch them again. A
 * write clears it (`forgetGrid`). */
const shown = new Map();

export function forgetGrid() {
  shown.clear();
}

/**
 * Shows page `page` of the grid of `namespace` (keys starting with `prefix`); `open` is
 * called with (key, env, cell) when a cell is chosen, `create` with (key, env) on a
 * missing cell the token may write.
 */
export async function loadGrid({ namespace, prefix, page }, { open, create, pick }) {
  const cacheKey = JSON.stringify([namespace, prefix, page]);
  let grid = shown.get(cacheKey);
  if (!grid) {
    try {
      grid = await api("GET", `/api/grid${query({ namespace, prefix, page, perPage: PAGE_SIZE })}`);
    } catch (error) {
      $("grid-head").replaceChildren();
      $("grid-rows").replaceChildren();
      throw error;
    }
    shown.set(cacheKey, grid);
  }
  $("grid-head").replaceChildren(el("tr", {},
    el("th", { scope: "col" }, "Key"),
    ...grid.envs.map((env) => el("th", { scope: "col" },
      el("button", { type: "button", class: "link", "data-testid": "grid-env", "data-env": env,
        title: `List what ${env} serves`, onclick: () => pick(env) }, env)))));
  $("grid-rows").replaceChildren(...grid.items.map((row) => el("tr", { "data-testid": "grid-row", "data-key": row.key },
    el("th", { scope: "row", class: "key" }, row.key),
    ...row.cells.map((cell) => gridCell(namespace, row.key, cell, { open, create })))));
  labelCells($("grid-rows"));
  if (grid.items.length === 0) {
    const hint = grid.envs.length === 0
      ? "This token may list no env of this namespace."
      : prefix ? `No key starts with ${prefix}.` : "No secrets yet: New secret adds one.";
    $("grid-rows").append(el("tr", {}, el("td", { colspan: grid.envs.length + 1, class: "hint" }, hint)));
  }
  const pages = Math.max(1, Math.ceil(grid.total / PAGE_SIZE));
  const envs = grid.envs.length === 1 ? "1 env" : `${grid.envs.length} envs`;
  $("grid-info").textContent = `Page ${page} of ${pages} (${grid.total} keys, ${envs})`;
  return { pages };
}

function gridCell(namespace, key, cell, { open, create }) {
  const state = cell.state === "destroyed" ? "deleted" : cell.state;
  const td = el("td", {
    "data-testid": "grid-cell", "data-key": key, "data-env": cell.env, "data-state": state, class: `cell ${state}`,
  });
  td.dataset.label = cell.env;
  if (state === "missing") {
    if (may("write", namespace, cell.env)) {
      // The cell itself takes the click (the button inside is for the keyboard).
      td.addEventListener("click", () => create(key, cell.env));
      // The button's name starts with what it shows (WCAG 2.5.3), then says which cell.
      td.append(el("button", { type: "button", class: "cell-button", title: `Add ${key} to ${cell.env}`,
        "aria-label": `missing: add ${key} to ${cell.env}` }, "missing"));
    } else {
      td.append(el("span", { class: "hint" }, "missing"));
    }
    return td;
  }
  const label = state === "fallback" ? `fallback: ${cell.from}` : `${state} · v${cell.version}`;
  const name = state === "fallback"
    ? `${label}: ${key} in ${cell.env} has no value of its own and reads ${cell.from}'s`
    : `${label}: ${key} in ${cell.env}`;
  td.addEventListener("click", () => open(key, cell.env, cell));
  td.append(el("button", { type: "button", class: "cell-button", "aria-label": name, title: name },
    el("span", { class: `badge ${state}` }, label)));
  return td;
}
