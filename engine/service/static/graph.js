// quaid web UI, graph view (#graph): one page of GET /api/v1/graph drawn with Cytoscape.js
// (served from /ui/vendor/, installed by scripts/install-ui-libraries.sh). Nodes are pictures
// (colour: cluster; larger: the cluster's representative), edges are matches (colour: decision).
// Hovering a node shows its name and thumbnail; a click opens its picture page.
// Uses api(), el(), thumbnail() and say() of app.js, loaded after this file.
"use strict";

const GRAPH_LIMIT = 300;  // pictures drawn at most: the layout stays under a second, hover instant
const graphState = { cy: null, offsets: [], tips: new Map() };
const EDGE_COLOURS = { accepted: "#1a7f37", "to-review": "#b35900", rejected: "#8c959f" };

function clusterColour(key) {
  let h = 0;
  for (const ch of String(key)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${Math.round((h * 137.508) % 360)}, 65%, 45%)`;  // golden angle: neighbours differ
}

function graphElements(g) {
  const nodes = g.nodes.map((n) => ({ group: "nodes", data: {
    id: n.id, name: n.name || n.id, cluster: n.cluster, colour: clusterColour(n.cluster),
    size: n.representative ? 22 : 14 } }));
  const edges = g.edges.map((e) => ({ group: "edges", data: {
    id: `${e.source}-${e.target}`, source: e.source, target: e.target, decision: e.decision,
    colour: EDGE_COLOURS[e.decision] || EDGE_COLOURS.rejected } }));
  return [...nodes, ...edges];
}

const GRAPH_STYLE = [
  { selector: "node", style: { "background-color": "data(colour)", width: "data(size)", height: "data(size)",
                                "border-width": 1.5, "border-color": "#fff" } },
  { selector: "node.hovered", style: { "border-color": "#0969da", "border-width": 3 } },
  { selector: "edge", style: { "line-color": "data(colour)", width: 2, "curve-style": "haystack" } },
];

async function loadGraph(offset) {
  if (typeof cytoscape === "undefined") {
    throw new Error("the graph library is not installed: run scripts/install-ui-libraries.sh");
  }
  $("graph-summary").textContent = "scoring the matches between the pictures…";  // seconds on a large page
  const g = await api(`/api/v1/graph?offset=${offset}&limit=${GRAPH_LIMIT}`);
  hideTip();
  if (graphState.cy) graphState.cy.destroy();
  graphState.tips.clear();
  graphSummary(g);
  graphState.cy = cytoscape({
    container: $("graph"), elements: graphElements(g), style: GRAPH_STYLE, minZoom: 0.05, maxZoom: 4,
    layout: { name: "cose", animate: false, randomize: true, nodeDimensionsIncludeLabels: false,
              componentSpacing: 30, numIter: 600 },
  });
  window.quaid = { graph: graphState.cy };  // for the console and the browser tests
  graphState.cy.on("mouseover", "node", (ev) => showTip(ev.target));
  graphState.cy.on("mouseout", "node", hideTip);
  graphState.cy.on("pan zoom", hideTip);
  graphState.cy.on("tap", "node", (ev) => { location.hash = pictureHref(ev.target.id()); });
  const prev = $("graph-prev"), next = $("graph-next");
  prev.hidden = offset === 0; next.hidden = g.next === null;
  prev.onclick = () => loadGraph(graphState.offsets.pop() || 0).catch(graphFailed);
  next.onclick = () => { graphState.offsets.push(offset); loadGraph(g.next).catch(graphFailed); };
  if (offset === 0) graphState.offsets = [];
}

function graphFailed(e) { say("Cannot load the graph — " + e.message); }

function graphSummary(g) {
  const last = g.offset + g.shown_clusters;
  const whole = g.nodes.length === g.pictures;
  $("graph-summary").textContent = `${g.nodes.length} picture(s), ${g.edges.length} match(es)`;
  const cut = g.cut.length ? ` Cluster(s) ${g.cut.join(", ")} drawn with their first ${GRAPH_LIMIT} pictures only:`
    + " open a cluster's page for all of them." : "";
  $("graph-notice").hidden = whole;
  $("graph-notice").textContent = whole ? "" : `Showing clusters ${g.offset + 1}–${last} of ${g.clusters} `
    + `(largest first): ${g.nodes.length} of ${g.pictures} pictures, at most ${GRAPH_LIMIT} at a time.${cut}`;
}

async function showTip(node) {
  const tip = $("graph-tip"), id = node.id(), name = node.data("name");
  node.addClass("hovered");
  const pos = node.renderedPosition(), box = $("graph").getBoundingClientRect();
  const left = pos.x + 250 > box.width ? pos.x - 250 : pos.x + 14;  // stay inside the frame
  const top = pos.y + 200 > box.height ? pos.y - 200 : pos.y + 14;
  tip.style.left = `${Math.round(Math.max(0, left))}px`; tip.style.top = `${Math.round(Math.max(0, top))}px`;
  tip.dataset.id = id;
  tip.replaceChildren(el("div", { class: "name", text: name }), el("div", { class: "muted", text: `cluster ${node.data("cluster")}` }));
  tip.hidden = false;
  if (!graphState.tips.has(id)) graphState.tips.set(id, thumbnail(`/api/v1/pictures/${id}/image`, name));
  const img = await graphState.tips.get(id);
  if (tip.dataset.id === id && !tip.hidden) tip.prepend(img);
}

function hideTip() {
  const tip = $("graph-tip");
  if (!tip) return;
  tip.hidden = true; tip.dataset.id = "";
  if (graphState.cy) graphState.cy.nodes(".hovered").removeClass("hovered");
}
