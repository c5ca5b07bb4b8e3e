// Workbench "Real tile" panel: project an uploaded PNG or a TFRecord tile into the GAN (/api/project), poll
// its progress (cancellable), then show real | reconstruction | counterfactual, the counterfactual moved from
// the tile's class toward another by t, with the classifier's prediction at each t.
// Uses app.js's globals ($, api, state); one counterfactual request at a time, the newest wanted t next.
"use strict";

const proj = { id: null, cls: null, timer: null, busy: false, wanted: null, shown: null, names: [] };

function projError(msg) {
  $("proj-error").hidden = !msg;
  $("proj-error").textContent = msg || "";
}

function projSource() { return document.querySelector('input[name="proj-source"]:checked').value; }

function projClasses(info) {
  const net = info && info.network;
  proj.names = net ? net.class_names : [];
  const sel = $("proj-cls"), keep = sel.value;
  sel.textContent = "";
  const option = (parent, value, text) => {
    const o = document.createElement("option");
    o.value = value; o.textContent = text;
    parent.appendChild(o);
  };
  if (net && net.c_dim > 0) option(sel, "", "auto (best fit)");
  proj.names.forEach((n, k) => option(sel, String(k), `${k}: ${n}`));
  sel.value = [...sel.options].some((o) => o.value === keep) ? keep : sel.options.length ? sel.options[0].value : "";
  $("real-section").hidden = !net;
  fillEnd();
}

function fillEnd() {
  const sel = $("proj-end"), keep = sel.value;
  sel.textContent = "";
  proj.names.forEach((n, k) => {
    if (k === proj.cls) return;
    const o = document.createElement("option");
    o.value = String(k); o.textContent = `${k}: ${n}`;
    sel.appendChild(o);
  });
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  $("proj-t-start").textContent = proj.cls != null ? `${proj.cls}: ${proj.names[proj.cls] ?? ""}` : "A";
  $("proj-t-end").textContent = sel.selectedOptions[0] ? sel.selectedOptions[0].textContent : "B";
}

function readDataUrl(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(new Error(`could not read ${file.name}`));
    r.readAsDataURL(file);
  });
}

async function projRequest() {
  const body = { steps: parseInt($("proj-steps").value, 10) || 300, space: $("proj-space").value };
  if ($("proj-cls").value !== "") body.cls = parseInt($("proj-cls").value, 10);
  if (projSource() === "upload") {
    const file = $("proj-file").files[0];
    if (!file) throw new Error("choose a PNG tile to upload");
    body.image = await readDataUrl(file);
  } else {
    if (!$("proj-tfrecord").value.trim()) throw new Error("give a TFRecord path inside the data folders");
    body.tfrecord = $("proj-tfrecord").value.trim();
    body.index = parseInt($("proj-index").value, 10) || 0;
  }
  return body;
}

function projRunning(running) {
  $("proj-start").disabled = running;
  $("proj-cancel").disabled = !running;
}

async function projStart() {
  projError("");
  clearTimeout(proj.timer);
  try {
    const body = await projRequest();
    proj.id = null;  // Cancel acts on the new job only once it has an id
    $("proj-start").disabled = true;
    $("proj-status").textContent = "starting…";
    const r = await api("/api/project", { method: "POST", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify(body) });
    Object.assign(proj, { id: r.id, cls: r.cls, wanted: null, shown: null });
    $("proj-section").hidden = false;
    for (const id of ["proj-real", "proj-recon", "proj-cf"]) $(id).removeAttribute("src");
    $("proj-t").disabled = true;
    $("proj-t").value = "0";
    $("proj-prediction").textContent = "";
    fillEnd();
    projRunning(true);
    projPoll(r.id);
  } catch (e) {
    projRunning(false);
    $("proj-status").textContent = "";
    projError(e.message);
  }
}

async function projPoll(id) {
  if (id !== proj.id) return;
  let s;
  try { s = await api(`/api/project/${id}`); } catch (e) { projRunning(false); projError(e.message); return; }
  if (id !== proj.id) return;
  $("proj-real").src = s.real;
  $("proj-progress").max = s.steps;
  $("proj-progress").value = s.step;
  const loss = s.loss != null ? ` · loss ${s.loss.toFixed(4)}` : "";
  $("proj-status").textContent = `${s.state} · step ${s.step}/${s.steps}${loss}`;
  if (s.state === "running") { proj.timer = setTimeout(() => projPoll(id), 300); return; }
  projRunning(false);
  if (s.state === "error") { projError(s.error); return; }
  if (s.state !== "done") return;
  $("proj-recon").src = s.recon;
  $("proj-recon-caption").textContent = `reconstruction · class ${s.cls}: ${proj.names[s.cls] ?? ""}`;
  $("proj-t").disabled = !$("proj-end").value;
  projCounterfactual();
}

async function projCancel() {
  if (proj.id == null) return;
  try { await api(`/api/project/${proj.id}`, { method: "DELETE" }); } catch (e) { projError(e.message); }
}

function projPrediction(pred) {
  if (!pred) return "no classifier loaded";
  const vals = pred.values.map((v, k) => `${pred.labels[k]} ${pred.type === "categorical" ? (v * 100).toFixed(1) + "%" : v.toFixed(4)}`);
  return (pred.top ? `prediction: ${pred.top} · ` : "prediction: ") + vals.join(" · ");
}

// The counterfactual at the slider's t: sent when none is in flight, else once the current one returns.
async function projCounterfactual() {
  $("proj-t-value").textContent = Number($("proj-t").value).toFixed(2);
  const end = $("proj-end").value;
  if (proj.id == null || $("proj-t").disabled || end === "") return;
  proj.wanted = { id: proj.id, end, t: $("proj-t").value };
  if (proj.busy) return;
  proj.busy = true;
  try {
    while (proj.wanted && (!proj.shown || JSON.stringify(proj.wanted) !== JSON.stringify(proj.shown))) {
      const w = proj.wanted;
      const r = await api(`/api/project/${w.id}/counterfactual?` + new URLSearchParams({ end: w.end, t: w.t }));
      if (w.id !== proj.id) break;
      proj.shown = w;
      $("proj-cf").src = r.image;
      $("proj-cf-caption").textContent = `counterfactual · t = ${Number(w.t).toFixed(2)} toward ${w.end}: ${proj.names[w.end] ?? ""}`;
      $("proj-prediction").textContent = projPrediction(r.prediction);
    }
    projError("");
  } catch (e) { projError(e.message); }
  proj.busy = false;
}

function projWire() {
  document.querySelectorAll('input[name="proj-source"]').forEach((r) => r.addEventListener("change", () => {
    $("proj-upload-row").hidden = projSource() !== "upload";
    $("proj-tfrecord-row").hidden = projSource() !== "tfrecord";
  }));
  $("proj-start").addEventListener("click", projStart);
  $("proj-cancel").addEventListener("click", projCancel);
  $("proj-t").addEventListener("input", projCounterfactual);
  $("proj-end").addEventListener("change", () => { fillEnd(); projCounterfactual(); });
  document.addEventListener("workbench-info", (ev) => projClasses(ev.detail));
  projClasses(state.info);
}

projWire();
