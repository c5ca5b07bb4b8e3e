// Teaching page: quizzes (name the class, real or synthetic), lessons from saved seeds, scores.
// Questions arrive as PNG data URLs with opaque ids; the truth arrives only with the answer's feedback.
"use strict";

const $ = (id) => document.getElementById(id);
const quiz = { id: null, question: null, next: null, image: null };
const lesson = { steps: [], pos: 0 };

async function api(path, body) {
  const options = body === undefined ? {} :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const resp = await fetch(path, options);
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (!resp.ok) throw new Error((data && data.detail) || `HTTP ${resp.status}`);
  return data;
}

function setStatus(text, kind) { const s = $("status"); s.textContent = text; s.className = `status ${kind}`; }

async function busy(fn) {
  setStatus("working…", "busy");
  $("error").hidden = true;
  try { await fn(); setStatus("ready", "idle"); } catch (e) {
    $("error").textContent = e.message; $("error").hidden = false; setStatus("error", "error");
  }
}

function show(which) {
  for (const id of ["question-view", "feedback-view", "lesson-view", "summary-view"]) $(id).hidden = !which.includes(id);
}

function figure(src, caption, here) {
  const f = document.createElement("figure");
  if (here) f.className = "here";
  const img = document.createElement("img"); img.src = src; img.alt = caption;
  const c = document.createElement("figcaption"); c.textContent = caption;
  f.append(img, c);
  return f;
}

function showQuestion(q) {
  quiz.question = q; quiz.image = q.image;
  for (const id of ["verdict", "feedback-text", "strip", "feedback-prediction"]) $(id).replaceChildren();  // no old truth in the DOM
  $("question-title").textContent = `Question ${q.number} of ${q.of}` +
    (q.mode === "real" ? ": real or synthetic?" : ": which class?");
  $("question-image").src = q.image;
  const box = $("choices"); box.replaceChildren();
  for (const c of q.choices) {
    const b = document.createElement("button");
    const value = typeof c === "string" ? c : c.value;
    b.textContent = typeof c === "string" ? c : c.name;
    b.className = "choice";
    b.dataset.value = String(value);
    b.addEventListener("click", () => busy(() => answer(value)));
    box.append(b);
  }
  show(["question-view"]);
}

async function startQuiz() {
  const mode = document.querySelector("input[name=quiz-mode]:checked").value;
  const out = await api("/api/quiz", { learner: $("learner").value.trim(), mode,
    questions: Number($("questions").value), seed: Number($("quiz-seed").value), label: $("label").value.trim() || "quiz" });
  quiz.id = out.quiz;
  showQuestion(out.question);
}

async function answer(value) {
  for (const b of document.querySelectorAll("#choices button")) b.disabled = true;
  const res = await api(`/api/quiz/${encodeURIComponent(quiz.id)}/answer`, { question: quiz.question.id, answer: value });
  quiz.next = res.next;
  const fb = res.feedback;
  $("verdict").textContent = res.correct ? "Correct" : "Not quite";
  $("verdict").className = res.correct ? "verdict-right" : "verdict-wrong";
  $("feedback-text").textContent = `The answer: ${fb.truth_name}` +
    (fb.t !== undefined ? `\nThis tile sits at t = ${fb.t.toFixed(2)} of the blend ${fb.class_names[0]} → ${fb.class_names[1]} (seed ${fb.seed}).` : "");
  const strip = $("strip"); strip.replaceChildren();
  if (fb.strip) {
    const items = fb.strip.map((s) => ({ t: s.t, src: s.image, here: false }));
    items.push({ t: fb.t, src: quiz.image, here: true });
    items.sort((a, b) => a.t - b.t || (a.here ? 1 : -1));
    for (const it of items) strip.append(figure(it.src, it.here ? `this tile, t = ${it.t.toFixed(2)}` : `t = ${it.t}`, it.here));
  }
  const p = fb.prediction;
  $("feedback-prediction").textContent = p ? "Classifier: " + p.labels.map((l, k) => `${l} ${p.values[k].toFixed(3)}`).join(", ") : "";
  $("next").textContent = res.next ? "Next question" : "See my score";
  show(["question-view", "feedback-view"]);
}

async function nextQuestion() {
  if (quiz.next) { showQuestion(quiz.next); return; }
  const s = await api(`/api/quiz/${encodeURIComponent(quiz.id)}/summary`);
  showSummary(`Your score: ${s.correct} of ${s.answered}`, s);
}

function pct(x) { return x == null ? "–" : `${Math.round(100 * x)}%`; }

function showSummary(title, s) {
  $("summary-title").textContent = title;
  $("summary-text").textContent = `answered ${s.answered}, correct ${s.correct} (${pct(s.accuracy)})` +
    (s.mean_ms != null ? `, mean response ${(s.mean_ms / 1000).toFixed(1)} s` : "");
  const body = $("summary-table").querySelector("tbody"); body.replaceChildren();
  const groups = [["class", s.by_class], ["difficulty", s.by_difficulty], ["learner", s.by_learner], ["label", s.by_label]];
  for (const [kind, table] of groups) {
    for (const [k, v] of Object.entries(table || {})) {
      const tr = document.createElement("tr");
      for (const cell of [`${kind} ${k}`, v.answered, v.correct, pct(v.accuracy), (v.mean_ms / 1000).toFixed(1)]) {
        const td = document.createElement("td"); td.textContent = String(cell); tr.append(td);
      }
      body.append(tr);
    }
  }
  plot(s.by_difficulty || {});
  show(["summary-view"]);
}

function plot(byDifficulty) {  // accuracy per difficulty as bars
  const svg = $("summary-plot"), ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const entries = Object.entries(byDifficulty), w = 420, h = 150, bw = entries.length ? (w - 40) / entries.length : 0;
  const el = (name, attrs, text) => {
    const e = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e); return e;
  };
  el("line", { x1: 30, y1: h, x2: w, y2: h, stroke: "#999" });
  el("text", { x: 0, y: 12, "font-size": 10 }, "100%");
  entries.forEach(([k, v], i) => {
    const bh = (h - 20) * v.accuracy, x = 35 + i * bw;
    el("rect", { x, y: h - bh, width: bw * 0.7, height: bh, fill: "#7a3b8f" });
    el("text", { x, y: h + 14, "font-size": 10 }, `distance ${k}`);
    el("text", { x, y: h - bh - 3, "font-size": 10 }, pct(v.accuracy));
  });
}

async function loadSummary() {
  const learner = $("summary-learner").value.trim();
  const s = await api("/api/teach/summary" + (learner ? `?learner=${encodeURIComponent(learner)}` : ""));
  showSummary(learner ? `Summary: ${learner}` : "Summary: whole class", s);
}

function exportCsv() {
  const learner = $("summary-learner").value.trim();
  const a = document.createElement("a");
  a.href = "/api/teach/results.csv" + (learner ? `?learner=${encodeURIComponent(learner)}` : "");
  document.body.appendChild(a); a.click(); a.remove();
}

async function openLesson() {
  lesson.steps = (await api("/api/lesson", { file: $("lesson-file").value.trim() })).steps;
  lesson.pos = 0;
  await showStep();
}

async function showStep() {
  const step = lesson.steps[lesson.pos];
  const out = await api(`/api/teach/strip?seed=${step.seed}&cls=${step.cls}` + (step.end == null ? "" : `&end=${step.end}`));
  $("lesson-title").textContent = `Seed ${step.seed}: class ${out.cls} → class ${out.end}`;
  $("lesson-strip").replaceChildren(...out.strip.map((s) => figure(s.image, `t = ${s.t}`, false)));
  $("lesson-note").textContent = step.note;
  $("lesson-pos").textContent = `${lesson.pos + 1} / ${lesson.steps.length}`;
  $("lesson-prev").disabled = lesson.pos === 0;
  $("lesson-next").disabled = lesson.pos >= lesson.steps.length - 1;
  show(["lesson-view"]);
}

$("start").addEventListener("click", () => busy(startQuiz));
$("next").addEventListener("click", () => busy(nextQuestion));
$("summary-load").addEventListener("click", () => busy(loadSummary));
$("summary-csv").addEventListener("click", exportCsv);
$("lesson-load").addEventListener("click", () => busy(openLesson));
$("lesson-prev").addEventListener("click", () => { lesson.pos--; busy(showStep); });
$("lesson-next").addEventListener("click", () => { lesson.pos++; busy(showStep); });
