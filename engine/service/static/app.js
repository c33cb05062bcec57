// quaid web UI: talks to the JSON API only; builds the DOM with textContent (names are untrusted data).
"use strict";

const state = { key: localStorage.getItem("quaid-key") || "", file: null, blobs: [] };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

function put(node, ...children) { for (const c of children) if (c) node.append(c); return node; }

function headers() { return { "X-Quaid-Request": "1", ...(state.key ? { Authorization: "Bearer " + state.key } : {}) }; }

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  const body = (response.headers.get("Content-Type") || "").includes("json") ? await response.json() : null;
  if (!response.ok) {
    const reason = body && body.error ? body.error : response.statusText;
    if (response.status === 401 || response.status === 403) $("key-form").hidden = false;
    throw new Error(`${response.status}: ${reason}`);
  }
  return body;
}

function say(text, info = false) {
  const box = $("message");
  box.textContent = text; box.hidden = !text; box.classList.toggle("info", info);
}

// Thumbnails need the API key, which <img src> cannot send: fetch them as blobs.
async function thumbnail(url, alt) {
  const img = el("img", { class: "thumb", alt });
  try {
    const response = await fetch(url, { headers: headers() });
    if (response.ok) {
      const blobUrl = URL.createObjectURL(await response.blob());
      state.blobs.push(blobUrl); img.src = blobUrl;
    } else { img.alt = alt + " (no stored image)"; }
  } catch (e) { img.alt = alt + " (unavailable)"; }
  return img;
}

// A reference stored from a partner's hashes has no picture: a card says so instead of a broken image.
function noPicture() { return el("div", { class: "thumb no-picture", text: "hashes only: no picture" }); }

function matchThumbnail(m, subjectHashOnly = false) {
  const hashOnly = m.reason === "hashes-only" && !subjectHashOnly;
  return hashOnly ? noPicture() : thumbnail(`/api/v1/pictures/${m.id}/image`, m.name || m.id);
}

function releaseBlobs() { state.blobs.forEach(URL.revokeObjectURL); state.blobs = []; }

function badge(decision) { return el("span", { class: "badge " + decision, text: decision }); }

function algorithmTable(algorithms) {
  const table = el("table", { class: "algos" },
    el("tr", {}, el("th", { text: "algorithm" }), el("th", { text: "distance" }), el("th", { text: "vote" })));
  for (const [name, r] of Object.entries(algorithms || {})) {
    table.append(el("tr", { class: "algo" }, el("td", { text: name }),
      el("td", { text: Number(r.distance).toFixed(3) }), el("td", {}, badge(r.decision))));
  }
  return table;
}

// ---- search -------------------------------------------------------------
function chooseFile(file) {
  if (!file) return;
  state.file = file;
  $("file-name").textContent = `${file.name} (${Math.round(file.size / 1024)} KiB)`;
  const preview = $("preview");
  preview.src = URL.createObjectURL(file); preview.hidden = false;
}

async function runSearch(event) {
  event.preventDefault();
  if (!state.file) { say("Choose or drop a picture first."); return; }
  say(""); $("search-button").disabled = true;
  const form = new FormData(); form.append("file", state.file); form.append("top", $("top").value);
  const started = performance.now();
  try {
    const result = await api("/api/v1/search", { method: "POST", body: form });
    await showResult(result, performance.now() - started);
    refreshReviewCount();
  } catch (e) { say("Search failed — " + e.message); } finally { $("search-button").disabled = false; }
}

async function showResult(result, ms) {
  releaseBlobs();
  $("result").hidden = false;
  const decision = $("decision");
  decision.className = "badge " + result.decision; decision.textContent = result.decision;
  $("elapsed").textContent = `${result.matches.length} match(es), ${Math.round(ms)} ms`;
  $("no-match").hidden = result.matches.length > 0;
  const list = $("matches"); list.replaceChildren();
  for (const m of result.matches) {
    const card = el("li", { class: "match" });
    put(card, await matchThumbnail(m),
      el("div", { class: "name", text: m.name || "(no name)" }), el("div", { class: "id", text: m.id }),
      el("div", {}, badge(m.decision), document.createTextNode(` distance ${Number(m.distance).toFixed(3)}`),
        m.cluster ? document.createTextNode(` · cluster ${m.cluster}`) : null),
      (m.tags && m.tags.length) ? el("div", { class: "muted", text: "tags: " + m.tags.join(", ") }) : null,
      algorithmTable(m.algorithms));
    list.append(card);
  }
}

async function addPicture() {
  if (!state.file) { say("Choose or drop a picture first."); return; }
  const form = new FormData(); form.append("file", state.file); form.append("name", state.file.name);
  try {
    const r = await api("/api/v1/pictures", { method: "POST", body: form });
    say(`${r.status === "added" ? "Added" : "Already stored"}: ${r.id} (cluster ${r.cluster})`, true);
  } catch (e) { say("Add failed — " + e.message); }
}

// ---- clusters -------------------------------------------------------------
async function loadClusters() {
  const data = await api("/api/v1/clusters");
  const clusters = data.clusters || [];
  $("cluster-total").textContent = `${clusters.length} cluster(s)`;
  const list = $("cluster-list"); list.replaceChildren(); releaseBlobs();
  for (const c of clusters) {
    const rep = c.representative;
    const cid = c.cluster ?? c.id;
    const card = el("li", { class: "cluster clickable", "data-cluster": cid, onclick: () => openCluster(cid, card) });
    put(card, rep ? await thumbnail(`/api/v1/pictures/${rep}/image`, "representative") : null,
      el("div", { class: "name", text: `cluster ${cid}` }),
      el("div", { class: "muted", text: `${c.size ?? (c.members || []).length} picture(s)` }));
    list.append(card);
  }
}

async function openCluster(id, card) {
  document.querySelectorAll("#cluster-list li").forEach((li) => li.classList.remove("selected"));
  card.classList.add("selected");
  const c = await api(`/api/v1/clusters/${encodeURIComponent(id)}`);
  $("cluster-detail").hidden = false; $("cluster-id").textContent = c.cluster ?? c.id;
  const list = $("cluster-members"); list.replaceChildren();
  for (const member of c.members || []) {
    const mid = typeof member === "string" ? member : member.id;
    const label = typeof member === "string" ? member : (member.name || member.id);
    list.append(el("li", { class: "member" }, await thumbnail(`/api/v1/pictures/${mid}/image`, label),
      el("div", { class: "name", text: label }), el("div", { class: "id", text: mid }),
      mid === c.representative ? el("div", { class: "muted", text: "representative" }) : null));
  }
}

// ---- graph (force layout drawn in SVG, no library) ------------------------
async function loadGraph() {
  const g = await api("/api/v1/export?format=graph");
  const nodes = (g.nodes || []).map((n) => ({ ...n, id: n.id, x: 0, y: 0, vx: 0, vy: 0 }));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const edges = (g.edges || []).map((e) => ({ ...e, a: byId.get(e.source ?? e.a), b: byId.get(e.target ?? e.b) }))
    .filter((e) => e.a && e.b);
  $("graph-summary").textContent = `${nodes.length} picture(s), ${edges.length} link(s)`;
  layout(nodes, edges, 960, 600);
  drawGraph(nodes, edges);
}

// Fruchterman & Reingold (1991), "Graph drawing by force-directed placement", with a pull
// towards the centre so that clusters that share no edge stay on the canvas.
function layout(nodes, edges, w, h) {
  const n = Math.max(1, nodes.length), k = 0.7 * Math.sqrt((w * h) / n), steps = 250;
  nodes.forEach((node, i) => {
    const a = i * 2.399, r = Math.min(w, h) * 0.4 * Math.sqrt((i + 0.5) / n);
    node.x = w / 2 + r * Math.cos(a); node.y = h / 2 + r * Math.sin(a);
  });
  const exact = nodes.length <= 800;  // all pairs below that; beyond, repulsion from a sample
  for (let step = 0; step < steps; step++) {
    const temp = (w / 8) * (1 - step / steps) + 0.5;
    for (const node of nodes) { node.vx = 0; node.vy = 0; }
    for (let i = 0; i < nodes.length; i++) {
      const a = nodes[i];
      for (let j = exact ? i + 1 : 0; j < nodes.length; j += exact ? 1 : 7) {
        if (j === i) continue;
        const b = nodes[j], dx = a.x - b.x, dy = a.y - b.y, d = Math.max(0.5, Math.hypot(dx, dy));
        const f = (k * k) / d / d;
        a.vx += dx * f; a.vy += dy * f;
        if (exact) { b.vx -= dx * f; b.vy -= dy * f; }
      }
    }
    for (const e of edges) {
      const dx = e.b.x - e.a.x, dy = e.b.y - e.a.y, d = Math.max(0.5, Math.hypot(dx, dy)), f = 4 * d / k;
      e.a.vx += dx * f; e.a.vy += dy * f; e.b.vx -= dx * f; e.b.vy -= dy * f;
    }
    for (const node of nodes) {
      const gx = w / 2 - node.x, gy = h / 2 - node.y, r = Math.hypot(gx, gy);
      node.vx += gx * r / k * 0.3; node.vy += gy * r / k * 0.3;
      const len = Math.max(0.01, Math.hypot(node.vx, node.vy)), move = Math.min(len, temp);
      node.x = Math.min(w - 12, Math.max(12, node.x + (node.vx / len) * move));
      node.y = Math.min(h - 12, Math.max(12, node.y + (node.vy / len) * move));
    }
  }
}

function colour(key) {
  let h = 0;
  for (const ch of String(key)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${Math.round((h * 137.508) % 360)}, 65%, 45%)`;  // golden angle: neighbours differ
}

function drawGraph(nodes, edges) {
  const svg = $("graph"); svg.replaceChildren();
  const NS = "http://www.w3.org/2000/svg";
  const lines = edges.map((e) => {
    const line = document.createElementNS(NS, "line");
    line.setAttribute("stroke", e.decision === "accepted" ? "#1a7f37" : e.decision === "to-review" ? "#b35900" : "#8c959f");
    line.classList.add("edge"); svg.append(line); return line;
  });
  const place = () => edges.forEach((e, i) => {
    lines[i].setAttribute("x1", e.a.x); lines[i].setAttribute("y1", e.a.y);
    lines[i].setAttribute("x2", e.b.x); lines[i].setAttribute("y2", e.b.y);
  });
  for (const n of nodes) {
    const c = document.createElementNS(NS, "circle");
    c.setAttribute("r", n.representative ? 9 : 6); c.setAttribute("fill", colour(n.cluster ?? n.id));
    c.setAttribute("cx", n.x); c.setAttribute("cy", n.y); c.classList.add("node");
    const title = document.createElementNS(NS, "title"); title.textContent = `${n.name || n.id}\ncluster ${n.cluster}`;
    c.append(title); svg.append(c);
    c.addEventListener("pointerdown", (ev) => {
      c.setPointerCapture(ev.pointerId);
      const move = (m) => { const box = svg.getBoundingClientRect();
        n.x = (m.clientX - box.left) * 960 / box.width; n.y = (m.clientY - box.top) * 600 / box.height;
        c.setAttribute("cx", n.x); c.setAttribute("cy", n.y); place(); };
      c.addEventListener("pointermove", move);
      c.addEventListener("pointerup", () => c.removeEventListener("pointermove", move), { once: true });
    });
  }
  place();
}

// ---- review queue -----------------------------------------------------------
async function refreshReviewCount() {
  try { const r = await api("/api/v1/review?limit=1"); $("review-count").textContent = r.total || ""; } catch (e) { /* shown elsewhere */ }
}

async function loadReview() {
  const data = await api("/api/v1/review?status=pending&limit=50");
  $("review-total").textContent = `${data.total} pending`;
  $("review-count").textContent = data.total || "";
  const list = $("review-list"); list.replaceChildren(); releaseBlobs();
  for (const item of data.items) {
    const li = el("li", { class: "review-item", "data-item": item.item });
    const judge = async (verdict) => {
      try {
        await api(`/api/v1/review/${item.item}`, { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ verdict }) });
        li.remove(); say(`Marked ${verdict}.`, true); refreshReviewCount();
      } catch (e) { say("Verdict not saved — " + e.message); }
    };
    li.append(
      el("figure", {}, await thumbnail(`/api/v1/review/${item.item}/image`, "searched picture"),
        el("figcaption", { text: "searched: " + (item.query_name || item.query) })),
      el("figure", {}, await thumbnail(`/api/v1/pictures/${item.match}/image`, "stored picture"),
        el("figcaption", { text: "stored: " + (item.match_name || item.match) })),
      el("div", {}, el("div", { text: `distance ${Number(item.distance).toFixed(3)}` }), algorithmTable(item.algorithms),
        el("p", {}, el("button", { class: "accept", type: "button", text: "Same picture (accept)", onclick: () => judge("accepted") }),
          document.createTextNode(" "),
          el("button", { class: "reject", type: "button", text: "Different (reject)", onclick: () => judge("rejected") }))));
    list.append(li);
  }
}

// ---- one picture (#/picture/<id>: the page MISP and AIL link to) -------------
const QUAID_REQUEST = { "X-Quaid-Request": "1" };

function matchCard(m, thumb) {
  const link = el("a", { href: `#/picture/${encodeURIComponent(m.id)}`, class: "name", text: m.name || "(no name)" });
  return el("li", { class: "match" }, thumb, link, el("div", { class: "id", text: m.id }),
    el("div", {}, badge(m.decision), document.createTextNode(` distance ${Number(m.distance).toFixed(3)}`),
      m.cluster ? document.createTextNode(` · cluster ${m.cluster}`) : null),
    (m.tags && m.tags.length) ? el("div", { class: "muted", text: "tags: " + m.tags.join(", ") }) : null,
    algorithmTable(m.algorithms));
}

function recordList(record) {
  const rows = [["id", record.id], ["tags", (record.tags || []).join(", ") || "none"],
    ["cluster", String(record.cluster || "none")], ["added", record.added],
    ["picture", record.hash_only ? "none: a partner's hashes only"
      : `${record.width} × ${record.height} ${record.format}, ${Math.round(record.size / 1024)} KiB`]];
  for (const [k, v] of Object.entries(record.metadata || {})) rows.push([k, typeof v === "string" ? v : JSON.stringify(v)]);
  return rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]);
}

async function loadPicture(id) {
  releaseBlobs();
  const path = `/api/v1/pictures/${encodeURIComponent(id)}`;
  const [record, found] = await Promise.all([api(path, { headers: QUAID_REQUEST }),
    api(`${path}/matches?top=20`, { headers: QUAID_REQUEST })]);
  $("picture-name").textContent = record.name || "(no name)";
  $("picture-image").replaceChildren(record.hash_only ? noPicture()
    : await thumbnail(`${path}/image`, record.name || record.id));
  $("picture-record").replaceChildren(...recordList(record));
  $("picture-match-total").textContent = `${found.matches.length} match(es)`;
  $("picture-no-match").hidden = found.matches.length > 0;
  const list = $("picture-matches"); list.replaceChildren();
  for (const m of found.matches) list.append(matchCard(m, await matchThumbnail(m, record.hash_only)));
}

// ---- navigation and start ---------------------------------------------------
const loaders = { clusters: loadClusters, graph: loadGraph, review: loadReview };

async function showTab() {
  const picture = /^#\/picture\/([0-9a-fA-F]{4,64})$/.exec(location.hash);
  if (picture) {
    document.querySelectorAll(".tab").forEach((s) => { s.hidden = s.id !== "tab-picture"; });
    document.querySelectorAll("nav a").forEach((a) => a.classList.remove("active"));
    say("");
    try { await loadPicture(picture[1]); } catch (e) { say(`Cannot load picture ${picture[1]} — ${e.message}`); }
    return;
  }
  const tab = (location.hash || "#search").slice(1);
  document.querySelectorAll(".tab").forEach((s) => { s.hidden = s.id !== "tab-" + tab; });
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.tab === tab));
  say("");
  if (loaders[tab]) { try { await loaders[tab](); } catch (e) { say(`Cannot load ${tab} — ${e.message}`); } }
}

async function start() {
  $("api-key").value = state.key;
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault(); state.key = $("api-key").value.trim(); localStorage.setItem("quaid-key", state.key); showTab();
  });
  $("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); chooseFile(e.dataTransfer.files[0]); });
  $("search-form").addEventListener("submit", runSearch);
  $("add-button").addEventListener("click", addPicture);
  window.addEventListener("hashchange", showTab);
  try {
    const s = await (await fetch("/status")).json();
    $("service-state").textContent = s.status === "ready" ? `${s.stats.pictures ?? "?"} pictures` : s.error;
    $("key-form").hidden = !s.auth;
  } catch (e) { $("service-state").textContent = "service unreachable"; }
  await showTab();
  refreshReviewCount();
}

start();
