// The deai explorer: one page, routed by the URL's hash, reading the node's /v1 API.
// No framework: each page is a function that fetches what it shows and builds the DOM.
// Charts are uPlot, the lineage graph Cytoscape.js (loaded only on model pages), both vendored.
"use strict";

const TOKEN = 10n ** 18n;
const EPSILON_SCALE = 1e6;
const SCORE_SCALE = 1e6;
/// What tests and the console can reach: the lineage graph, the last chart.
window.explorer = { lineage: null, chart: null, page: null };

// ---- helpers ----

async function api(path) {
  const r = await fetch(path, { headers: { accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = new Error(body.message || `${path}: HTTP ${r.status}`);
    e.status = r.status;
    e.code = body.code;
    throw e;
  }
  return body;
}

async function tryApi(path) {
  try {
    return await api(path);
  } catch (e) {
    if (e.status === 404 || e.status === 400) return null;
    throw e;
  }
}

/// h("td", {class: "num"}, "1") builds an element; children may be strings, nodes or arrays.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const a = (href, text, attrs) => h("a", { href, ...attrs }, text);
const short = (hex) => (hex && hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : hex || "");
const addr = (x) => a(`#/account/${x}`, short(x), { class: "mono", title: x });
const big = (s) => BigInt(typeof s === "number" ? Math.round(s) : s || 0);

/// Base units (a decimal string) as tokens with up to 4 decimals.
function tokens(units) {
  const v = big(units);
  if (v > 0n && v < TOKEN / 10000n) return `${v.toLocaleString()} base units`;
  const whole = v / TOKEN;
  const frac = (v % TOKEN) * 10000n / TOKEN;
  if (frac === 0n) return `${whole.toLocaleString()} tokens`;
  return `${whole.toLocaleString()}.${frac.toString().padStart(4, "0").replace(/0+$/, "")} tokens`;
}

const eps = (fixed) => (Number(fixed || 0) / EPSILON_SCALE).toLocaleString(undefined, { maximumFractionDigits: 4 });
const kv = (pairs) => h("dl", { class: "kv" }, pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
const card = (k, v, id) => h("div", { class: "card" }, h("div", { class: "v", id }, v), h("div", { class: "k" }, k));

function table(headers, rows, attrs) {
  return h("table", attrs || {},
    h("thead", {}, h("tr", {}, headers.map((x) => (x.startsWith("#") ? h("th", { class: "num" }, x.slice(1)) : h("th", {}, x))))),
    h("tbody", {}, rows));
}

const num = (v) => h("td", { class: "num" }, v);
const td = (...v) => h("td", {}, ...v);

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.flat());
}

function eventLine(e) {
  const { type, ...rest } = e;
  const parts = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`);
  return h("div", { class: "mono" }, h("span", { class: "tag" }, type), " ", parts.join(" "));
}

function historyTable(history) {
  const rows = (history || []).slice().reverse().map((e) =>
    h("tr", {}, num(a(`#/block/${e.height}`, e.height)), td(eventLine(e.event)), td(a(`#/tx/${e.tx_id}`, short(e.tx_id), { class: "mono" }))));
  return rows.length ? table(["#height", "event", "tx"], rows) : h("p", { class: "muted" }, "nothing yet");
}

// ---- live blocks ----

const listeners = new Set();
function connectLive() {
  const badge = document.getElementById("live");
  const source = new EventSource("/v1/events");
  source.addEventListener("open", () => { badge.textContent = "● live"; badge.className = "on"; });
  source.addEventListener("error", () => { badge.textContent = "○ reconnecting"; badge.className = ""; });
  source.addEventListener("block", (m) => {
    const { height } = JSON.parse(m.data);
    for (const f of listeners) f(height);
  });
}

function onBlock(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

// ---- pages ----

async function overview() {
  // First paint from the status alone (one small read, whatever the chain's length); the recent
  // blocks, the validators and the treasury fill in as they arrive.
  const status = await api("/v1/status");
  const tbody = h("tbody", {});
  const list = h("table", { id: "blocks" },
    h("thead", {}, h("tr", {}, h("th", { class: "num" }, "height"), h("th", { class: "num" }, "txs"), h("th", {}, "proposer"), h("th", {}, "finalized"))),
    tbody);
  const validatorsSlot = h("div", {}, h("p", { class: "muted" }, "loading…"));
  const treasurySlot = h("div", { class: "v", id: "treasury" }, "…");
  const rateSlot = h("div", { class: "v", id: "txrate" }, "…");
  show(
    h("h1", {}, `Chain ${status.chain_id}`),
    h("div", { class: "cards" },
      card("finalized height", status.height.toLocaleString(), "height"),
      card("last finality latency", status.last_finality_latency_ms == null ? "–" : `${status.last_finality_latency_ms} ms`, "latency"),
      h("div", { class: "card" }, rateSlot, h("div", { class: "k" }, "transactions / s (last blocks)")),
      card("mempool", status.mempool_size, "mempool"),
      card(`validators (epoch ${status.epoch})`, status.validators, "validators"),
      h("div", { class: "card" }, treasurySlot, h("div", { class: "k" }, "treasury"))),
    h("h2", {}, "Recent blocks"), list,
    h("h2", {}, "Validators"), validatorsSlot);
  window.explorer.paintedMs = performance.now();
  const heights = [];
  for (let i = status.height; i > 0 && heights.length < 10; i--) heights.push(i);
  const [validators, governance, ...blocks] = await Promise.all([
    tryApi("/v1/validators"), tryApi("/v1/governance"), ...heights.map((x) => tryApi(`/v1/blocks/${x}`)),
  ]);
  const found = blocks.filter(Boolean);
  tbody.replaceChildren(...found.map(blockRow));
  rateSlot.textContent = txRate(found);
  treasurySlot.textContent = governance ? tokens(governance.treasury_balance) : "–";
  const set = validators ? validators.set.members : [];
  validatorsSlot.replaceChildren(table(["key", "account", "#stake"],
    set.map((m) => h("tr", {}, td(h("span", { class: "mono" }, short(m.key))), td(addr(m.account)), num(tokens(m.stake))))));
  // The stream sends the latest height; blocks finalized in between are read here.
  let last = status.height;
  const stop = onBlock(async (height) => {
    if (!document.body.contains(tbody)) return stop();
    const from = Math.max(last + 1, height - 9);
    last = Math.max(last, height);
    for (let x = from; x <= height; x++) {
      const b = await tryApi(`/v1/blocks/${x}`);
      if (!b) continue;
      document.getElementById("height").textContent = x.toLocaleString();
      const row = blockRow(b);
      row.className = "new";
      tbody.prepend(row);
    }
    while (tbody.children.length > 10) tbody.lastChild.remove();
  });
}

function blockRow(b) {
  return h("tr", { "data-height": b.height }, num(a(`#/block/${b.height}`, b.height)), num(b.txs.length),
    td(h("span", { class: "mono" }, short(b.proposer))), td(new Date(b.finalized_at_ms).toLocaleTimeString()));
}

function txRate(blocks) {
  if (blocks.length < 2) return "–";
  const txs = blocks.slice(0, -1).reduce((n, b) => n + b.txs.length, 0);
  const span = (blocks[0].finalized_at_ms - blocks[blocks.length - 1].finalized_at_ms) / 1000;
  return span > 0 ? (txs / span).toFixed(1) : "–";
}

function txKind(tx) {
  return tx && tx.tx && tx.tx.body ? tx.tx.body.type : "?";
}

async function block(height) {
  const b = await api(`/v1/blocks/${height}`);
  const decoded = b.decoded_txs || [];
  const rows = b.tx_ids.map((id, i) => {
    const r = b.receipts[i] || {};
    const ok = !!(r.result && r.result.ok);
    const err = r.result && r.result.error ? r.result.error.code : "";
    const tx = decoded[i];
    return h("tr", {}, td(a(`#/tx/${id}`, short(id), { class: "mono" })), td(h("span", { class: "tag" }, txKind(tx))),
      td(tx ? addr(tx.tx.sender) : ""), td(ok ? h("span", { class: "ok" }, "applied") : h("span", { class: "bad" }, err || "rejected")));
  });
  show(
    h("h1", {}, `Block ${b.height}`),
    kv([
      ["digest", h("span", { class: "mono" }, b.digest)],
      ["parent", height > 1 ? a(`#/block/${height - 1}`, b.parent, { class: "mono" }) : b.parent],
      ["proposer", h("span", { class: "mono" }, b.proposer)],
      ["finalized", new Date(b.finalized_at_ms).toLocaleString()],
      ["state root", h("span", { class: "mono" }, b.state_root)],
    ]),
    h("p", {}, a(`#/block/${height - 1}`, "← previous"), " ", a(`#/block/${Number(height) + 1}`, "next →")),
    h("h2", {}, `Transactions (${b.tx_ids.length})`),
    rows.length ? table(["id", "kind", "sender", "result"], rows) : h("p", { class: "muted" }, "none"),
    h("h2", {}, `Events (${b.events.length})`),
    b.events.length ? h("div", {}, b.events.map(eventLine)) : h("p", { class: "muted" }, "none"));
}

async function tx(id) {
  const st = await api(`/v1/txs/${id}`);
  const parts = [h("h1", {}, "Transaction"), kv([["id", h("span", { class: "mono" }, id)], ["status", st.status]])];
  if (st.status === "finalized") {
    const b = await api(`/v1/blocks/${st.height}`);
    const decoded = (b.decoded_txs || [])[st.index];
    parts.push(kv([
      ["block", a(`#/block/${st.height}`, st.height)],
      ["applied", st.applied ? h("span", { class: "ok" }, "yes") : h("span", { class: "bad" }, "no")],
      decoded ? ["kind", h("span", { class: "tag" }, txKind(decoded))] : null,
      decoded ? ["sender", addr(decoded.tx.sender)] : null,
      decoded ? ["fee", tokens(decoded.tx.fee)] : null,
    ]));
    if (decoded) parts.push(h("h2", {}, "Body"), h("pre", {}, JSON.stringify(decoded.tx.body, null, 2)));
    if (st.receipt) {
      parts.push(h("h2", {}, "Events"), h("div", {}, (st.receipt.events || []).map(eventLine)));
      if (st.receipt.result && st.receipt.result.error) parts.push(h("p", { class: "bad" }, JSON.stringify(st.receipt.result.error)));
    }
  } else if (st.status === "rejected") {
    parts.push(h("p", { class: "bad" }, `${st.code}: ${st.reason}`));
  }
  show(parts);
}

async function account(address) {
  const [view, datasets, tasks, offers, channels, proposals] = await Promise.all([
    api(`/v1/accounts/${address}`), api("/v1/datasets"), api("/v1/tasks"),
    tryApi(`/v1/offers?provider=${address}`), tryApi(`/v1/channels?payer=${address}`), tryApi("/v1/proposals"),
  ]);
  const acc = view.account;
  const mine = datasets.filter((d) => d.owner === address);
  const created = tasks.filter((t) => t.creator === address || t.coordinator === address);
  const votes = [];
  for (const p of (proposals || []).slice(0, 20)) {
    const d = await tryApi(`/v1/proposals/${p.id}`);
    const v = d && d.votes.find((x) => x.voter === address);
    if (v) votes.push(h("tr", {}, num(a(`#/proposal/${p.id}`, p.id)), td(v.choice), num(tokens(v.weight))));
  }
  show(
    h("h1", {}, "Account"),
    kv([
      ["address", h("span", { class: "mono" }, address)],
      ["balance", tokens(acc.balance)],
      ["staked", tokens(acc.staked)],
      ["unbonding", tokens((acc.unbonding || []).reduce((s, u) => s + big(u.amount), 0n).toString())],
      ["nonce", acc.nonce],
      acc.validator ? ["validator key", h("span", { class: "mono" }, acc.validator.key)] : null,
    ]),
    h("h2", {}, `Datasets (${mine.length})`), datasetTable(mine),
    h("h2", {}, `Tasks created or coordinated (${created.length})`), taskTable(created),
    h("h2", {}, "Offers"), offerTable(offers || []),
    h("h2", {}, "Channels paid from it"), channelTable(channels || []),
    h("h2", {}, "Votes"), votes.length ? table(["#proposal", "choice", "#weight"], votes) : h("p", { class: "muted" }, "none"));
}

function datasetTable(list) {
  return table(["#id", "owner", "schema", "#samples", "#ε spent / max", "status"],
    list.map((d) => h("tr", {}, num(a(`#/dataset/${d.id}`, d.id)), td(addr(d.owner)), td(d.schema), num(d.samples),
      num(`${eps(d.epsilon_spent)} / ${eps(d.policy.epsilon_max)}`), td(d.revoked ? h("span", { class: "bad" }, "revoked") : "consenting"))),
    { id: "datasets" });
}

async function datasets() {
  show(h("h1", {}, "Datasets"), datasetTable(await api("/v1/datasets")));
}

/// A consent policy as a sentence a person can check.
function policyWords(p) {
  const words = [`Allows training for ${p.purposes.map((x) => `“${x}”`).join(" or ")}`];
  words.push(p.creators ? `by ${p.creators.length} named creator(s) only` : "by any task creator");
  words.push(`for a reward of at least ${tokens(p.reward_min)}`);
  words.push(`spending at most ε = ${eps(p.epsilon_max)} over all tasks`);
  if (Number(p.epsilon_round_max)) words.push(`and at most ε = ${eps(p.epsilon_round_max)} in one round`);
  if (Number(p.noise_multiplier_min)) words.push(`with DP noise σ ≥ ${Number(p.noise_multiplier_min) / 1e6}`);
  if (Number(p.royalty_bps_min)) words.push(`asking ${p.royalty_bps_min / 100} % of every paid query on the models it trains`);
  words.push(`for tasks created before height ${Number(p.expiry_height).toLocaleString()}`);
  return `${words.join(", ")}.`;
}

async function dataset(id) {
  const [d, tasks, models, governance] = await Promise.all([api(`/v1/datasets/${id}`), api("/v1/tasks"), api("/v1/models"), tryApi("/v1/governance")]);
  const used = tasks.filter((t) => t.datasets.includes(Number(id)));
  const usedIds = new Set(used.map((t) => t.id));
  const trained = models.filter((m) => usedIds.has(m.task));
  let earned = 0n;
  for (const e of d.history || []) {
    if (e.event.type === "reward_paid" || e.event.type === "royalty_paid") earned += big(e.event.amount);
  }
  const decision = governance && governance.block_decisions.find((b) => b.target === `dataset:${id}`);
  show(
    h("h1", {}, `Dataset ${id}`),
    kv([
      ["owner", addr(d.owner)],
      ["commitment", h("span", { class: "mono" }, d.commitment)],
      ["schema, samples", `${d.schema}, ${d.samples}`],
      ["consent", h("span", { id: "consent" }, d.revoked ? "Revoked: no new round may select it." : policyWords(d.policy))],
      ["ε spent", `${eps(d.epsilon_spent)} of ${eps(d.policy.epsilon_max)}`],
      ["earned", h("span", { id: "earned" }, tokens(earned.toString()))],
      decision && decision.blocked ? ["governance", h("span", { class: "bad" }, "blocked by vote")] : null,
    ]),
    h("h2", {}, `Tasks that named it (${used.length})`), taskTable(used),
    h("h2", {}, `Models trained on it (${trained.length})`), modelTable(trained),
    h("h2", {}, "History"), historyTable(d.history));
}

function taskTable(list) {
  return table(["#id", "purpose", "creator", "#rounds", "#ε spent / budget", "#reward", "status"],
    list.map((t) => h("tr", {}, num(a(`#/task/${t.id}`, t.id)), td(t.purpose), td(addr(t.creator)),
      num(`${(t.round_log || []).length} / ${t.rounds}`), num(`${eps(t.epsilon_spent)} / ${eps(t.epsilon)}`), num(tokens(t.reward)), td(t.status))),
    { id: "tasks" });
}

async function tasks() {
  show(h("h1", {}, "Tasks"), taskTable(await api("/v1/tasks")));
}

/// Per round: cumulative ε, the mean group score, survivors and dropouts.
function roundSeries(t) {
  let cumulative = 0;
  return (t.round_log || []).map((r) => {
    cumulative += Number(r.epsilon || 0);
    const scores = r.outcome ? r.outcome.scores.map((s) => s.value / SCORE_SCALE) : [];
    const survivors = r.outcome ? r.outcome.survivors.length : 0;
    return {
      round: r.number,
      epsilon: cumulative / EPSILON_SCALE,
      score: scores.length ? scores.reduce((x, y) => x + y, 0) / scores.length : null,
      selected: r.selected.length,
      survivors,
      dropped: r.outcome ? r.selected.length - survivors : null,
      closed: !!r.outcome,
    };
  });
}

/// The chart of a task's rounds; `accuracy` (per round, from this node's re-verification of a
/// closed task) is drawn when given.
function roundChart(series, target, accuracy) {
  if (!window.uPlot || series.length === 0) return;
  if (window.explorer.chart) window.explorer.chart.destroy();
  target.replaceChildren();
  const data = [series.map((s) => s.round), series.map((s) => s.epsilon), series.map((s) => s.score)];
  const lines = [{ label: "round" }, { label: "cumulative ε", scale: "eps", stroke: "#2f6fde", width: 2 }, { label: "mean score", scale: "unit", stroke: "#12805c", width: 2 }];
  if (accuracy) {
    data.push(series.map((s) => accuracy.get(s.round) ?? null));
    lines.push({ label: "validation accuracy", scale: "unit", stroke: "#c4320a", width: 2 });
  }
  const width = Math.min(target.clientWidth || 900, 1100);
  window.explorer.chart = new window.uPlot({
    width, height: 260,
    scales: { x: { time: false }, eps: {}, unit: {} },
    axes: [{ label: "round" }, { scale: "eps", label: "cumulative ε" }, { scale: "unit", side: 1, label: accuracy ? "accuracy, mean score" : "mean group score", grid: { show: false } }],
    series: lines,
  }, data, target);
}

async function task(id) {
  const t = await api(`/v1/tasks/${id}`);
  const series = roundSeries(t);
  const chart = h("div", { id: "epsilon-chart", class: "chart", "data-rounds": series.length });
  const rewards = (t.history || []).filter((e) => e.event.type === "reward_paid");
  const upheld = (t.challenges || []).filter((c) => c.verdict === "upheld");
  show(
    h("h1", {}, `Task ${id}: ${t.purpose}`),
    kv([
      ["status", h("span", { id: "task-status" }, t.status)],
      ["creator", addr(t.creator)],
      ["coordinator", t.coordinator ? addr(t.coordinator) : "the creator"],
      ["rounds", `${series.filter((s) => s.closed).length} closed of ${t.rounds}`],
      ["privacy budget", `ε = ${eps(t.epsilon)}, δ = ${Number(t.delta) / 1e12}; spent ε = ${eps(t.epsilon_spent)}`],
      ["reward", `${tokens(t.reward)} (escrow now ${tokens(t.escrow)})`],
      ["datasets", h("span", {}, t.datasets.map((d, i) => [i ? ", " : "", a(`#/dataset/${d}`, d)]))],
      ["challenges", upheld.length ? h("span", { class: "bad" }, `${upheld.length} upheld: rounds ${upheld.map((c) => c.round).join(", ")} invalid`)
        : h("span", { class: "ok" }, `none upheld (${(t.challenges || []).length} filed)`)],
      ["re-verified by this node", h("span", { id: "verification" }, t.status === "closed" ? "checking…" : "once the task closes (its validation data is revealed then)")],
      t.final_model ? ["model", a(`#/model/${t.final_model}`, `model ${t.final_model}`)] : null,
    ]),
    h("h2", {}, "Rounds: cumulative ε, validation accuracy and mean group score"), chart,
    table(["#round", "#selected", "#survivors", "#dropouts", "#cumulative ε", "#mean score"],
      series.map((s) => h("tr", {}, num(s.round), num(s.selected), num(s.closed ? s.survivors : "open"), num(s.dropped ?? "–"),
        num(s.epsilon.toFixed(4)), num(s.score == null ? "–" : s.score.toFixed(4)))), { id: "rounds" }),
    h("h2", {}, `Rewards (${rewards.length})`),
    table(["dataset", "owner", "#amount"], rewards.map((e) => h("tr", {}, td(a(`#/dataset/${e.event.dataset}`, e.event.dataset)), td(addr(e.event.owner)), num(tokens(e.event.amount))))),
    h("h2", {}, "History"), historyTable(t.history));
  roundChart(series, chart);
  if (t.status === "closed") {
    const slot = document.getElementById("verification");
    const verdict = await tryApi(`/v1/tasks/${id}/verification`).catch((e) => ({ error: e.message }));
    if (!verdict || verdict.error) {
      slot.replaceChildren(h("span", { class: "bad" }, verdict ? verdict.error : "not available"));
    } else {
      const bad = verdict.failed_rounds || [];
      slot.replaceChildren(verdict.ok
        ? h("span", { class: "ok" }, "OK: every round re-summed, re-aggregated and re-scored from the ledger and the blobs")
        : h("span", { class: "bad" }, `FAILED in rounds ${bad.join(", ")}`));
      const accuracy = new Map(verdict.rounds.filter((r) => r.accuracy != null).map((r) => [r.round, r.accuracy]));
      if (document.body.contains(chart)) roundChart(series, chart, accuracy);
      chart.setAttribute("data-accuracy", accuracy.size);
    }
  }
  const stop = onBlock(async () => {
    if (!document.body.contains(chart)) return stop();
    const fresh = await tryApi(`/v1/tasks/${id}`);
    if (fresh && (fresh.round_log || []).length !== series.length) {
      stop();
      route();
    }
  });
}

function modelTable(list) {
  return table(["#id", "task", "parent", "hash", "metrics"],
    list.map((m) => h("tr", {}, num(a(`#/model/${m.id}`, m.id)), td(a(`#/task/${m.task}`, m.task)), td(m.parent ? a(`#/model/${m.parent}`, m.parent) : "–"),
      td(h("span", { class: "mono" }, short(m.model_hash))), td(m.metrics.map((x) => `${x.name} ${(x.value / 1e6).toFixed(4)}`).join(", ")))),
    { id: "models" });
}

async function models() {
  show(h("h1", {}, "Models"), modelTable(await api("/v1/models")));
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    if (document.querySelector(`script[src="${src}"]`)) return resolve();
    const s = h("script", { src });
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(s);
  });
}

/// The lineage of a model as graph elements: the model and its ancestors, each one's task, the
/// task's rounds, the datasets each round kept, and their owners.
async function lineageElements(id) {
  const nodes = new Map();
  const edges = [];
  const node = (key, label, kind, href) => { if (!nodes.has(key)) nodes.set(key, { data: { id: key, label, kind, href } }); };
  const edge = (from, to) => edges.push({ data: { id: `${from}->${to}`, source: from, target: to } });
  let current = Number(id);
  const seen = new Set();
  while (current && !seen.has(current)) {
    seen.add(current);
    const m = await api(`/v1/models/${current}`);
    const t = await api(`/v1/tasks/${m.task}`);
    node(`model:${m.id}`, `model ${m.id}`, "model", `#/model/${m.id}`);
    node(`task:${t.id}`, `task ${t.id}`, "task", `#/task/${t.id}`);
    edge(`task:${t.id}`, `model:${m.id}`);
    for (const r of t.round_log || []) {
      if (!r.outcome) continue;
      const rk = `round:${t.id}:${r.number}`;
      node(rk, `r${r.number}`, "round");
      edge(rk, `task:${t.id}`);
      for (const ds of r.outcome.survivors) {
        node(`dataset:${ds}`, `dataset ${ds}`, "dataset", `#/dataset/${ds}`);
        edge(`dataset:${ds}`, rk);
      }
    }
    if (m.parent) {
      node(`model:${m.parent}`, `model ${m.parent}`, "model", `#/model/${m.parent}`);
      edge(`model:${m.parent}`, `task:${t.id}`);
    }
    current = m.parent;
  }
  const datasetIds = [...nodes.keys()].filter((k) => k.startsWith("dataset:")).map((k) => k.slice(8));
  const all = await Promise.all(datasetIds.map((d) => api(`/v1/datasets/${d}`)));
  for (const d of all) {
    node(`owner:${d.owner}`, d.owner.slice(0, 6), "owner", `#/account/${d.owner}`);
    edge(`owner:${d.owner}`, `dataset:${d.id}`);
  }
  return [...nodes.values(), ...edges];
}

async function model(id) {
  const [m, offers] = await Promise.all([api(`/v1/models/${id}`), tryApi(`/v1/offers?model=${id}`)]);
  // Queries served: what the offers' channels claimed, at each offer's price. Royalties: the
  // royalty events in the histories of the datasets the offers pay.
  let served = 0n;
  let queries = 0n;
  const payees = new Set();
  for (const o of offers || []) {
    const channels = (await tryApi(`/v1/channels?offer=${o.id}`)) || [];
    for (const c of channels) {
      served += big(c.claimed);
      if (big(o.price_per_query) > 0n) queries += big(c.claimed) / big(o.price_per_query);
    }
    for (const c of o.contributors || []) payees.add(c.dataset);
  }
  let royalties = 0n;
  const histories = await Promise.all([...payees].map((d) => tryApi(`/v1/datasets/${d}`)));
  for (const d of histories.filter(Boolean)) {
    for (const e of d.history || []) {
      if (e.event.type === "royalty_paid" && e.event.model === Number(id)) royalties += big(e.event.amount);
    }
  }
  const graph = h("div", { id: "lineage" });
  show(
    h("h1", {}, `Model ${id}`),
    kv([
      ["hash", h("span", { class: "mono" }, m.model_hash)],
      ["owner", addr(m.owner)],
      ["task", a(`#/task/${m.task}`, `task ${m.task}`)],
      ["parent", m.parent ? a(`#/model/${m.parent}`, `model ${m.parent}`) : "none (trained from scratch)"],
      ["metrics", m.metrics.map((x) => `${x.name} ${(x.value / 1e6).toFixed(4)}`).join(", ") || "–"],
      ["queries paid (claimed)", h("span", { id: "queries" }, `${queries} (${tokens(served.toString())})`)],
      ["royalties paid", h("span", { id: "royalties" }, tokens(royalties.toString()))],
    ]),
    h("h2", {}, "Lineage: owners → datasets → rounds (r) → task → model"),
    h("p", { class: "muted" }, "Each dataset links to the rounds that kept its update; click a node to open it."), graph,
    h("h2", {}, `Offers (${(offers || []).length})`), offerTable(offers || []),
    h("h2", {}, "History"), historyTable(m.history));
  const [elements] = await Promise.all([lineageElements(id), loadScript("/explorer/vendor/cytoscape.min.js")]);
  const colors = { model: "#2f6fde", task: "#7a5af8", round: "#98a2b3", dataset: "#12805c", owner: "#f79009" };
  const cy = window.cytoscape({
    container: graph,
    elements,
    layout: { name: "preset" },
    minZoom: 0.2,
    maxZoom: 1.6,
    style: [
      { selector: "node", style: { label: "data(label)", "font-size": 10, "text-valign": "bottom", "text-margin-y": 3, "background-color": (n) => colors[n.data("kind")] || "#666", width: 14, height: 14 } },
      { selector: "edge", style: { width: 1, "line-color": "#d0d5dd", "target-arrow-shape": "triangle", "target-arrow-color": "#d0d5dd", "curve-style": "bezier", "arrow-scale": 0.6 } },
    ],
  });
  // Layered from the owners down to the model (breadthfirst from the owners as roots).
  cy.layout({ name: "breadthfirst", directed: true, roots: cy.nodes('[kind = "owner"]'), spacingFactor: 1.6, avoidOverlap: true, padding: 20 }).run();
  cy.on("tap", "node", (e) => { const href = e.target.data("href"); if (href) location.hash = href; });
  window.explorer.lineage = cy;
  graph.setAttribute("data-nodes", cy.nodes().length);
}

function offerTable(list) {
  return table(["#id", "model", "provider", "#price / query", "#bond", "#royalty", "status"],
    list.map((o) => h("tr", {}, num(a(`#/offer/${o.id}`, o.id)), td(a(`#/model/${o.model}`, o.model)), td(addr(o.provider)), num(o.price_per_query),
      num(tokens(o.bond)), num(`${o.royalty_bps / 100} %`), td(o.status))),
    { id: "offers" });
}

function channelTable(list) {
  return table(["#id", "offer", "payer", "#deposit", "#claimed", "#expiry", "status"],
    list.map((c) => h("tr", {}, num(c.id), td(a(`#/offer/${c.offer}`, c.offer)), td(addr(c.payer)), num(c.deposit), num(c.claimed), num(c.expiry_height), td(c.status))));
}

async function offers() {
  show(h("h1", {}, "Offers"), offerTable(await api("/v1/offers")));
}

async function offer(id) {
  const [o, channels] = await Promise.all([api(`/v1/offers/${id}`), tryApi(`/v1/channels?offer=${id}`)]);
  const disputes = (o.history || []).filter((e) => e.event.type.startsWith("dispute_"));
  show(
    h("h1", {}, `Offer ${id}`),
    kv([
      ["model", a(`#/model/${o.model}`, `model ${o.model}`)],
      ["provider", addr(o.provider)],
      ["endpoint", o.endpoint],
      ["price per query", `${o.price_per_query} base units`],
      ["bond", tokens(o.bond)],
      ["royalty to data owners", `${o.royalty_bps / 100} %`],
      ["status", o.status],
    ]),
    h("h2", {}, `Channels (${(channels || []).length})`), channelTable(channels || []),
    h("h2", {}, `Disputes (${disputes.length})`), disputes.length ? h("div", {}, disputes.map((e) => eventLine(e.event))) : h("p", { class: "muted" }, "none"),
    h("h2", {}, "History"), historyTable(o.history));
}

function tallyBar(part, whole) {
  const pct = whole > 0n ? Number((part * 10000n) / whole) / 100 : 0;
  return h("span", {}, h("span", { class: "bar" }, h("span", { style: `width:${pct}%` })), ` ${pct.toFixed(1)} %`);
}

async function proposals() {
  const [list, g] = await Promise.all([api("/v1/proposals"), tryApi("/v1/governance")]);
  show(
    h("h1", {}, "Governance"),
    g ? kv([["treasury", tokens(g.treasury_balance)], ["emitted", tokens(g.emitted)], ["emission pool", tokens(g.emission_pool)]]) : null,
    h("h2", {}, `Proposals (${list.length})`),
    table(["#id", "kind", "proposer", "status", "voted (of power)", "#blocks left"],
      list.map((p) => h("tr", {}, num(a(`#/proposal/${p.id}`, p.id)), td(p.kind), td(addr(p.proposer)), td(p.status),
        td(tallyBar(big(p.tally.yes) + big(p.tally.no) + big(p.tally.abstain) + big(p.tally.veto), big(p.tally.power))), num(p.blocks_left)))),
    g ? [h("h2", {}, "Block decisions"), table(["target", "blocked"], g.block_decisions.map((b) => h("tr", {}, td(b.target), td(b.blocked ? "blocked" : "lifted"))))] : null);
}

async function proposal(id) {
  const d = await api(`/v1/proposals/${id}`);
  const p = d.summary || d;
  const t = p.tally;
  const power = big(t.power);
  show(
    h("h1", {}, `Proposal ${id}: ${p.kind}`),
    kv([
      ["status", p.status],
      ["proposer", addr(p.proposer)],
      ["deposit", tokens(p.deposit)],
      ["voting", `heights ${p.start_height}–${p.end_height}${p.blocks_left ? ` (${p.blocks_left} blocks left)` : ""}`],
      ["yes", tallyBar(big(t.yes), power)],
      ["no", tallyBar(big(t.no), power)],
      ["abstain", tallyBar(big(t.abstain), power)],
      ["veto", tallyBar(big(t.veto), power)],
      ["outcome if it ended now", p.outcome],
      p.executable_from ? ["executable", `heights ${p.executable_from}–${p.executable_until}`] : null,
      p.executed_at ? ["executed at", a(`#/block/${p.executed_at}`, p.executed_at)] : null,
    ]),
    h("h2", {}, "What it does"), h("pre", {}, JSON.stringify(d.proposal, null, 2)),
    h("h2", {}, `Votes (${(d.votes || []).length})`),
    table(["voter", "choice", "#weight"], (d.votes || []).map((v) => h("tr", {}, td(addr(v.voter)), td(v.choice), num(tokens(v.weight))))));
}

async function search(q) {
  q = q.trim().toLowerCase();
  const found = [];
  if (/^\d+$/.test(q)) {
    const [b, t, d, m, o, p] = await Promise.all([tryApi(`/v1/blocks/${q}`), tryApi(`/v1/tasks/${q}`), tryApi(`/v1/datasets/${q}`),
      tryApi(`/v1/models/${q}`), tryApi(`/v1/offers/${q}`), tryApi(`/v1/proposals/${q}`)]);
    if (b) found.push(a(`#/block/${q}`, `block ${q}`));
    if (t) found.push(a(`#/task/${q}`, `task ${q}: ${t.purpose}`));
    if (d) found.push(a(`#/dataset/${q}`, `dataset ${q}`));
    if (m) found.push(a(`#/model/${q}`, `model ${q}`));
    if (o) found.push(a(`#/offer/${q}`, `offer ${q}`));
    if (p) found.push(a(`#/proposal/${q}`, `proposal ${q}`));
  } else if (/^[0-9a-f]{64}$/.test(q)) {
    const [txs, acc, models, datasets] = await Promise.all([tryApi(`/v1/txs/${q}`), tryApi(`/v1/accounts/${q}`), api("/v1/models"), api("/v1/datasets")]);
    if (txs && txs.status !== "unknown") found.push(a(`#/tx/${q}`, `transaction ${short(q)} (${txs.status})`));
    if (acc && (big(acc.account.balance) > 0n || acc.account.nonce > 0 || big(acc.account.staked) > 0n)) found.push(a(`#/account/${q}`, `account ${short(q)}`));
    for (const m of models.filter((x) => x.model_hash === q)) found.push(a(`#/model/${m.id}`, `model ${m.id} (its hash)`));
    for (const d of datasets.filter((x) => x.commitment === q)) found.push(a(`#/dataset/${d.id}`, `dataset ${d.id} (its commitment)`));
  }
  show(h("h1", {}, `Search: ${q}`), found.length ? h("ul", { id: "results" }, found.map((f) => h("li", {}, f))) : h("p", { class: "muted" }, "nothing found: give a height or id, or a 64-hex address, transaction id or hash"));
}

// ---- routing ----

const ROUTES = [
  [/^$/, overview],
  [/^block\/(\d+)$/, block],
  [/^tx\/([0-9a-f]{64})$/, tx],
  [/^account\/([0-9a-f]{64})$/, account],
  [/^datasets$/, datasets],
  [/^dataset\/(\d+)$/, dataset],
  [/^tasks$/, tasks],
  [/^task\/(\d+)$/, task],
  [/^models$/, models],
  [/^model\/(\d+)$/, model],
  [/^offers$/, offers],
  [/^offer\/(\d+)$/, offer],
  [/^proposals$/, proposals],
  [/^proposal\/(\d+)$/, proposal],
  [/^search\/(.+)$/, (q) => search(decodeURIComponent(q))],
];

async function route() {
  const path = location.hash.replace(/^#\/?/, "");
  window.explorer.page = null;
  for (const [re, page] of ROUTES) {
    const m = path.match(re);
    if (!m) continue;
    try {
      await page(...m.slice(1));
      window.explorer.page = path || "overview";
    } catch (e) {
      show(h("h1", {}, "Not found"), h("p", { class: "bad" }, e.message));
      window.explorer.page = "error";
    }
    return;
  }
  show(h("h1", {}, "Not found"), h("p", {}, "No such page. ", a("#/", "Back to the overview")));
  window.explorer.page = "error";
}

document.getElementById("search").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = document.getElementById("q").value;
  if (q.trim()) location.hash = `#/search/${encodeURIComponent(q.trim())}`;
});
window.addEventListener("hashchange", route);
connectLive();
route();
