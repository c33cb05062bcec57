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

// What differs between two pictures (a PNG the API draws), or why it cannot be drawn.
// ``options``: a POST of the searched file (the search page's picture is not stored).
async function differences(url, options = {}) {
  const box = el("figure", { class: "diff" });
  try {
    const response = await fetch(url, { ...options, headers: headers() });
    if (!response.ok) {
      const body = (response.headers.get("Content-Type") || "").includes("json") ? await response.json() : null;
      box.append(el("figcaption", { class: "muted", text: "differences not drawn: " + (body && body.error ? body.error : response.statusText) }));
      return box;
    }
    const blobUrl = URL.createObjectURL(await response.blob());
    state.blobs.push(blobUrl);
    box.append(el("a", { href: blobUrl, target: "_blank", rel: "noopener" }, el("img", { class: "diff-image", src: blobUrl, alt: "what differs" })),
      el("figcaption", { class: "muted", text: "left: searched, right: stored, aligned. Red: rewritten content; blue: blocks a copy adds; orange: weaker differences." }));
  } catch (e) { box.append(el("figcaption", { class: "muted", text: "differences unavailable" })); }
  return box;
}

// ``a``: a stored picture's id, or a File (the searched picture, sent along).
function differencesButton(a, b) {
  const button = el("button", { type: "button", class: "show-diff", text: "show differences" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    let drawn;
    if (a instanceof File) {
      const form = new FormData(); form.append("file", a); form.append("b", b);
      drawn = await differences("/api/v1/compare", { method: "POST", body: form });
    } else {
      drawn = await differences(`/api/v1/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
    }
    button.replaceWith(drawn);
  });
  return button;
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

const pictureHref = (id) => `#/picture/${encodeURIComponent(id)}`;
const clusterHref = (n) => `#/cluster/${encodeURIComponent(n)}`;

function clusterLink(n) { return el("a", { href: clusterHref(n), class: "cluster-link", text: `cluster ${n}` }); }

// A stored picture as a card: its thumbnail and name open its page; then id, cluster, tags.
function pictureCard(p, thumb, ...extra) {
  const cluster = p.cluster || p.cluster === 0 ? clusterLink(p.cluster) : null;
  return el("li", { class: "picture-card", "data-id": p.id },
    el("a", { href: pictureHref(p.id), class: "thumb-link", "aria-label": p.name || p.id }, thumb),
    el("a", { href: pictureHref(p.id), class: "name", text: p.name || "(no name)" }),
    el("div", { class: "id", text: p.id }),
    (p.tags && p.tags.length) ? el("div", { class: "muted tags", text: "tags: " + p.tags.join(", ") }) : null,
    cluster ? el("div", { class: "muted" }, cluster) : null, ...extra);
}

// A match: the card plus its decision, distance and every algorithm's vote.
function matchCard(m, thumb) {
  const card = pictureCard(m, thumb,
    el("div", {}, badge(m.decision), document.createTextNode(` distance ${Number(m.distance).toFixed(3)}`)),
    algorithmTable(m.algorithms));
  card.classList.add("match");
  return card;
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
  $("noise-note").hidden = !result.noise;
  $("noise-note").textContent = result.noise ? noiseText(result.noise) : "";
  const list = $("matches"); list.replaceChildren();
  for (const m of result.matches) {
    const card = matchCard(m, await matchThumbnail(m));
    if (m.reason !== "hashes-only" && state.file) card.append(differencesButton(state.file, m.id));
    list.append(card);
  }
}

// what a search answer's or a record's "noise" says, in words (engine.noise)
const NOISE_REASONS = {
  "marked": "marked as noise by an analyst",
  "review": "marked as noise in the review queue",
  "low-information": "too little to tell it from other pictures (a blank, error, challenge or placeholder page)",
  "matches-noise": "it matches a picture in the noise bank",
};

function noiseText(noise) {
  const why = NOISE_REASONS[noise.reason] || noise.reason;
  return `Noise: ${why}${noise.picture ? ` (${noise.picture.slice(0, 16)})` : ""}. `
    + "Noise is never tagged or correlated by the MISP and AIL connectors.";
}

async function addPicture() {
  if (!state.file) { say("Choose or drop a picture first."); return; }
  const form = new FormData(); form.append("file", state.file); form.append("name", state.file.name);
  try {
    const r = await api("/api/v1/pictures", { method: "POST", body: form });
    say(`${r.status === "added" ? "Added" : "Already stored"}: ${r.id} (cluster ${r.cluster})`, true);
  } catch (e) { say("Add failed — " + e.message); }
}

// ---- clusters (#clusters) and one cluster (#/cluster/<n>) -----------------------
async function loadClusters() {
  const data = await api("/api/v1/clusters");
  const clusters = data.clusters || [];
  $("cluster-total").textContent = `${clusters.length} cluster(s)`;
  const list = $("cluster-list"); list.replaceChildren(); releaseBlobs();
  const thumbs = await Promise.all(clusters.slice(0, CLUSTERS_SHOWN).map((c) =>
    thumbnail(`/api/v1/pictures/${c.representative}/image`, `cluster ${c.cluster}`)));
  clusters.slice(0, CLUSTERS_SHOWN).forEach((c, i) => list.append(
    el("li", { class: "cluster", "data-cluster": c.cluster },
      el("a", { href: clusterHref(c.cluster), class: "thumb-link", "aria-label": `cluster ${c.cluster}` }, thumbs[i]),
      el("a", { href: clusterHref(c.cluster), class: "name", text: `cluster ${c.cluster}` }),
      el("div", { class: "muted", text: `${c.size} picture(s)` }))));
  $("cluster-more").hidden = clusters.length <= CLUSTERS_SHOWN;
  $("cluster-more").textContent = `${clusters.length - CLUSTERS_SHOWN} smaller cluster(s) not shown: `
    + "open them from a picture's page or the graph.";
}

const CLUSTERS_SHOWN = 200;  // cluster cards on the clusters view, largest first
const MEMBERS_PAGE = 60;  // pictures a cluster page adds at a time

async function loadCluster(number, offset = 0) {
  if (offset === 0) { releaseBlobs(); $("cluster-members").replaceChildren(); }
  const c = await api(`/api/v1/clusters/${encodeURIComponent(number)}?offset=${offset}&limit=${MEMBERS_PAGE}`);
  $("cluster-number").textContent = c.cluster;
  $("cluster-size").replaceChildren(document.createTextNode(`${c.size} picture(s); representative `),
    el("a", { href: pictureHref(c.representative), class: "id", text: c.representative }));
  const thumbs = await Promise.all(c.members.map((p) => thumbnail(`/api/v1/pictures/${p.id}/image`, p.name || p.id)));
  c.members.forEach((p, i) => $("cluster-members").append(pictureCard(p, thumbs[i],
    p.id === c.representative ? el("div", { class: "muted", text: "representative" }) : null)));
  const shown = offset + c.members.length, more = $("cluster-next");
  $("cluster-shown").textContent = shown < c.size ? `${shown} of ${c.size} shown` : "";
  more.hidden = shown >= c.size;
  more.onclick = () => loadCluster(number, shown).catch((e) => say("Cannot load more — " + e.message));
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
    const searched = item.evidence === "hashes-only"
      ? el("div", { class: "thumb no-picture", text: "searched by hashes: no picture" })
      : await thumbnail(`/api/v1/review/${item.item}/image`, "searched picture");
    li.append(
      el("figure", {}, searched,
        el("figcaption", { text: "searched: " + (item.query_name || item.query) })),
      el("figure", {}, el("a", { href: pictureHref(item.match), class: "thumb-link" },
        await thumbnail(`/api/v1/pictures/${item.match}/image`, "stored picture")),
        el("figcaption", {}, document.createTextNode("stored: "),
          el("a", { href: pictureHref(item.match), class: "name", text: item.match_name || item.match }))),
      el("div", {}, el("div", { text: `distance ${Number(item.distance).toFixed(3)}` }), algorithmTable(item.algorithms),
        el("p", {}, el("button", { class: "accept", type: "button", text: "Same picture (accept)", onclick: () => judge("accepted") }),
          document.createTextNode(" "),
          el("button", { class: "reject", type: "button", text: "Different (reject)", onclick: () => judge("rejected") }),
          document.createTextNode(" "),
          el("button", { class: "noise", type: "button", text: "Noise (blank, error, challenge page)",
            onclick: () => judge("noise") }))));
    if (item.evidence !== "hashes-only") li.append(await differences(`/api/v1/review/${item.item}/compare`));
    list.append(li);
  }
}

// ---- one picture (#/picture/<id>: the page MISP and AIL link to) -------------
const QUAID_REQUEST = { "X-Quaid-Request": "1" };

function recordList(record) {
  const rows = [["id", record.id], ["tags", (record.tags || []).join(", ") || "none"],
    ["cluster", "none"], ["added", record.added],
    ["picture", record.hash_only ? "none: a partner's hashes only"
      : `${record.width} × ${record.height} ${record.format}, ${Math.round(record.size / 1024)} KiB`]];
  for (const [k, v] of Object.entries(record.metadata || {})) rows.push([k, typeof v === "string" ? v : JSON.stringify(v)]);
  const items = rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]);
  if (record.cluster || record.cluster === 0) items[5].replaceChildren(clusterLink(record.cluster));
  return items;
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
  for (const m of found.matches) {
    const card = matchCard(m, await matchThumbnail(m, record.hash_only));
    if (!record.hash_only && m.reason !== "hashes-only") card.append(differencesButton(record.id, m.id));
    list.append(card);
  }
  showNoise(record);
}

function showNoise(record) {
  $("picture-noise").textContent = record.noise ? noiseText(record.noise) : "";
  const button = $("picture-noise-button");
  button.textContent = record.noise ? "Not noise: report it as a match again" : "Mark as noise";
  button.onclick = async () => {
    try {
      const changed = await api(`/api/v1/pictures/${record.id}/noise`, { method: record.noise ? "DELETE" : "POST" });
      showNoise(changed); say(changed.noise ? "Marked as noise." : "Taken out of the noise bank.", true);
    } catch (e) { say("Not changed — " + e.message); }
  };
}

// ---- navigation and start ---------------------------------------------------
const loaders = { clusters: loadClusters, graph: () => loadGraph(0), review: loadReview };
const PAGES = [  // pages of one thing: the links MISP, AIL and every card lead to
  { pattern: /^#\/picture\/([0-9a-fA-F]{4,64})$/, tab: "tab-picture", load: loadPicture, what: "picture" },
  { pattern: /^#\/cluster\/([0-9]{1,20})$/, tab: "tab-cluster", load: loadCluster, what: "cluster" },
];

function showOnly(sectionId, navTab) {
  document.querySelectorAll(".tab").forEach((s) => { s.hidden = s.id !== sectionId; });
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.tab === navTab));
  hideTip();
  say("");
}

async function showTab() {
  for (const page of PAGES) {
    const found = page.pattern.exec(location.hash);
    if (!found) continue;
    showOnly(page.tab, null);
    try { await page.load(found[1]); } catch (e) { say(`Cannot load ${page.what} ${found[1]} — ${e.message}`); }
    return;
  }
  const tab = (location.hash || "#search").slice(1);
  showOnly("tab-" + tab, tab);
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
