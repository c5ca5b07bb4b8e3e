// synthetic-histology workbench page: plain JavaScript, no build step, no external resources.
// Rendering never blocks the page: every change sends a request; the server keeps only the newest
// waiting one (older ones come back {superseded: true}); a response older than the image shown is ignored.
// Images and curves stream as JSON lines: a low-resolution preview first, then the full result.
// The access token (when the server needs one) travels in an HttpOnly cookie set when the page loads.
"use strict";

const $ = (id) => document.getElementById(id);
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
const SAVED_KEY = "synthhist-workbench-saved";
const MAX_SEED = 4294967295;

const state = { info: null, last: null, curve: null };
const seq = { render: 0, renderShown: 0, previewShown: 0, curve: 0, curveShown: 0 };
let curveTimer = null;

async function failure(resp) {
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  return new Error((body && body.detail) || `HTTP ${resp.status}`);
}

async function api(path, options = {}) {
  const resp = await fetch(path, options);
  if (!resp.ok) throw await failure(resp);
  return resp.json();
}

// GET a JSON-lines stream; onEvent(obj) for each line as it arrives.
async function apiStream(path, onEvent) {
  const resp = await fetch(path);
  if (!resp.ok) throw await failure(resp);
  const reader = resp.body.getReader(), decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) onEvent(JSON.parse(line));
    }
  }
}

function setStatus(text, kind) {
  const el = $("status");
  el.textContent = text;
  el.className = "status " + kind;
}

function showError(msg) {
  $("error").hidden = !msg;
  $("error").textContent = msg || "";
}

// ---------- parameters ----------

function mode() { return document.querySelector('input[name="mode"]:checked').value; }

function checkedLayers() {
  return [...document.querySelectorAll("#layer-boxes input:checked")].map((b) => b.value);
}

function imageParams() {
  const net = state.info && state.info.network;
  const p = { seed: seedValue(), mode: mode(), psi: $("psi").value, noise: $("noise").value };
  if (net && net.c_dim > 0) {
    p.cls = $("cls").value;
    if (p.mode !== "class") p.end = $("end").value;
  } else {
    p.mode = "class";
  }
  if (p.mode === "blend") p.t = $("t").value;
  if (p.mode === "layers") { p.layers = checkedLayers().join(","); p.f = $("f").value; }
  return p;
}

function seedValue() {
  const s = parseInt($("seed").value, 10);
  return Number.isFinite(s) ? Math.min(Math.max(s, 0), MAX_SEED) : 0;
}

function setSeed(s) {
  $("seed").value = String(Math.min(Math.max(s, 0), MAX_SEED));
  changed(true);
}

// ---------- rendering ----------

function changed(curveToo) {
  $("t-value").textContent = Number($("t").value).toFixed(2);
  $("f-value").textContent = Number($("f").value).toFixed(2);
  $("psi-value").textContent = Number($("psi").value).toFixed(2);
  requestRender();
  if (curveToo) scheduleCurve();
  else drawCurve();
}

async function requestRender() {
  if (!state.info || !state.info.network) return;
  const id = ++seq.render;
  setStatus("rendering…", "busy");
  try {
    await apiStream("/api/render/stream?" + new URLSearchParams(imageParams()), (r) => {
      if (r.superseded || id <= seq.renderShown) return;
      if (r.error !== undefined && !r.stage) throw new Error(r.error);
      if (r.stage === "preview") {
        if (id < seq.previewShown) return;
        seq.previewShown = id;
        $("image").src = r.image;
        $("image-caption").textContent = `preview · ${r.resolution} px, refining…`;
        return;
      }
      seq.renderShown = seq.previewShown = id;
      showRender(r);
      if (id === seq.render) setStatus(`ready · ${r.ms} ms`, "idle");
    });
  } catch (e) {
    if (id >= seq.render) { showError(e.message); setStatus("error", "error"); }
  }
}

function showRender(r) {
  state.last = r;
  showError(r.error);
  $("image").src = r.image;
  const net = state.info.network;
  $("image-caption").textContent = `generated · ${net.resolution} px` + (net.tile_um ? ` · ${net.tile_um} µm` : "");
  const clf = state.info.classifier;
  $("clf-image").hidden = !r.clf_image;
  if (r.clf_image) {
    $("clf-image").src = r.clf_image;
    $("clf-caption").textContent = `classifier input · ${clf.tile_px} px` + (clf.tile_um ? ` · ${clf.tile_um} µm` : "");
  } else {
    $("clf-caption").textContent = clf ? "no classifier input" : "no classifier loaded";
  }
  showPrediction(r.prediction);
  drawCurve();
}

function showPrediction(pred) {
  const box = $("prediction");
  box.textContent = "";
  $("prediction-top").textContent = pred && pred.top ? `· ${pred.top}` : "";
  if (!pred) { box.textContent = state.info.classifier ? "" : "no classifier loaded"; return; }
  box.classList.remove("muted");
  pred.values.forEach((v, k) => {
    const row = document.createElement("div");
    row.className = "bar-row";
    const label = document.createElement("span");
    label.className = "bar-label";
    label.textContent = pred.labels[k];
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.className = "bar-fill";
    fill.style.background = COLOURS[k % COLOURS.length];
    fill.style.width = pred.type === "categorical" ? `${Math.max(0, Math.min(1, v)) * 100}%` : "0";
    bar.appendChild(fill);
    const val = document.createElement("span");
    val.className = "bar-value";
    val.textContent = pred.type === "categorical" ? `${(v * 100).toFixed(2)}%` : v.toFixed(4);
    row.append(label, bar, val);
    box.appendChild(row);
  });
}

// ---------- prediction curve over the class-blend slider ----------

function curveSteps() {
  // Fewer blend positions when images are slow to make (e.g. 512 px on a CPU): the curve stays affordable.
  const ms = state.last ? state.last.ms : 0;
  return ms < 300 ? 21 : ms < 3000 ? 11 : 5;
}

function curveParams() {
  return { seed: seedValue(), cls: $("cls").value, end: $("end").value, psi: $("psi").value,
           noise: $("noise").value, steps: curveSteps() };
}

function curveWanted() {
  const i = state.info;
  return i && i.network && i.classifier && i.network.c_dim >= 2;
}

function scheduleCurve() {
  clearTimeout(curveTimer);
  if (!curveWanted()) { state.curve = null; drawCurve(); return; }
  $("curve-status").textContent = "· computing…";
  curveTimer = setTimeout(requestCurve, 250);
}

async function requestCurve() {
  const id = ++seq.curve;
  const params = curveParams();
  try {
    await apiStream("/api/curve/stream?" + new URLSearchParams(params), (r) => {
      if (r.superseded || id < seq.curveShown) return;
      if (r.error !== undefined && !r.stage) throw new Error(r.error);
      seq.curveShown = id;
      state.curve = r;
      if (id === seq.curve) {
        $("curve-status").textContent = r.stage === "preview"
          ? `· from ${r.resolution} px previews, refining…` : `· seed ${r.params.seed}, ${r.t.length} steps, ${r.ms} ms`;
      }
      drawCurve();
    });
  } catch (e) {
    if (id >= seq.curve) $("curve-status").textContent = `· ${e.message}`;
  }
}

function drawCurve() {
  const cv = $("curve");
  const ctx = cv.getContext("2d");
  const W = cv.width, H = cv.height, L = 44, R = 150, T = 10, B = 28;
  ctx.clearRect(0, 0, W, H);
  $("curve-section").hidden = !curveWanted();
  const c = state.curve;
  if (!c) return;
  const all = c.values.flat();
  let lo = c.type === "categorical" ? 0 : Math.min(...all), hi = c.type === "categorical" ? 1 : Math.max(...all);
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const x = (t) => L + t * (W - L - R), y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  ctx.strokeStyle = "#999"; ctx.fillStyle = "#444"; ctx.lineWidth = 1; ctx.font = "11px sans-serif";
  ctx.beginPath(); ctx.moveTo(L, T); ctx.lineTo(L, H - B); ctx.lineTo(W - R, H - B); ctx.stroke();
  for (const v of [lo, (lo + hi) / 2, hi]) ctx.fillText(v.toFixed(2), 4, y(v) + 4);
  const names = state.info.network.class_names;
  ctx.fillText(names[c.params.cls] || "A", L, H - 8);
  const endName = names[c.params.end] || "B";
  ctx.fillText(endName, W - R - ctx.measureText(endName).width, H - 8);
  c.values.forEach((vals, k) => {
    const col = COLOURS[k % COLOURS.length];
    ctx.strokeStyle = col; ctx.lineWidth = 2; ctx.beginPath();
    vals.forEach((v, i) => (i ? ctx.lineTo(x(c.t[i]), y(v)) : ctx.moveTo(x(c.t[i]), y(v))));
    ctx.stroke();
    ctx.fillStyle = col; ctx.fillRect(W - R + 10, T + 16 * k, 10, 10);
    ctx.fillStyle = "#222"; ctx.fillText(c.labels[k], W - R + 26, T + 9 + 16 * k);
  });
  const p = imageParams();
  const same = p.seed === c.params.seed && String(p.cls) === String(c.params.cls) && String(p.end) === String(c.params.end);
  if (p.mode === "blend" && same) {
    ctx.strokeStyle = "#000"; ctx.setLineDash([4, 3]); ctx.beginPath();
    ctx.moveTo(x(Number(p.t)), T); ctx.lineTo(x(Number(p.t)), H - B); ctx.stroke(); ctx.setLineDash([]);
  }
}

// ---------- network / classifier ----------

function shortPath(path, roots) {
  const root = roots.find((r) => path === r || path.startsWith(r + "/"));
  return root && roots.length === 1 ? path.slice(root.length + 1) || "." : path;
}

// The files found, with the loaded one selected (added first when it is not among them, e.g. `demo`).
function fillSelect(sel, items, current, roots) {
  sel.textContent = "";
  const match = current && items.find((it) => current === it || current.startsWith(it + "/"));
  const option = (value, text) => {
    const o = document.createElement("option");
    o.value = value; o.textContent = text;
    sel.appendChild(o);
  };
  if (current && !match) option(current, `${shortPath(current, roots)} (loaded)`);
  if (!items.length && !current) option("", "(none found under the data folders)");
  for (const it of items) option(it, shortPath(it, roots) + (it === match ? " (loaded)" : ""));
  if (current) sel.value = match || current;
}

async function loadFiles() {
  try {
    const f = await api("/api/files");
    const i = state.info || {};
    fillSelect($("network-file"), f.networks, i.network && i.network.source, f.roots);
    fillSelect($("classifier-file"), f.classifiers, i.classifier && i.classifier.source, f.roots);
  } catch (e) { showError(e.message); }
}

async function load(kind) {
  const path = $(kind + "-file").value;
  if (!path) { showError(`no ${kind} file found under the data folders`); return; }
  setStatus(`loading ${kind}…`, "busy");
  try {
    const info = await api("/api/load", { method: "POST", headers: { "Content-Type": "application/json" },
                                            body: JSON.stringify({ [kind]: path }) });
    if (info.superseded) return;
    showError("");
    applyInfo(info);
    loadFiles();
    setStatus("ready", "idle");
  } catch (e) { showError(e.message); setStatus("error", "error"); }
}

function applyInfo(info) {
  state.info = info;
  state.curve = null;
  $("device").textContent = info.device ? `device: ${info.device}` : "";
  const net = info.network, clf = info.classifier;
  $("network-info").textContent = net
    ? `${net.source}\n${net.resolution} px · ${net.c_dim ? net.c_dim + " classes: " + net.class_names.map((n, k) => `${k} ${n}`).join(", ") : "unconditional"}` +
      `\ntile ${net.tile_px ?? "?"} px / ${net.tile_um ?? "?"} µm · ${net.num_ws} ws`
    : "no network loaded";
  $("classifier-info").textContent = clf
    ? `${clf.source}\n${clf.model_type} · ${clf.outcome_labels.join(", ")}\ntile ${clf.tile_px} px / ${clf.tile_um ?? "?"} µm` +
      (info.bridge ? `\n${info.bridge}` : "")
    : "no classifier loaded";
  const names = net ? net.class_names : [];
  for (const [id, def] of [["cls", 0], ["end", 1]]) {
    const sel = $(id), keep = sel.value;
    sel.textContent = "";
    names.forEach((n, k) => {
      const o = document.createElement("option");
      o.value = String(k); o.textContent = `${k}: ${n}`;
      sel.appendChild(o);
    });
    sel.value = keep !== "" && Number(keep) < names.length ? keep : String(Math.min(def, Math.max(names.length - 1, 0)));
  }
  $("class-section").hidden = !net || net.c_dim === 0;
  buildLayerBoxes(net);
  document.dispatchEvent(new CustomEvent("workbench-info", { detail: info }));  // project.js listens
  updateModeSections();
  updateBlendLabels();
  changed(true);
}

function buildLayerBoxes(net) {
  const box = $("layer-boxes");
  box.textContent = "";
  if (!net) return;
  for (const l of net.layers) {
    const lab = document.createElement("label");
    lab.title = `${l.name}, ${l.group}`;
    const cb = document.createElement("input");
    cb.type = "checkbox"; cb.value = String(l.index); cb.checked = true; cb.dataset.group = l.group;
    cb.addEventListener("change", () => changed(false));
    lab.append(cb, ` w${l.index}`);
    const small = document.createElement("small");
    small.textContent = ` ${l.res}px`;
    lab.appendChild(small);
    box.appendChild(lab);
  }
}

function updateModeSections() {
  const m = mode(), net = state.info && state.info.network, cond = net && net.c_dim > 0;
  $("blend-section").hidden = !(cond && m === "blend");
  $("layers-section").hidden = !(cond && m === "layers");
  $("end").disabled = m === "class";
}

function updateBlendLabels() {
  const o = (id) => $(id).selectedOptions[0];
  $("blend-start").textContent = o("cls") ? o("cls").textContent : "A";
  $("blend-end").textContent = o("end") ? o("end").textContent : "B";
}

// ---------- saved seeds ----------

function savedList() {
  try { return JSON.parse(localStorage.getItem(SAVED_KEY) || "[]"); } catch (e) { return []; }
}

function storeSaved(list) {
  localStorage.setItem(SAVED_KEY, JSON.stringify(list));
  drawSaved();
}

function fileName(p) {
  let name = `seed${String(p.seed).padStart(4, "0")}`;
  if (p.cls !== undefined) name += `-class${p.cls}`;
  if (p.mode === "blend") name += `-to${p.end}-t${Number(p.t).toFixed(2)}`;
  if (p.mode === "layers") name += `-mix${p.end}-f${Number(p.f).toFixed(2)}-L${(p.layers || "none").replaceAll(",", ".")}`;
  return name + ".png";
}

function saveCurrent() {
  const r = state.last;
  if (!r) return;
  const a = document.createElement("a");
  a.href = r.image; a.download = fileName(r.params);
  document.body.appendChild(a); a.click(); a.remove();
  const pred = r.prediction;
  const entry = Object.assign({}, r.params, {
    network: state.info.network.source,
    class_a_name: r.params.cls != null ? state.info.network.class_names[r.params.cls] : "",
    class_b_name: r.params.end != null ? state.info.network.class_names[r.params.end] : "",
    prediction: pred ? (pred.top || pred.values.map((v) => v.toFixed(4)).join(" ")) : "",
    values: pred ? pred.values : [], labels: pred ? pred.labels : [], file: a.download,
  });
  storeSaved(savedList().concat([entry]));
}

function describe(e) {
  if (e.mode === "blend") return `${e.class_a_name} → ${e.class_b_name}, t=${Number(e.t).toFixed(2)}, ψ=${e.psi}, ${e.noise}`;
  if (e.mode === "layers") return `${e.class_a_name} + ${e.class_b_name} layers [${e.layers}] f=${Number(e.f).toFixed(2)}, ψ=${e.psi}, ${e.noise}`;
  return `${e.class_a_name || "unconditional"}, ψ=${e.psi}, ${e.noise}`;
}

function drawSaved() {
  const body = document.querySelector("#saved tbody");
  body.textContent = "";
  savedList().forEach((e, i) => {
    const tr = document.createElement("tr");
    for (const text of [String(e.seed), describe(e), e.prediction]) {
      const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
    }
    tr.title = "click to go back to these settings";
    tr.addEventListener("click", () => restore(e));
    const td = document.createElement("td");
    const rm = document.createElement("button");
    rm.textContent = "×"; rm.title = "remove";
    rm.addEventListener("click", (ev) => { ev.stopPropagation(); const l = savedList(); l.splice(i, 1); storeSaved(l); });
    td.appendChild(rm); tr.appendChild(td);
    body.appendChild(tr);
  });
}

function restore(e) {
  $("seed").value = String(e.seed);
  if (e.cls != null) $("cls").value = String(e.cls);
  if (e.end != null) $("end").value = String(e.end);
  document.querySelector(`input[name="mode"][value="${e.mode}"]`).checked = true;
  if (e.mode === "blend") $("t").value = e.t;
  if (e.mode === "layers") {
    const set = new Set((e.layers || "").split(",").filter((x) => x !== "").map(String));
    document.querySelectorAll("#layer-boxes input").forEach((b) => { b.checked = set.has(b.value); });
    $("f").value = e.f;
  }
  $("psi").value = e.psi; $("noise").value = e.noise;
  updateModeSections(); updateBlendLabels();
  changed(true);
}

function csvCell(v) {
  const s = v == null ? "" : String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

function exportCsv() {
  const list = savedList();
  const labels = [...new Set(list.flatMap((e) => e.labels || []))];
  const cols = ["seed", "mode", "cls", "class_a_name", "end", "class_b_name", "t", "layers", "f", "psi", "noise",
                "prediction", ...labels.map((l) => `pred_${l}`), "file", "network"];
  const rows = list.map((e) => cols.map((c) => {
    if (c.startsWith("pred_")) { const k = (e.labels || []).indexOf(c.slice(5)); return k >= 0 ? e.values[k] : ""; }
    if (c === "t" && e.mode !== "blend") return "";
    if ((c === "layers" || c === "f") && e.mode !== "layers") return "";
    return e[c];
  }).map(csvCell).join(","));
  const blob = new Blob([[cols.join(","), ...rows].join("\n") + "\n"], { type: "text/csv" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = "saved_seeds.csv";
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// ---------- wiring ----------

function wire() {
  $("seed-prev").addEventListener("click", () => setSeed(seedValue() - 1));
  $("seed-next").addEventListener("click", () => setSeed(seedValue() + 1));
  $("seed-random").addEventListener("click", () => setSeed(Math.floor(Math.random() * 100000)));
  $("seed").addEventListener("change", () => setSeed(seedValue()));
  for (const id of ["cls", "end"]) $(id).addEventListener("change", () => { updateBlendLabels(); changed(true); });
  for (const id of ["psi", "noise"]) $(id).addEventListener(id === "psi" ? "input" : "change", () => changed(id === "noise"));
  $("psi").addEventListener("change", () => scheduleCurve());
  for (const id of ["t", "f"]) $(id).addEventListener("input", () => changed(false));
  document.querySelectorAll('input[name="mode"]').forEach((r) => r.addEventListener("change", () => {
    updateModeSections(); changed(false);
  }));
  document.querySelectorAll("[data-preset]").forEach((b) => b.addEventListener("click", () => {
    const g = b.dataset.preset;
    document.querySelectorAll("#layer-boxes input").forEach((cb) => {
      cb.checked = g === "all" || cb.dataset.group === g;
    });
    changed(false);
  }));
  $("network-load").addEventListener("click", () => load("network"));
  $("classifier-load").addEventListener("click", () => load("classifier"));
  $("save").addEventListener("click", saveCurrent);
  $("export").addEventListener("click", exportCsv);
  $("clear-saved").addEventListener("click", () => storeSaved([]));
  document.addEventListener("keydown", (ev) => {
    const tag = ev.target.tagName;
    if (ev.altKey || ev.ctrlKey || ev.metaKey || tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    if (ev.key === "ArrowLeft") { setSeed(seedValue() - 1); ev.preventDefault(); }
    else if (ev.key === "ArrowRight") { setSeed(seedValue() + 1); ev.preventDefault(); }
    else if (ev.key === "s" || ev.key === "S") { saveCurrent(); ev.preventDefault(); }
  });
}

async function start() {
  wire();
  drawSaved();
  try {
    applyInfo(await api("/api/info"));
    if (!state.info.network) setStatus("load a network", "idle");
  } catch (e) { showError(e.message); setStatus("error", "error"); }
  loadFiles();
}

start();
