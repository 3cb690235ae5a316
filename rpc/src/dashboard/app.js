// The sidechaind dashboard: reads this node's read-only JSON-RPC endpoint and its subscribenewblocks
// WebSocket, and redraws. No framework and no build step: the file is served as written. Every value from
// the node is put on the page with textContent, never as HTML.
"use strict";

const RPC_PATH = "/dashboard/rpc";
const HISTORY = 30; // blocks in the chart, the rounds row and the commit grid
const REFRESH_MIN_MS = 2000; // at most one refresh (one batched HTTP request) per 2 s
const IDLE_REFRESH_MS = 5000; // and at least one per 5 s
const SLOW_EVERY = 5; // the reserve proof and evidence on every 5th refresh
const MAX_SEARCH = 100;

const stats = { started: Date.now(), httpRequests: 0, calls: 0, wsMessages: 0 };
window.dashboardStats = stats;

const state = {
  info: null, // getblockchaininfo
  validators: [],
  blocks: new Map(), // height -> {height, hash, time_ms, round, signers, arrival_ms}
  tip: 0,
  pegouts: [],
  tracked: new Map(), // outpoint -> last getpegstatus / in-flight entry
  view: null, // getbitcoinview
  refreshes: 0,
  lastRefresh: 0,
  refreshTimer: null,
  ws: null,
  wsLive: false,
  rpcDown: false,
};

// ---- JSON-RPC -------------------------------------------------------------------------------------------
class RpcError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

let nextId = 1;
async function post(body) {
  stats.httpRequests += 1;
  const resp = await fetch(RPC_PATH, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!resp.ok) throw new RpcError(resp.status, "HTTP " + resp.status + ": " + (await resp.text()).slice(0, 200));
  return resp.json();
}

async function rpc(method, params = []) {
  stats.calls += 1;
  const r = await post({ jsonrpc: "2.0", id: nextId++, method, params });
  if (r.error) throw new RpcError(r.error.code, r.error.message);
  return r.result;
}

// Several calls in one HTTP request; each answer is a result or an RpcError.
async function batch(calls) {
  if (calls.length === 0) return [];
  stats.calls += calls.length;
  const first = nextId;
  const body = calls.map(([method, params], i) => ({ jsonrpc: "2.0", id: first + i, method, params: params || [] }));
  nextId += calls.length;
  const replies = await post(body);
  const byId = new Map((Array.isArray(replies) ? replies : [replies]).map((r) => [r.id, r]));
  return calls.map((_, i) => {
    const r = byId.get(first + i);
    if (!r) return new RpcError(-1, "no answer");
    return r.error ? new RpcError(r.error.code, r.error.message) : r.result;
  });
}

// ---- formatting -----------------------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "title") e.title = v;
    else if (k === "height") e.style.height = v; // through CSSOM: the CSP forbids style attributes
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}
function setText(id, text, cls) {
  const e = $(id);
  e.textContent = text;
  if (cls !== undefined) e.className = cls;
}
function btc(sat) {
  if (sat === null || sat === undefined) return "–";
  const neg = sat < 0;
  const s = Math.abs(sat);
  return (neg ? "-" : "") + Math.floor(s / 1e8) + "." + String(s % 1e8).padStart(8, "0") + " BTC";
}
const short = (h) => (h && h.length > 20 ? h.slice(0, 10) + "…" + h.slice(-6) : h || "–");
function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 90 ? s + " s ago" : Math.round(s / 60) + " min ago";
}
function fillTable(id, rows) {
  const body = $(id).tBodies[0];
  body.replaceChildren(...rows);
}

// ---- banners --------------------------------------------------------------------------------------------
function renderBanners() {
  const list = [];
  const i = state.info;
  if (state.rpcDown) list.push(["bad", "Cannot reach this node's RPC: the figures below are the last ones it sent."]);
  if (!state.wsLive && !state.rpcDown) list.push(["", "Live block updates are not connected: polling every few seconds while reconnecting."]);
  if (i && i.syncing) list.push(["", "This node is syncing: it is catching up with its peers (height " + i.height + "), so figures may be behind."]);
  if (i && i.peg_status === "halted")
    list.push(["bad", "Peg halted: validators reported a Bitcoin reorg deeper than the required confirmations. No mints and no peg-outs until 2f+1 validators vote resumepeg. Transfers go on."]);
  if (state.view && state.view.bitcoind === "unreachable")
    list.push(["bad", "This node's bitcoind is unreachable: it cannot check BTC anchors or deposits, so it votes against anchor moves and peg-ins wait. Transfers go on."]);
  if (i && i.signing && i.signing.paused)
    list.push(["bad", "Peg signing is paused on this node by its operator (since " + new Date(i.signing.paused_since_ms).toISOString() + "): it releases no signature share until resumesigning. Consensus goes on."]);
  if (i && i.signing && i.signing.refused.length)
    list.push(["bad", "This node refuses to sign " + i.signing.refused.map((r) => "batch " + r.batch + " (" + r.kind + ")").join(", ") + ": the transaction does not match its committed state. Operators must find out why."]);
  if (i && i.peg && !i.peg.reserve_ok) list.push(["bad", "Reserve check failed: the sidechain owes more BTC than the federation holds."]);
  for (const a of (i && i.alerts) || []) list.push(["bad", "Alert (" + a.kind.replaceAll("_", " ") + "): " + a.description]);
  $("banners").replaceChildren(...list.map(([cls, text]) => el("div", { class: "banner " + cls, "data-banner": "" }, text)));
}

function setLive(s, text) {
  const e = $("live");
  e.dataset.state = s;
  e.textContent = text;
}

// ---- blocks ---------------------------------------------------------------------------------------------
function recordBlock(b, arrivalMs) {
  const old = state.blocks.get(b.height) || {};
  state.blocks.set(b.height, {
    height: b.height,
    hash: b.hash,
    time_ms: b.time_ms,
    round: b.commit ? b.commit.round : old.round,
    signers: b.commit ? b.commit.signatures.map((s) => s.validator) : old.signers,
    arrival_ms: old.arrival_ms || arrivalMs,
  });
  for (const h of state.blocks.keys()) if (h <= state.tip - HISTORY - 5) state.blocks.delete(h);
}

function lastHeights() {
  const hs = [];
  for (let h = Math.max(1, state.tip - HISTORY + 1); h <= state.tip; h++) hs.push(h);
  return hs;
}

function renderChain() {
  const i = state.info;
  if (!i) return;
  setText("height", String(state.tip));
  setText("chain-id", i.chain_id);
  const tip = state.blocks.get(state.tip);
  setText("tip-hash", i.best_block_hash);
  setText("tip-age", tip ? ago(tip.time_ms) : ago(i.time_ms));
  setText("node-kind", (i.validator ? "validator" : "full node") + (i.syncing ? ", syncing" : ", in sync"));
  const bars = [];
  const finality = [];
  const cells = [];
  for (const h of lastHeights()) {
    const b = state.blocks.get(h);
    if (!b) continue;
    const next = state.blocks.get(h + 1);
    let ms = null;
    let live = false;
    if (b.arrival_ms) {
      ms = b.arrival_ms - b.time_ms;
      live = true;
    } else if (next) ms = next.time_ms - b.time_ms;
    if (ms !== null) {
      ms = Math.max(0, ms);
      finality.push(ms);
      bars.push([h, ms, live]);
    }
    if (b.round !== undefined) {
      cells.push(el("span", { class: b.round > 0 ? "slow" : "", title: "height " + h + ": round " + b.round }, b.round));
    }
  }
  const max = Math.max(1, ...bars.map(([, ms]) => ms));
  $("finality-chart").replaceChildren(
    ...bars.map(([h, ms, live]) =>
      el("div", { class: "bar" + (live ? "" : " history"), height: Math.max(2, (100 * ms) / max) + "%", title: "height " + h + ": " + ms + " ms" }),
    ),
  );
  if (finality.length) {
    const sorted = [...finality].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    setText("finality-summary", "last " + finality.length + " blocks: median " + median + " ms, max " + sorted[sorted.length - 1] + " ms");
  }
  $("rounds").replaceChildren(...cells);
}

function renderValidators() {
  const heights = lastHeights().slice(-10);
  const last = state.blocks.get(state.tip);
  const missing = [];
  const silent = [];
  const rows = state.validators.map((v) => {
    const dots = heights.map((h) => {
      const b = state.blocks.get(h);
      const signed = b && b.signers && b.signers.includes(v.index);
      return el("span", { class: "sig" + (signed ? "" : " missing"), title: "height " + h + (signed ? ": signed" : ": missing") });
    });
    const inLast = last && last.signers ? last.signers.includes(v.index) : null;
    if (inLast === false) missing.push(v.index);
    if (heights.length >= 5 && heights.every((h) => { const b = state.blocks.get(h); return b && b.signers && !b.signers.includes(v.index); }))
      silent.push(v.index);
    return el(
      "tr",
      { "data-validator": v.index },
      el("td", {}, v.index),
      el("td", { class: "mono", title: v.consensus_key }, short(v.consensus_key)),
      el("td", {}, v.power),
      el("td", {}, ...dots),
      el("td", { class: silent.includes(v.index) ? "bad" : inLast === false ? "warn" : "ok" }, inLast === null ? "–" : inLast ? "signed" : "missing"),
    );
  });
  fillTable("validators", rows);
  const n = state.validators.length;
  const f = Math.floor((n - 1) / 3);
  const quorum = n - f;
  let text = n + " validators (tolerates " + f + " faulty; a commit certificate carries " + quorum + " signatures). ";
  if (silent.length) text += "In none of the last " + heights.length + " commits: " + silent.join(", ") + " (offline or cut off?).";
  else if (missing.length) text += "Not in the last certificate: " + missing.join(", ") + " (normal while the others reach " + quorum + " first).";
  else text += "Everyone signed the last commit.";
  setText("validators-summary", text, silent.length ? "bad" : "ok");
}

// ---- refresh --------------------------------------------------------------------------------------------
function scheduleRefresh() {
  if (state.refreshTimer) return;
  const wait = Math.max(0, state.lastRefresh + REFRESH_MIN_MS - Date.now());
  state.refreshTimer = setTimeout(() => {
    state.refreshTimer = null;
    refresh().catch(onRpcFailure);
  }, wait);
}

function onRpcFailure(e) {
  state.rpcDown = true;
  setLive("down", "node unreachable");
  renderBanners();
  setText("stats", "last error: " + e.message);
}

async function refresh() {
  state.lastRefresh = Date.now();
  state.refreshes += 1;
  const slow = state.refreshes % SLOW_EVERY === 1;
  const calls = [
    ["getblockchaininfo"],
    ["getbitcoinview"],
    ["getpeerinfo"],
    ["listpegouts", [20, 0]],
    ["getfederationinfo"],
    ["getmempoolinfo"],
    ["getconsensusstate"],
  ];
  if (slow) calls.push(["getreserveproof"], ["getevidence"]);
  if (state.validators.length === 0) calls.push(["getvalidators"]);
  const replies = await batch(calls);
  const [info, view, peers, pegouts, fed, mempool, cons] = replies;
  const rest = replies.slice(7);
  if (info instanceof Error) throw info;
  state.rpcDown = false;
  state.info = info;
  state.tip = Math.max(state.tip, info.height);
  if (!(view instanceof Error)) state.view = view;
  if (slow) {
    const [proof, evidence] = rest;
    if (!(proof instanceof Error)) renderReserveProof(proof);
    if (!(evidence instanceof Error)) renderEvidence(evidence);
  }
  const vals = rest[slow ? 2 : 0];
  if (vals && !(vals instanceof Error)) state.validators = vals;

  const missingBlocks = lastHeights().filter((h) => !state.blocks.has(h) || state.blocks.get(h).round === undefined);
  const tracked = [...state.tracked.values()].filter((p) => p.stage !== "minted" && p.stage !== "below_minimum").slice(0, 10);
  const second = [
    ...missingBlocks.slice(-HISTORY).map((h) => ["getblock", [h, 1]]),
    ...tracked.map((p) => ["getpegstatus", [p.outpoint]]),
  ];
  const more = await batch(second);
  more.slice(0, missingBlocks.length).forEach((b) => {
    if (!(b instanceof Error)) recordBlock(b, null);
  });
  more.slice(missingBlocks.length).forEach((s) => {
    if (!(s instanceof Error)) trackPegin(s.outpoint, { ...s, source: "status" });
  });
  if (!(view instanceof Error)) for (const d of view.deposits) trackPegin(d.outpoint, { ...d, stage: "seen", source: "view" });
  if (!(pegouts instanceof Error)) state.pegouts = pegouts;

  renderChain();
  renderValidators();
  if (!(peers instanceof Error)) renderPeers(peers);
  renderBitcoin(info, state.view, fed instanceof Error ? null : fed);
  if (!(fed instanceof Error)) renderFederation(fed);
  renderPegins();
  renderPegouts();
  if (!(mempool instanceof Error)) setText("mempool", mempool.size + " txs, " + mempool.bytes + " bytes");
  if (!(cons instanceof Error)) setText("consensus", "deciding height " + cons.height + ", round " + cons.round + ", " + cons.step);
  if (!state.wsLive) setLive("polling", "polling");
  renderBanners();
  const secs = (Date.now() - stats.started) / 1000;
  setText("stats", "This page: " + stats.httpRequests + " HTTP requests, " + stats.calls + " calls in " + Math.round(secs) + " s.");
}

function trackPegin(outpoint, entry) {
  const old = state.tracked.get(outpoint) || {};
  state.tracked.set(outpoint, { ...old, ...entry, outpoint });
}

function renderPeers(peers) {
  setText("peer-count", "(" + peers.length + " connected)");
  fillTable(
    "peers",
    peers.map((p) =>
      el("tr", {}, el("td", { class: "mono", title: p.peer_id }, short(p.peer_id)), el("td", { class: "mono" }, p.addr),
        el("td", {}, p.validator_index ?? "–"), el("td", {}, p.height ?? "–"), el("td", { class: p.score < 0 ? "bad" : "" }, p.score)),
    ),
  );
}

function renderEvidence(evidence) {
  $("evidence").replaceChildren(
    ...(evidence.length
      ? [el("h3", {}, "Equivocation evidence"), ...evidence.map((e) => el("div", { class: "bad" }, "validator " + e.offender + " signed two " + e.kind + " at height " + e.height + ", round " + e.round))]
      : []),
  );
}

function renderBitcoin(info, view, fed) {
  setText("anchor", "height " + info.btc_anchor.height + " · " + short(info.btc_anchor.hash));
  if (view) {
    const text = { none: "none (a full node does not watch Bitcoin)", unreachable: "unreachable", ok: "ok, best height " + view.best_height }[view.bitcoind];
    setText("bitcoind", text, view.bitcoind === "unreachable" ? "bad" : "ok");
    const n = view.confirmations_required;
    if (view.lag_blocks === null) setText("lag", "–");
    else
      setText("lag", view.lag_blocks + " blocks ahead of the anchor (" + n + " confirmations needed, so about " + (n - 1) + " is normal)",
        view.lag_blocks > 2 * n + 2 ? "warn" : "");
  }
  setText("peg-status", info.peg_status === "halted" ? "HALTED" : "active", info.peg_status === "halted" ? "bad" : "ok");
  const sg = info.signing;
  if (sg) {
    const refusing = sg.refused.map((r) => "refusing batch " + r.batch + ": " + r.reason).join("; ");
    const text = (sg.paused ? "PAUSED by the operator" : "active") + (refusing ? " · " + refusing : "") +
      (sg.refusals ? " · " + sg.refusals + " refused since start" : "");
    setText("signing", text, sg.paused || sg.refused.length ? "bad" : "ok");
  }
  const p = info.peg;
  setText("btc-held", btc(p.btc_held_sat));
  setText("supply", btc(p.supply_sat));
  let unpaid = null;
  if (fed) {
    unpaid = fed.peg_totals.unpaid_burns_sat;
    setText("unpaid", btc(unpaid));
    setText("multisig", fed.threshold + " of " + fed.keys + " (" + fed.network + ")");
  }
  if (unpaid !== null) {
    const owed = p.supply_sat + unpaid - p.genesis_supply_sat;
    const margin = p.btc_held_sat - owed;
    const genesis = p.genesis_supply_sat > 0 ? " (leaving out the " + btc(p.genesis_supply_sat) + " the genesis created, which no BTC backs: test networks only)" : "";
    const words = p.reserve_ok
      ? "Fully backed: supply + unpaid burns = " + btc(owed) + genesis + " ≤ " + btc(p.btc_held_sat) + " held by the federation (margin " + btc(margin) + ")."
      : "NOT BACKED: supply + unpaid burns = " + btc(owed) + genesis + " > " + btc(p.btc_held_sat) + " held by the federation (short by " + btc(-margin) + ").";
    setText("reserve", words, "reserve" + (p.reserve_ok ? "" : " bad"));
  }
}

function renderFederation(fed) {
  setText("fed-epoch", String(fed.epoch));
  setText("fed-since", "since height " + fed.epoch_from_height);
  setText("fed-validators", String(fed.validators.length));
  setText("fed-threshold", fed.threshold + "-of-" + fed.keys);
  setText("fed-address", fed.address);
  const p = fed.pending;
  setText("fed-pending", p ? "epoch " + p.epoch + " from height " + p.activation_height + ": " + p.validators.length + " validators, wallet " + p.peg_threshold + "-of-" + p.validators.length : "none", p ? "warn" : "");
  const e = fed.emergency;
  setText("fed-emergency", e ? e.threshold + "-of-" + e.keys.length + " emergency keys, after " + e.delay_blocks + " BTC blocks (coins refreshed " + e.refresh_margin_blocks + " blocks before)" : "none");
  const earlier = fed.wallets.filter((w) => !w.in_force);
  setText("fed-sweep", fed.sweep_complete ? "complete" : "in progress (" + earlier.length + (earlier.length === 1 ? " earlier wallet)" : " earlier wallets)"), fed.sweep_complete ? "ok" : "warn");
  const rows = earlier.map((w) =>
    el(
      "tr",
      { "data-epoch": w.epoch },
      el("td", {}, w.epoch),
      el("td", {}, w.utxos),
      el("td", {}, btc(w.amount_sat)),
      el("td", {}, ...(w.batches.length ? w.batches.map((b) => el("div", { title: b.btc_txid }, b.kind + " #" + b.id + " → epoch " + b.to_epoch + ", " + b.signatures + " signatures")) : ["–"])),
    ),
  );
  fillTable("fed-wallets", rows.length ? rows : [el("tr", {}, el("td", { colspan: 4, class: "muted" }, "none: every coin is in the wallet in force"))]);
}

function renderReserveProof(proof) {
  const spendable = proof.utxos.filter((u) => u.spendable).length;
  setText("utxos", proof.utxos.length + (proof.utxos.length === 1 ? " output (" : " outputs (") + spendable + " spendable, " + (proof.utxos.length - spendable) + " spent by batches in flight)");
  setText("fee-pool", btc(proof.fee_pool_sat));
}

function renderPegins() {
  const view = state.view;
  const n = view ? view.confirmations_required : "N";
  if (view && view.bitcoind === "none")
    setText("pegins-note", "This node has no bitcoind: deposits appear here once minted. A validator's dashboard shows them while they gather confirmations.");
  else setText("pegins-note", "Deposits this node's bitcoind sees, until minted after " + n + " confirmations.");
  const inFlight = new Set(view ? view.deposits.map((d) => d.outpoint) : []);
  const rows = [...state.tracked.values()].reverse().map((p) => {
    let stage = p.stage;
    let label;
    if (inFlight.has(p.outpoint) || (stage === "seen" && p.source === "view")) {
      const d = view && view.deposits.find((x) => x.outpoint === p.outpoint);
      const k = d ? d.confirmations : p.confirmations;
      stage = "seen";
      label = "seen " + (k ?? "?") + "/" + (p.confirmations_required || n);
    } else if (stage === "minted") label = "minted at " + p.minted_at;
    else label = (stage || "unknown").replace("_", " ");
    return el(
      "tr",
      { "data-outpoint": p.outpoint },
      el("td", { class: "mono" }, p.outpoint),
      el("td", { class: "mono", title: p.recipient || "" }, short(p.recipient)),
      el("td", {}, btc(p.amount_sat)),
      el("td", {}, p.btc_height ?? "–"),
      el("td", { class: "stage", "data-stage": stage }, label),
    );
  });
  fillTable("pegins", rows.length ? rows : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no peg-in seen since this page was opened"))]);
}

function renderPegouts() {
  const rows = state.pegouts.map((p) =>
    el(
      "tr",
      { "data-burn": p.burn_txid },
      el("td", { class: "mono", title: p.burn_txid }, short(p.burn_txid)),
      el("td", { class: "mono" }, p.btc_address || "(non-address script)"),
      el("td", {}, btc(p.amount_sat)),
      el("td", {}, p.burned_at),
      el(
        "td",
        { class: "stage", "data-stage": p.stage, "data-wait": p.wait ? p.wait.reason : "", title: p.wait ? p.wait.description : "" },
        p.wait && p.wait.reason !== "next_batch" ? p.stage + " · waits: " + p.wait.reason.replaceAll("_", " ") : p.stage,
      ),
      el("td", {}, p.batch ? p.batch.signatures : "–"),
      el("td", { class: "mono", title: p.batch ? p.batch.btc_txid : "" }, p.batch ? short(p.batch.btc_txid) : "–"),
    ),
  );
  fillTable("pegouts", rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, "no peg-outs yet"))]);
}

// ---- live blocks ----------------------------------------------------------------------------------------
function connectWs() {
  const url = (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + RPC_PATH;
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => {
    stats.calls += 1;
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: 0, method: "subscribenewblocks", params: [] }));
  };
  ws.onmessage = (ev) => {
    stats.wsMessages += 1;
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (_) {
      return;
    }
    if (msg.id === 0 && msg.result !== undefined) {
      state.wsLive = true;
      setLive("live", "live");
      renderBanners();
    } else if (msg.method === "subscribenewblocks" && msg.params && msg.params.result) {
      const b = msg.params.result;
      state.tip = Math.max(state.tip, b.height);
      recordBlock(b, Date.now());
      setText("height", String(state.tip));
      scheduleRefresh();
    }
  };
  ws.onclose = () => {
    state.wsLive = false;
    if (!state.rpcDown) setLive("polling", "reconnecting");
    renderBanners();
    setTimeout(connectWs, 3000);
  };
}

// ---- search ---------------------------------------------------------------------------------------------
function showError(text) {
  const e = $("search-error");
  e.textContent = text;
  e.hidden = false;
}

// One listtransactions entry as a line: where, what, how much.
function historyLine(e) {
  const what = {
    sent: () => "sent " + btc(e.amount_sat) + " to " + short(e.to) + " (fee " + btc(e.fee_sat) + ")",
    received: () => "received " + btc(e.amount_sat) + " from " + short(e.from),
    registered: () => "registered its deposit address (fee " + btc(e.fee_sat) + ")",
    burned: () => "burned " + btc(e.amount_sat) + " (burn " + e.burn_id + ") to " + (e.btc_address || "a non-address script"),
    minted: () => "minted " + btc(e.credited_sat) + " from deposit " + short(e.btc_outpoint) + " (peg-in fee " + btc(e.fee_sat) + ")",
    paid_out: () => "burn " + e.burn_id + " paid " + btc(e.amount_sat) + " in BTC tx " + short(e.btc_txid),
  }[e.kind];
  return el("li", { class: "mono" }, "height " + e.height + " · " + (what ? what() : e.kind) + " · tx " + short(e.txid));
}

function showDetail(title, pairs, extra) {
  $("search-error").hidden = true;
  setText("detail-title", title);
  const dl = el("dl", { class: "kv" });
  for (const [k, v] of pairs) dl.append(el("dt", {}, k), el("dd", { class: typeof v === "string" && v.length >= 40 ? "mono" : "" }, v ?? "–"));
  $("detail-body").replaceChildren(dl, ...(extra || []));
  $("detail").hidden = false;
}

function blockDetail(b) {
  const txs = (b.tx || []).map((t) => el("li", { class: "mono" }, typeof t === "string" ? t : t.txid + " · " + t.kind.type));
  showDetail("Block " + b.height, [
    ["height", String(b.height)],
    ["hash", b.hash],
    ["time", new Date(b.time_ms).toISOString()],
    ["confirmations", String(b.confirmations)],
    ["proposer", "validator " + b.proposer],
    ["decided in round", String(b.commit.round)],
    ["signed by", b.commit.signatures.map((s) => s.validator).join(", ")],
    ["BTC anchor", b.btc_anchor.height + " · " + b.btc_anchor.hash],
    ["state root", b.state_root],
    ["transactions", String(b.tx_count)],
  ], txs.length ? [el("ul", {}, ...txs)] : []);
}

function txDetail(t) {
  const kind = t.tx.kind;
  const pairs = [["txid", t.tx.txid], ["status", t.status], ["block", t.height ? t.height + " · " + t.block_hash : "in the mempool"], ["type", kind.type]];
  if (t.tx.from) pairs.push(["from", t.tx.from]);
  for (const [k, v] of Object.entries(kind)) if (k !== "type") pairs.push([k.replace(/_/g, " "), String(v)]);
  pairs.push(["fee", btc(t.tx.fee_sat)]);
  showDetail("Transaction", pairs);
}

function pegoutDetail(p) {
  showDetail("Peg-out", [
    ["burn txid", p.burn_txid], ["owner", p.owner], ["to", p.btc_address || "(non-address script)"], ["amount", btc(p.amount_sat)],
    ["stage", p.stage], ["burned at", String(p.burned_at)],
    ["waiting", p.wait ? p.wait.description : "–"],
    ["batch", p.batch ? "#" + p.batch.id + ", " + p.batch.signatures + " signatures, fee " + btc(p.batch.fee_sat) : "–"],
    ["BTC txid", p.batch ? p.batch.btc_txid : "–"],
    ["paid in", p.paid_in ? p.paid_in.btc_height + " · " + p.paid_in.btc_block_hash : "–"],
  ]);
}

function peginDetail(s) {
  showDetail("Peg-in " + s.outpoint, [
    ["stage", s.stage.replace("_", " ")], ["recipient", s.recipient], ["amount", btc(s.amount_sat)],
    ["BTC block", s.btc_height !== null && s.btc_height !== undefined ? s.btc_height + " · " + s.btc_block_hash : "–"],
    ["confirmations", s.confirmations !== null && s.confirmations !== undefined ? s.confirmations + "/" + s.confirmations_required : "–"],
    ["minted at", s.minted_at ?? "–"], ["credited", btc(s.credited_sat)], ["reason", s.reason ?? "–"],
  ]);
}

const notFound = (e) => e instanceof RpcError && (e.code === -5 || e.code === -8);

async function search(raw) {
  const q = raw.trim();
  $("detail").hidden = true;
  if (q === "") return showError("Type a block height, a block hash, a transaction id, an account, a BTC txid or a BTC outpoint (txid:vout).");
  if (q.length > MAX_SEARCH)
    return showError("Too long (" + q.length + " characters): a height, a 64-digit hash or txid:vout is at most " + MAX_SEARCH + " characters.");
  if (/^[0-9]+$/.test(q)) {
    const h = Number(q);
    if (!Number.isSafeInteger(h) || h > state.tip) return showError("No block at height " + q + ": the tip is at height " + state.tip + ".");
    if (h === 0) return showError("Height 0 is the genesis, not a block: blocks start at height 1.");
    return blockDetail(await rpc("getblock", [h, 2]));
  }
  if (/^[0-9a-fA-F]{64}:[0-9]{1,10}$/.test(q)) {
    const s = await rpc("getpegstatus", [q.toLowerCase()]);
    if (s.stage === "unknown") return showError("This node knows no deposit at BTC outpoint " + q + " (it shows deposits to registered addresses once its bitcoind sees them).");
    return peginDetail(s);
  }
  if (/^[0-9a-fA-F]{64}$/.test(q)) {
    const h = q.toLowerCase();
    const [block, tx, burn, account, history] = await batch([
      ["getblock", [h, 2]], ["gettransaction", [h]], ["getpegoutstatus", [h]], ["getaccount", [h]], ["listtransactions", [h, 20, 0]],
    ]);
    if (!(block instanceof Error)) return blockDetail(block);
    if (!(tx instanceof Error)) return txDetail(tx);
    if (!(burn instanceof Error)) return pegoutDetail(burn);
    // A BTC txid: a peg-out batch or a deposit this page knows.
    const batchOf = state.pegouts.find((p) => p.batch && p.batch.btc_txid === h);
    if (batchOf) return pegoutDetail(batchOf);
    const dep = [...state.tracked.keys()].find((o) => o.startsWith(h + ":"));
    if (dep) return peginDetail(await rpc("getpegstatus", [dep]));
    // A node without the history index answers listtransactions with an error: the account shows without it.
    const entries = history instanceof Error ? [] : history;
    if (!(account instanceof Error) && (account.nonce > 0 || account.balance_sat > 0 || entries.length > 0))
      return showDetail(
        "Account",
        [["account", account.account], ["balance", btc(account.balance_sat)], ["nonce", String(account.nonce)]],
        entries.length ? [el("h3", {}, "Latest transactions"), el("ul", {}, ...entries.map(historyLine))] : [],
      );
    for (const e of [block, tx, burn]) if (!notFound(e)) throw e;
    return showError("Nothing found for " + short(h) + ": no block, transaction, burn, BTC peg transaction or account with coins has this hash.");
  }
  return showError("Not something to search for: \"" + q.slice(0, 40) + "\" is not a block height (a number), a 64-digit hex hash or account, or a BTC outpoint (txid:vout).");
}

// ---- start ----------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    search($("search-input").value).catch((e) => showError("The node could not answer: " + e.message));
  });
  $("detail-close").addEventListener("click", () => ($("detail").hidden = true));
  refresh().catch(onRpcFailure);
  connectWs();
  setInterval(() => {
    if (Date.now() - state.lastRefresh >= IDLE_REFRESH_MS) scheduleRefresh();
    if (state.info) setText("tip-age", ago((state.blocks.get(state.tip) || state.info).time_ms));
  }, 1000);
});
