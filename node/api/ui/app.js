// The operator's page: it reads the node's local API with the API's token,
// every few seconds, and draws what it reads. No framework, no build step.
"use strict";

const TOKEN_KEY = "cuivre-api-token";
const REFRESH_MS = 3000;
const PROVIDERS_EVERY = 5; // refreshes: reading every provider's record costs the node more

let token = sessionStorage.getItem(TOKEN_KEY) || "";
let openJob = "";
let tick = 0;

// The link `cuivre ui` prints carries the token in the fragment, which never
// reaches a server; keep it for this tab and take it out of the address bar.
function takeTokenFromHash() {
  const m = location.hash.match(/token=([0-9a-f]+)/);
  if (m) {
    token = m[1];
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname);
  }
}

class Unauthorized extends Error {}

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token } });
  if (r.status === 401) throw new Unauthorized("the token was refused: it changes each time the node starts");
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

// el builds an element; strings become text nodes, never markup.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function fill(id, ...children) {
  const nodes = children.flat(Infinity).filter((c) => c !== null && c !== undefined);
  document.getElementById(id).replaceChildren(...nodes);
}

// ---- units ----

function short(id) {
  return id ? "…" + id.slice(-8) : "";
}

function vcpu(millis) {
  return (millis / 1000).toLocaleString(undefined, { maximumFractionDigits: 2 }) + " vCPU";
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return n.toLocaleString(undefined, { maximumFractionDigits: 1 }) + " " + units[i];
}

// money writes nano-units of a currency: cents and the two decimals a
// tariff has, or three significant digits below a cent, where a short run's
// bill is.
function money(nanos, currency) {
  const v = Number(nanos) / 1e9;
  const f = v === 0 || v >= 0.01 ? { minimumFractionDigits: 2, maximumFractionDigits: 4 } : { maximumSignificantDigits: 3 };
  return v.toLocaleString(undefined, f) + " " + currency;
}

function ago(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 90) return Math.round(s) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function count(n, noun) {
  return n + " " + noun + (n === 1 ? "" : "s");
}

function stateCell(s) {
  return el("td", { class: "state-" + s }, s);
}

// ---- sections ----

function renderNode(id, st) {
  fill("node-id", id.id);
  const reach = document.getElementById("reach");
  reach.textContent = st.reach.reachability || "unknown";
  reach.className = "badge " + (st.reach.reachability || "");
  const facts = [
    ["peer ID", id.id],
    ["role", st.role],
    ["reachability", st.reach.reachability || "unknown"],
    ["announced addresses", (st.reach.announced || []).join("\n") || "none"],
    ["observed addresses", (st.reach.observed || []).join("\n") || "none yet"],
    ["relay addresses", (st.reach.relayed || []).join("\n") || "none"],
    ["peers", st.peers + " connected, " + st.dht_peers + " in the DHT's routing table"],
    ["draining", st.draining ? "yes: no new offers" : "no"],
  ];
  fill("node-facts", facts.map(([k, v]) => [el("dt", null, k), el("dd", { class: k.includes("address") || k === "peer ID" ? "mono" : "" }, v)]));
}

function bar(label, used, held, total, fmt) {
  const pct = (x) => (total > 0 ? (100 * x) / total : 0) + "%";
  return el("div", { class: "bar" },
    el("span", null, label),
    el("div", { class: "track", title: "leased, then held by offers" },
      el("div", { class: "used", style: "width:" + pct(used) }),
      el("div", { class: "held", style: "width:" + pct(held) })),
    el("span", null, fmt(used) + " leased of " + fmt(total) + (held ? ", " + fmt(held) + " offered" : "")));
}

function renderCapacity(st) {
  if (st.role === "requester") {
    fill("capacity-bars", el("p", { class: "muted" }, "This node only buys: it sells no capacity."));
    return;
  }
  const c = st.capacity, u = st.committed, r = st.reserved;
  fill("capacity-bars",
    bar("CPU", u.cpu_millis, r.cpu_millis, c.cpu_millis, vcpu),
    bar("memory", u.memory_bytes, r.memory_bytes, c.memory_bytes, bytes),
    bar("scratch", u.scratch_bytes, r.scratch_bytes, c.scratch_bytes, bytes),
    el("p", { class: "muted" }, count(st.leases, "lease") + ", " + count(st.reservations, "offer") + " held, load " + (st.load_permille / 10).toFixed(1) + "%"));
}

function renderLeases(leases) {
  fill("lease-count", "(" + leases.length + ")");
  const rows = [];
  for (const l of leases) {
    rows.push(el("tr", { class: "lease", "data-lease": l.id },
      el("td", { class: "mono", title: l.id + " epoch " + l.epoch }, l.id.slice(0, 8) + "/" + l.epoch),
      el("td", { class: "mono", title: l.job }, short(l.job)),
      el("td", { class: "mono", title: l.requester }, short(l.requester)),
      stateCell(l.state),
      el("td", null, l.since ? ago(l.since) : ago(l.committed)),
      el("td", null, vcpu(l.reserved.cpu_millis) + ", " + bytes(l.reserved.memory_bytes)),
      el("td", null, l.cpu_per_hour + " /vCPU-h")));
    const out = [];
    if (l.stdout) out.push(el("pre", { class: "stdout" }, l.stdout));
    if (l.stderr) out.push(el("pre", { class: "stderr error" }, l.stderr));
    if (l.cut) out.push(el("p", { class: "muted" }, "output cut at the node's log limit"));
    rows.push(el("tr", null, el("td", { colspan: 7 }, out.length ? out : el("span", { class: "muted" }, "no output yet"))));
  }
  if (!leases.length) rows.push(el("tr", null, el("td", { colspan: 7, class: "muted" }, "none")));
  fill("lease-rows", rows);
}

function renderEarnings(statement) {
  const totals = (statement.totals || []).filter((t) => t.side === "earnings" && t.by === "currency");
  fill("earnings-totals", totals.length
    ? totals.map((t) => t.all + " billed in " + count(t.receipts, "receipt") + ", " + t.countersigned + " of it countersigned by customers").join("; ")
    : "Nothing billed yet.");
  const points = (statement.rows || []).filter((r) => r.side === "earnings")
    .map((r) => ({ at: Date.parse(r.ended_at), nanos: Number(r.amount_nanos), currency: r.currency }));
  fill("earnings-chart", points.length ? chart(points) : []);
}

// chart draws cumulative earnings over time, a step line per currency, as an
// SVG; points are {at: ms since the epoch, nanos, currency}, one per receipt.
function chart(points) {
  const W = 900, H = 220, L = 70, B = 30, T = 10;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("width", "100%");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "earnings over time");
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
  };
  const byCurrency = {};
  for (const p of [...points].sort((a, b) => a.at - b.at)) (byCurrency[p.currency] ||= []).push(p);
  const t0 = Math.min(...points.map((p) => p.at)), t1 = Math.max(t0 + 1000, ...points.map((p) => p.at));
  const colours = ["#b4562b", "#1565c0", "#2e7d32", "#6a1b9a"];
  let i = 0;
  for (const [currency, ps] of Object.entries(byCurrency)) {
    let sum = 0;
    const cum = ps.map((p) => ({ at: p.at, v: (sum += Number(p.nanos)) }));
    const top = sum || 1;
    const x = (t) => L + ((W - L - 10) * (t - t0)) / (t1 - t0);
    const y = (v) => H - B - ((H - B - T) * v) / top;
    let d = `M${x(t0)},${y(0)}`;
    for (const c of cum) d += ` H${x(c.at)} V${y(c.v)}`;
    add("path", { d, fill: "none", stroke: colours[i % colours.length], "stroke-width": 2 });
    add("text", { x: 4, y: T + 12 + 14 * i }, money(sum, currency));
    i++;
  }
  add("line", { x1: L, y1: H - B, x2: W - 10, y2: H - B, stroke: "#d2d2d7" });
  add("text", { x: L, y: H - 8 }, new Date(t0).toLocaleString());
  add("text", { x: W - 10, y: H - 8, "text-anchor": "end" }, new Date(t1).toLocaleString());
  return svg;
}

function renderJobs(jobs) {
  fill("job-count", "(" + jobs.length + ")");
  const rows = [...jobs].reverse().map((j) =>
    el("tr", { class: "clickable job", "data-job": j.cid, onclick: () => showJob(j.cid) },
      el("td", { class: "mono", title: j.cid }, short(j.cid)),
      el("td", null, j.name),
      stateCell(j.state),
      el("td", null, new Date(j.submitted).toLocaleString()),
      el("td", null, j.placed_ms ? j.placed_ms.toFixed(1) + " ms" : ""),
      el("td", null, j.billed || "")));
  if (!rows.length) rows.push(el("tr", null, el("td", { colspan: 6, class: "muted" }, "none")));
  fill("job-rows", rows);
}

function scores(s) {
  return (s || []).map((x) => x.scorer + " " + x.value + "×" + x.weight).join(", ");
}

async function showJob(cid) {
  openJob = cid;
  const j = await api("/v1/jobs/" + encodeURIComponent(cid));
  const slots = (j.slots || []).map((s, i) =>
    el("tr", null, el("td", null, "slot " + i), el("td", { class: "mono", title: s.provider }, short(s.provider)), stateCell(s.state),
      el("td", null, s.billed || s.price || ""), el("td", null, s.score ? "won with " + s.score + ": " + scores(s.scores) : "")));
  const asked = (j.asked || []).map((a) =>
    el("tr", null, el("td", { class: "mono", title: a.provider }, short(a.provider)), el("td", null, a.reason),
      el("td", null, a.detail || ""), el("td", null, a.score ? a.score + ": " + scores(a.scores) : "")));
  fill("job-detail",
    el("h3", null, (j.name || "job") + " ", el("span", { class: "mono muted" }, j.cid)),
    j.reason ? el("p", { class: "error" }, j.reason) : null,
    el("table", null, el("thead", null, el("tr", null, el("th", null, "slot"), el("th", null, "provider"), el("th", null, "state"), el("th", null, "billed / quoted"), el("th", null, "why it won"))), el("tbody", null, slots)),
    asked.length ? el("h4", null, "Who was asked, and what they said") : null,
    asked.length ? el("table", null, el("thead", null, el("tr", null, el("th", null, "provider"), el("th", null, "answer"), el("th", null, "detail"), el("th", null, "score"))), el("tbody", null, asked)) : null);
}

function renderProviders(ps) {
  fill("provider-count", "(" + ps.length + ")");
  const rows = ps.map((p) =>
    el("tr", { class: "provider" },
      el("td", { class: "mono", title: p.id }, short(p.id)),
      el("td", null, Object.entries(p.labels || {}).map(([k, v]) => k + "=" + v).join(", ")),
      el("td", null, vcpu(p.free.cpu_millis) + " / " + vcpu(p.total.cpu_millis)),
      el("td", null, bytes(p.free.memory_bytes) + " / " + bytes(p.total.memory_bytes)),
      el("td", null, p.cpu_per_hour),
      el("td", null, p.memory_gib_per_hour),
      el("td", null, (p.record_age_ms / 1000).toFixed(0) + " s")));
  if (!rows.length) rows.push(el("tr", null, el("td", { colspan: 7, class: "muted" }, "none found yet")));
  fill("provider-rows", rows);
}

async function refresh() {
  try {
    const [id, st, leases, jobs, statement] = await Promise.all([
      api("/v1/id"), api("/v1/status"), api("/v1/leases"), api("/v1/jobs"), api("/v1/billing")]);
    renderNode(id, st);
    renderCapacity(st);
    renderLeases(leases);
    renderEarnings(statement);
    renderJobs(jobs);
    if (openJob) await showJob(openJob);
    if (tick++ % PROVIDERS_EVERY === 0) renderProviders(await api("/v1/providers"));
    fill("updated", "updated " + new Date().toLocaleTimeString());
    document.getElementById("login").hidden = true;
    document.getElementById("main").hidden = false;
    document.body.dataset.loaded = "true";
  } catch (e) {
    if (e instanceof Unauthorized || !token) {
      showLogin(e.message);
      return;
    }
    fill("updated", "the node did not answer: " + e.message);
  }
  setTimeout(refresh, REFRESH_MS);
}

function showLogin(message) {
  document.getElementById("main").hidden = true;
  document.getElementById("login").hidden = false;
  fill("login-error", token ? message : "");
}

document.getElementById("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = document.getElementById("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  refresh();
});

takeTokenFromHash();
if (token) refresh();
else showLogin("");
