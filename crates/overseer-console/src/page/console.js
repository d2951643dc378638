// The Overseer console: renders the snapshots and events the server pushes on /api/stream.
// Plain JavaScript, no build step; served from the binary.
"use strict";

const kept = new Map();        // event id -> event, as the server sent it
const MAX_SHOWN = 500;
let latest = null;             // the latest snapshot
let selected = null;           // the event whose chain is open
let skipped = 0;               // events the server left out of its pushes

const $ = (selector) => document.querySelector(selector);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const fixed = (n, digits) => (typeof n === "number" ? n.toFixed(digits) : "–");
const stateClass = (state) => "state-" + String(state).replace(/ /g, "-");

// ---- the tree, as nested boxes ----

function nodeBox(row) {
  const restarts = el("span", { class: "restarts" + (row.restarts > 0 ? " some" : "") }, "↻ " + row.restarts);
  const head = el("div", { class: "head" },
    el("span", { class: "name" }, row.name),
    el("span", { class: "badge" }, row.state),
    restarts);
  const box = el("div", {
    class: "node " + (row.supervisor ? "supervisor " : "agent ") + stateClass(row.state),
    "data-name": row.name, "data-path": row.path, "data-state": row.state, "data-restarts": row.restarts,
  }, head);
  if (row.supervisor) {
    let use = row.recent_restarts + " restart" + (row.recent_restarts === 1 ? "" : "s") + " of children in the window";
    const limit = row.intensity;
    if (limit) use = `${limit.strategy} · ${limit.restarts_in_window} of ${limit.max_restarts} restarts in ${limit.period_secs} s`;
    if (row.escalated_at) use += ` · escalated at more than ${row.escalated_at.intensity} in ${row.escalated_at.period_secs} s`;
    const attributes = { class: "intensity" + (limit && limit.restarts_in_window >= limit.max_restarts ? " at-limit" : "") };
    if (limit) {
      attributes["data-max-restarts"] = limit.max_restarts;
      attributes["data-period-secs"] = limit.period_secs;
      attributes["data-restarts-in-window"] = limit.restarts_in_window;
    }
    head.append(el("span", attributes, use));
  } else {
    const errors = el("span", { class: "errors" + (row.errors > 0 ? " some" : "") }, `errors ${row.errors} (${row.errors_total} total)`);
    box.append(el("div", { class: "figures" },
      el("span", { class: "queue" }, row.queued === null ? "queue –" : `queue ${row.queued}/${row.capacity}`),
      el("span", { class: "rate" }, `${fixed(row.asks_per_sec, 2)} asks/s`),
      el("span", { class: "latency" }, `p50 ${fixed(row.p50_ms, 1)} · p95 ${fixed(row.p95_ms, 1)} · p99 ${fixed(row.p99_ms, 1)} ms`),
      errors,
      el("span", { class: "health health-" + row.health }, row.health + (row.health_failures ? ` (${row.health_failures} failed checks)` : ""))));
    if (row.progress) {
      const beat = row.since_last_beat_ms === null ? "" : `, beat ${(row.since_last_beat_ms / 1000).toFixed(1)} s ago`;
      box.append(el("div", { class: "progress" }, "progress: " + row.progress + beat));
    }
  }
  return box;
}

function renderTree(rows) {
  const tree = $("#tree");
  const previous = new Map();
  for (const node of tree.querySelectorAll(".node")) previous.set(node.dataset.path, Number(node.dataset.restarts));
  const root = el("div");
  const stack = [{ depth: -1, children: root }];
  for (const row of rows) {
    while (stack.length > 1 && stack[stack.length - 1].depth >= row.depth) stack.pop();
    const box = nodeBox(row);
    if (previous.has(row.path) && previous.get(row.path) < row.restarts) box.classList.add("flash");
    stack[stack.length - 1].children.append(box);
    if (row.supervisor) {
      const children = el("div", { class: "children" });
      box.append(children);
      stack.push({ depth: row.depth, children });
    }
  }
  tree.replaceChildren(...(rows.length ? root.childNodes : [el("p", { class: "empty" }, "no tree (the system has not started)")]));
}

// ---- breakers, budget, dead letters ----

function renderBreakers(rows) {
  const body = $("#breakers tbody");
  body.replaceChildren(...rows.map((row) => el("tr", { class: "breaker-" + row.state, "data-key": row.key, "data-state": row.state },
    el("td", {}, row.key),
    el("td", { class: "state" }, row.state.replace("_", "-")),
    el("td", {}, `${row.consecutive_failures} in a row · ${(row.failure_rate * 100).toFixed(0)}%`),
    el("td", {}, row.half_open_in_ms === null ? "" : (row.half_open_in_ms === 0 ? "probe due" : (row.half_open_in_ms / 1000).toFixed(1) + " s")))));
  $("#no-breakers").hidden = rows.length > 0;
}

function renderBudget(budget) {
  const box = $("#budget");
  if (!budget) { box.replaceChildren(el("p", { class: "empty" }, "no budget")); return; }
  const parts = [];
  parts.push(el("p", { class: budget.tripped ? "tripped" : "" }, budget.tripped ? "kill switch tripped: " + budget.trip : "kill switch armed"));
  for (const dim of budget.dimensions) {
    if (dim.limit === null) {
      parts.push(el("div", { class: "gauge unlimited", "data-dimension": dim.dimension },
        el("div", { class: "label" }, el("span", {}, dim.dimension), el("span", {}, `${dim.committed} used, no limit`))));
      continue;
    }
    const limit = Math.max(dim.limit, 1);
    const used = Math.min(dim.committed / limit, 1);
    const held = Math.min(dim.reserved / limit, 1 - used);
    const tierClass = dim.tier === null ? "" : (dim.tier >= dim.tiers.length ? " tier-high" : " tier-reached");
    const bar = el("div", { class: "bar" },
      el("div", { class: "fill", style: `width:${used * 100}%` }),
      el("div", { class: "held", style: `left:${used * 100}%;width:${held * 100}%` }));
    dim.tiers.forEach((fraction, index) => {
      const mark = el("div", { class: "tier", title: `tier ${index + 1}` }, el("span", {}, `${Math.round(fraction * 100)}%`));
      mark.style.left = `${fraction * 100}%`;
      bar.append(mark);
    });
    const tier = dim.tier === null ? "below the first tier" : `tier ${dim.tier}`;
    parts.push(el("div", { class: "gauge" + tierClass, "data-dimension": dim.dimension, "data-tier": dim.tier ?? "" },
      el("div", { class: "label" }, el("span", {}, dim.dimension),
        el("span", {}, `${dim.committed} of ${dim.limit} (${Math.round(used * 100)}%) · ${dim.reserved} held · ${tier}`)),
      bar));
  }
  box.replaceChildren(...parts);
}

function renderLetters(letters, runs, actions) {
  const body = $("#dead-letters tbody");
  body.replaceChildren(...letters.map((letter) => {
    const button = actions ? el("button", { type: "button", class: "redrive", onclick: () => act(`/api/actions/redrive/${letter.id}`) }, "redrive") : "";
    return el("tr", { "data-id": letter.id },
      el("td", {}, letter.id),
      el("td", {}, `${letter.agent} / ${letter.task_type}` + (letter.run ? ` (run ${letter.run})` : "")),
      el("td", {}, letter.attempts),
      el("td", {}, letter.last_error ?? ""),
      el("td", {}, button));
  }));
  $("#no-letters").hidden = letters.length > 0;
  const list = $("#runs");
  if (runs && runs.length) list.replaceChildren(...runs.map((run) => el("li", {}, run)));
  else list.replaceChildren(el("li", { class: "empty" }, runs ? "none" : "no journal"));
}

function render(snapshot) {
  latest = snapshot;
  renderTree(snapshot.tree);
  renderBreakers(snapshot.breakers);
  renderBudget(snapshot.budget);
  renderLetters(snapshot.dead_letters, snapshot.unfinished_runs, snapshot.actions);
  $("#window").textContent = `${snapshot.window_ms / 1000} s`;
  $("#actions").hidden = !snapshot.actions;
  const missed = snapshot.missed_events > 0 ? ` · the console missed ${snapshot.missed_events} events (the stream lagged)` : "";
  $("#system-state").textContent = (snapshot.shut_down ? "system shut down" : "") + missed;
}

// ---- events and causal chains ----

function eventLine(event, tag) {
  return el(tag, { class: "kind-" + event.kind, "data-id": event.id, "data-kind": event.kind, "data-caused-by": event.caused_by ?? "" },
    el("span", { class: "ev-id" }, "#" + event.id), " ",
    event.caused_by ? el("span", { class: "ev-cause", title: "caused by" }, "← #" + event.caused_by) : el("span", { class: "ev-cause" }, "(root)"), " ",
    event.at_ms === undefined ? "" : el("span", { class: "ev-at" }, (event.at_ms / 1000).toFixed(3) + "s"), " ",
    el("span", { class: "ev-kind" }, event.kind), " ",
    el("span", { class: "ev-text" }, event.text));
}

function hideAsks() { return $("#hide-asks").checked; }

function addEvent(event) {
  if (kept.has(event.id)) return;
  kept.set(event.id, event);
  const line = eventLine(event, "li");
  if (event.kind === "ask" && hideAsks()) line.classList.add("hidden");
  line.addEventListener("click", () => openChain(event.id));
  const list = $("#events");
  list.prepend(line);
  while (list.children.length > MAX_SHOWN) {
    const old = list.lastElementChild;
    kept.delete(Number(old.dataset.id));
    old.remove();
  }
  if (selected !== null) markChain();
}

function localChain(id) {
  const chain = [];
  const seen = new Set();
  let at = kept.get(id);
  while (at && !seen.has(at.id)) {
    seen.add(at.id);
    chain.unshift(at);
    at = at.caused_by ? kept.get(at.caused_by) : null;
  }
  return chain;
}

let chainIds = new Set();

function markChain() {
  for (const line of document.querySelectorAll("#events li")) {
    const id = Number(line.dataset.id);
    line.classList.toggle("in-chain", chainIds.has(id));
    line.classList.toggle("selected", id === selected);
  }
}

async function openChain(id) {
  selected = id;
  let chain;
  try {
    const answer = await fetch(`/api/chain/${id}`);
    chain = answer.ok ? (await answer.json()).chain : localChain(id);
  } catch (_) {
    chain = localChain(id);
  }
  chainIds = new Set(chain.map((event) => event.id));
  $("#chain").replaceChildren(...chain.map((event) => eventLine(event, "li")));
  markChain();
}

// ---- actions ----

async function act(path, body) {
  const headers = { "Content-Type": "application/json" };
  const token = $("#token").value;
  if (token) headers.Authorization = "Bearer " + token;
  const shown = $("#action-result");
  try {
    const answer = await fetch(path, { method: "POST", headers, body: JSON.stringify(body || {}) });
    const json = await answer.json();
    shown.textContent = answer.ok ? "done" : `refused: ${json.message}`;
  } catch (error) {
    shown.textContent = "failed: " + error;
  }
}

$("#trip").addEventListener("click", () => {
  if (confirm("Trip the kill switch? Every agent stops taking work.")) act("/api/actions/trip", { reason: "tripped from the console" });
});

$("#hide-asks").addEventListener("change", () => {
  for (const line of document.querySelectorAll('#events li[data-kind="ask"]')) line.classList.toggle("hidden", hideAsks());
});

// ---- the stream ----

function connect() {
  const stream = new EventSource("/api/stream");
  const status = $("#connection");
  stream.onopen = () => { status.textContent = "live"; status.className = "conn-live"; };
  stream.onerror = () => { status.textContent = "reconnecting…"; status.className = "conn-lost"; };
  stream.addEventListener("snapshot", (message) => render(JSON.parse(message.data)));
  stream.addEventListener("events", (message) => {
    const batch = JSON.parse(message.data);
    for (const event of batch.events) addEvent(event);
    if (batch.skipped > 0) {
      skipped += batch.skipped;
      $("#skipped").textContent = `${skipped} events not shown (busy; open a chain to see any kept event)`;
    }
  });
}

connect();
