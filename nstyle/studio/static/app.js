// nstyle studio's page: plain JavaScript, no build step. The server pushes the list of runs,
// progress and live frames as server-sent events (/api/events); everything else is fetch().
"use strict";

const $ = (id) => document.getElementById(id);
const KIND_NAMES = { image: "image", audio: "sound", series: "series", volume: "volume" };
const state = {
  kinds: {}, kind: "image", runs: [], selected: null, history: [], parent: null,
  content: {}, styles: {}, compare: [], lastFrame: {},
};

// ---------------------------------------------------------------- talking to the server

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = { detail: text }; }
  if (!response.ok) throw new Error((body && body.detail) || `${response.status} ${response.statusText}`);
  return body;
}

function say(text) { $("message").textContent = text || ""; }

// ---------------------------------------------------------------- kinds and the settings form

async function start() {
  state.kinds = await api("api/kinds");
  const nav = $("kinds");
  for (const kind of Object.keys(state.kinds)) {
    const b = document.createElement("button");
    b.textContent = KIND_NAMES[kind] || kind;
    b.dataset.kind = kind;
    b.id = `kind-${kind}`;
    b.onclick = () => chooseKind(kind);
    nav.appendChild(b);
  }
  chooseKind("image");
  listen();
}

function chooseKind(kind) {
  state.kind = kind;
  state.parent = null;
  for (const b of $("kinds").children) b.classList.toggle("on", b.dataset.kind === kind);
  for (const role of ["content", "style"]) {
    const select = $(`${role}-sample`);
    select.innerHTML = '<option value="">sample…</option>';
    for (const name of state.kinds[kind].samples) select.add(new Option(name, name));
    $(`${role}-file`).accept = state.kinds[kind].extensions.join(",");
  }
  buildForm(kind);
  showChosen();
  showContinue();
}

function buildForm(kind, values = {}) {
  const main = $("main-options"), more = $("more-options");
  main.innerHTML = ""; more.innerHTML = "";
  for (const opt of state.kinds[kind].options) {
    if (opt.name === "style_blend") continue;  // the weights next to each style
    (opt.main ? main : more).appendChild(field(opt, values[opt.name]));
  }
}

function shown(value) { return value === null || value === undefined ? "" : String(value); }

function field(opt, value) {
  const row = document.createElement("div");
  row.className = "field";
  const label = document.createElement("label");
  label.textContent = opt.name.replace(/_/g, " ");
  label.title = opt.help;
  label.htmlFor = `opt-${opt.name}`;
  row.appendChild(label);
  let input;
  if (opt.name === "style_weight") {
    input = strengthSlider(opt, value);
  } else if (opt.choices) {
    input = document.createElement("select");
    input.add(new Option(`default (${shown(opt.default) || "–"})`, ""));
    for (const c of opt.choices) input.add(new Option(String(c), String(c)));
    input.value = value !== undefined && value !== null ? String(value) : "";
  } else {
    input = document.createElement("input");
    input.type = "text";
    input.placeholder = shown(opt.default) || "default";
    input.value = shown(value);
  }
  if (!input.id) input.id = `opt-${opt.name}`;
  input.dataset.option = opt.name;
  input.title = opt.help;
  row.appendChild(input);
  return row;
}

// β on a log scale: the slider moves it by decades around the kind's default.
function strengthSlider(opt, value) {
  const base = opt.effective_default || opt.default || 1;
  const box = document.createElement("span");
  box.id = "opt-style_weight";
  box.className = "strength";
  const slider = document.createElement("input");
  slider.type = "range"; slider.min = -3; slider.max = 3; slider.step = 0.25;
  slider.value = value ? Math.log10(value / base) : 0;
  slider.id = "style-strength";
  slider.setAttribute("aria-label", "style strength (beta, log scale)");
  const out = document.createElement("span");
  out.className = "muted small";
  const update = () => {
    const v = Number(slider.value);
    box.dataset.value = v === 0 && !value ? "" : String(Number((base * 10 ** v).toPrecision(3)));
    out.textContent = ` β = ${Number((base * 10 ** v).toPrecision(3)).toExponential(1)}${v === 0 ? " (default)" : ""}`;
  };
  slider.oninput = () => { value = null; update(); };
  update();
  box.append(slider, out);
  return box;
}

function formValues() {
  const values = {};
  for (const el of document.querySelectorAll("[data-option]")) {
    const v = el.classList.contains("strength") ? el.dataset.value : el.value;
    if (v !== undefined && v !== "") values[el.dataset.option] = v;
  }
  return values;
}

// ---------------------------------------------------------------- content and styles

function chosenFor(kind) {
  if (!state.content[kind]) state.content[kind] = null;
  if (!state.styles[kind]) state.styles[kind] = [];
  return { content: state.content[kind], styles: state.styles[kind] };
}

async function upload(file, role) {
  say(`reading ${file.name}…`);
  const kind = state.kind;
  const query = `api/uploads?kind=${kind}&name=${encodeURIComponent(file.name)}`;
  const up = await api(query, { method: "POST", body: file });
  add(up, role);
  say("");
}

async function pickSample(name, role) {
  if (!name) return;
  say(`loading ${name}…`);
  const up = await api("api/samples", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ kind: state.kind, name }),
  });
  add(up, role);
  say("");
}

function add(up, role) {
  chosenFor(up.kind);
  if (role === "content") state.content[up.kind] = up;
  else state.styles[up.kind].push({ ...up, weight: 1 });
  showChosen();
}

function uploadItem(up, role, index) {
  const item = document.createElement("div");
  item.className = "item";
  item.dataset.upload = up.id;
  if (up.kind === "audio") {
    const audio = document.createElement("audio");
    audio.controls = true; audio.src = `api/uploads/${up.id}/file`; audio.preload = "none";
    const name = document.createElement("span"); name.className = "name"; name.textContent = up.name;
    const col = document.createElement("div"); col.style.flex = "1"; col.append(name, audio);
    item.append(thumb(`api/uploads/${up.id}/view`, up.kind), col);
  } else {
    const name = document.createElement("span"); name.className = "name"; name.textContent = up.name;
    name.title = `${up.name} (${up.shape.join(" × ")})`;
    item.append(thumb(`api/uploads/${up.id}/view`, up.kind), name);
  }
  if (role === "style") {
    const w = document.createElement("input");
    w.className = "weight"; w.value = up.weight; w.title = "blend weight";
    w.setAttribute("aria-label", `weight of ${up.name}`);
    w.onchange = () => { up.weight = w.value; };
    const x = document.createElement("button");
    x.className = "button small"; x.textContent = "×"; x.title = "remove";
    x.onclick = () => { state.styles[up.kind].splice(index, 1); showChosen(); };
    item.append(w, x);
  }
  return item;
}

function thumb(url, kind) {
  if (kind === "series") {
    const c = document.createElement("canvas");
    c.width = 112; c.height = 112; c.style.width = "56px"; c.style.height = "56px";
    api(url).then((data) => drawTraces(c, data)).catch(() => {});
    return c;
  }
  const img = document.createElement("img");
  img.src = url; img.alt = "";
  return img;
}

function showChosen() {
  const { content, styles } = chosenFor(state.kind);
  const c = $("content-chosen"), s = $("style-chosen");
  c.innerHTML = ""; s.innerHTML = "";
  if (content) c.appendChild(uploadItem(content, "content", 0));
  styles.forEach((up, i) => s.appendChild(uploadItem(up, "style", i)));
}

function wireDrops() {
  for (const role of ["content", "style"]) {
    const zone = $(`${role}-drop`);
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", async (e) => {
      e.preventDefault(); zone.classList.remove("over");
      const files = [...e.dataTransfer.files];
      for (const f of role === "content" ? files.slice(0, 1) : files) await upload(f, role).catch((err) => say(err.message));
    });
    $(`${role}-file`).addEventListener("change", async (e) => {
      const files = [...e.target.files];
      for (const f of files) await upload(f, role).catch((err) => say(err.message));
      e.target.value = "";
    });
    $(`${role}-sample`).addEventListener("change", (e) => {
      pickSample(e.target.value, role).catch((err) => say(err.message));
      e.target.value = "";
    });
  }
}

// ---------------------------------------------------------------- starting, stopping, continuing

async function startRun() {
  const { content, styles } = chosenFor(state.kind);
  if (!content) return say("choose a content first");
  if (!styles.length) return say("choose at least one style");
  const body = {
    kind: state.kind, content: content.id, styles: styles.map((s) => s.id), settings: formValues(),
    parent: state.parent,
  };
  if (styles.length > 1) body.blend = styles.map((s) => s.weight);
  try {
    const run = await api("api/runs", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    say("");
    state.parent = null;
    showContinue();
    select(run.id);
  } catch (err) { say(err.message); }
}

async function continueFrom() {
  const run = state.runs.find((r) => r.id === state.selected);
  if (!run || !run.result) return;
  if (state.kind !== run.kind) chooseKind(run.kind);
  const uploads = await Promise.all([run.content, ...run.styles].map((id) => uploadMeta(id)));
  state.content[run.kind] = uploads[0];
  state.styles[run.kind] = uploads.slice(1).map((u) => ({ ...u, weight: 1 }));
  buildForm(run.kind, run.settings);
  state.parent = run.id;
  showChosen();
  showContinue();
}

async function uploadMeta(id) {
  const known = [...Object.values(state.content), ...Object.values(state.styles).flat()].find((u) => u && u.id === id);
  return known || api(`api/uploads/${id}`);
}

function showContinue() {
  const note = $("continue-note");
  note.hidden = !state.parent;
  note.innerHTML = "";
  if (!state.parent) return;
  note.append(`Starts from the result of run ${state.parent}; change the settings, then Start. `);
  const x = document.createElement("button");
  x.className = "button small"; x.textContent = "start fresh";
  x.onclick = () => { state.parent = null; showContinue(); };
  note.appendChild(x);
}

// ---------------------------------------------------------------- the selected run

async function select(id) {
  state.selected = id;
  state.history = [];
  const run = await api(`api/runs/${id}`);
  state.history = run.history.map((h) => h.slice(0, 4));
  merge(run);
  showRun(true);
  renderRuns();
}

function merge(run) {
  const i = state.runs.findIndex((r) => r.id === run.id);
  if (i >= 0) state.runs[i] = { ...state.runs[i], ...run }; else state.runs.push(run);
}

function selectedRun() { return state.runs.find((r) => r.id === state.selected); }

function showRun(reloadPicture) {
  const run = selectedRun();
  if (!run) return;
  const finished = ["done", "stopped", "failed"].includes(run.status);
  $("run-title").innerHTML = "";
  $("run-title").append(`run ${run.id} · ${KIND_NAMES[run.kind]} · `);
  const st = document.createElement("b");
  st.className = `status-${run.status}`; st.id = "run-status"; st.textContent = run.status;
  $("run-title").append(st);
  if (run.error) $("run-title").append(` — ${run.error}`);
  else if (run.note) $("run-title").append(` — ${run.note}`);
  $("stop").disabled = !["running", "queued"].includes(run.status);
  $("continue").disabled = !run.result;
  for (const [id, what] of [["download-result", "result"], ["download-config", "config"]]) {
    const a = $(id);
    a.setAttribute("aria-disabled", String(!run.result));
    if (run.result) a.href = `api/runs/${run.id}/${what}`; else a.removeAttribute("href");
  }
  if (finished && run.best) {
    $("status-line").textContent = `${run.status}: ${run.steps_done} steps in ${seconds(run.finished - run.started)}, ` +
      `best J = ${run.best.total.toPrecision(4)} at step ${run.best.step}`;
  } else if (run.status === "queued") {
    $("status-line").textContent = "waiting in the queue";
  }
  if (reloadPicture && run.result) showResult(run);
  else if (reloadPicture && state.lastFrame[run.id]) showFrame(state.lastFrame[run.id]);
  else if (reloadPicture) { $("frame").hidden = true; $("traces").hidden = true; }
  showPlayers(run);
  drawCurve();
}

function showResult(run) {
  $("slicer").hidden = run.kind !== "volume";
  if (run.kind === "series") {
    api(`api/runs/${run.id}/view`).then((data) => { $("frame").hidden = true; drawTraces($("traces"), data); });
    return;
  }
  $("traces").hidden = true;
  $("frame").hidden = false;
  $("frame").src = `api/runs/${run.id}/view?t=${run.finished}`;
  if (run.kind === "volume") setUpSlicer(run).catch((e) => say(e.message));
}

async function setUpSlicer(run) {
  const upload = await uploadMeta(run.content);
  const shape = upload.shape.slice(-3);
  const axis = $("slice-axis"), index = $("slice-index");
  const update = () => {
    index.max = shape[Number(axis.value)] - 1;
    $("slice-label").textContent = `slice ${index.value} / ${index.max}`;
    $("frame").src = `api/runs/${run.id}/slice?axis=${axis.value}&index=${index.value}`;
  };
  axis.onchange = () => { index.value = Math.floor(shape[Number(axis.value)] / 2); update(); };
  index.oninput = update;
  index.max = shape[0] - 1; index.value = Math.floor(shape[0] / 2);
  $("slice-label").textContent = "move the slider to see every slice";
}

function showPlayers(run) {
  const box = $("players");
  box.innerHTML = "";
  if (run.kind !== "audio") return;
  const sources = [["content C", `api/uploads/${run.content}/file`], ["style S", `api/uploads/${run.styles[0]}/file`]];
  if (run.result) sources.push(["result G", `api/runs/${run.id}/result`]);
  for (const [label, src] of sources) {
    const d = document.createElement("div");
    const a = document.createElement("audio");
    a.controls = true; a.src = src; a.preload = "none";
    d.append(label, a);
    box.appendChild(d);
  }
}

function showFrame(frame) {
  if (frame.mime === "application/json") {
    $("frame").hidden = true;
    drawTraces($("traces"), frame.data);
    return;
  }
  $("traces").hidden = true;
  const img = $("frame");
  img.hidden = false;
  img.src = frame.data;
  img.dataset.version = frame.version;
}

function seconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "–";
  return s < 90 ? `${s.toFixed(0)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

// ---------------------------------------------------------------- drawing

function drawTraces(canvas, leads) {
  canvas.hidden = false;
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, band = h / Math.max(leads.length, 1);
  ctx.fillStyle = "#111216"; ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = "#e0a84f"; ctx.lineWidth = 1;
  leads.forEach((lead, k) => {
    const lo = Math.min(...lead), hi = Math.max(...lead), span = hi - lo || 1;
    ctx.beginPath();
    lead.forEach((v, i) => {
      const x = (i / Math.max(lead.length - 1, 1)) * w, y = band * (k + 0.9) - ((v - lo) / span) * band * 0.8;
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
  });
}

function drawCurve() {
  const canvas = $("curve"), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 34;
  ctx.fillStyle = "#111216"; ctx.fillRect(0, 0, w, h);
  const pts = state.history.filter((p) => p[1] > 0);
  if (pts.length < 2) return;
  const logs = pts.flatMap((p) => p.slice(1).filter((v) => v > 0).map(Math.log10));
  const lo = Math.floor(Math.min(...logs)), hi = Math.ceil(Math.max(...logs));
  const x0 = pts[0][0], x1 = pts[pts.length - 1][0];
  const X = (s) => pad + ((s - x0) / Math.max(x1 - x0, 1)) * (w - pad - 8);
  const Y = (v) => h - 18 - ((Math.log10(v) - lo) / Math.max(hi - lo, 1)) * (h - 28);
  ctx.fillStyle = "#9a9da6"; ctx.font = "11px sans-serif";
  const every = Math.max(1, Math.ceil((hi - lo) / 5));
  for (let e = lo; e <= hi; e += every) ctx.fillText(`1e${e}`, 2, Y(10 ** e) + 4);
  ctx.fillText(`step ${x1}`, w - 60, h - 4);
  const series = [[1, "#e6e6e6", "J"], [2, "#58a6ff", "αJ_content"], [3, "#e0a84f", "βJ_style"]];
  series.forEach(([i, colour, name], k) => {
    ctx.strokeStyle = colour; ctx.beginPath();
    let started = false;
    for (const p of pts) {
      if (!(p[i] > 0)) continue;
      if (started) ctx.lineTo(X(p[0]), Y(p[i])); else { ctx.moveTo(X(p[0]), Y(p[i])); started = true; }
    }
    ctx.stroke();
    ctx.fillStyle = colour; ctx.fillText(name, pad + 10 + k * 90, 12);
  });
}

// ---------------------------------------------------------------- the list of runs and compare

function renderRuns() {
  const list = $("runs");
  list.innerHTML = "";
  const running = state.runs.filter((r) => r.status === "running").length;
  const queued = state.runs.filter((r) => r.status === "queued").length;
  $("queue-state").textContent = `${running} running, ${queued} waiting`;
  for (const run of [...state.runs].reverse()) {
    const li = document.createElement("li");
    li.dataset.run = run.id;
    li.dataset.status = run.status;
    li.classList.toggle("selected", run.id === state.selected);
    const img = document.createElement("img");
    if (run.result && run.kind !== "series") img.src = `api/runs/${run.id}/view?t=${run.finished}`;
    img.alt = "";
    const text = document.createElement("div");
    const j = run.best ? ` · J ${run.best.total.toPrecision(3)}` : "";
    text.innerHTML = `<div>${KIND_NAMES[run.kind]} <span class="status-${run.status}">${run.status}</span></div>` +
      `<div class="muted small">${run.id.slice(0, 6)} · ${run.steps_done}/${run.total_steps || "?"} steps${j}</div>`;
    const pick = document.createElement("span");
    for (const slot of ["A", "B"]) {
      const label = document.createElement("label");
      label.className = "small";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.dataset.compare = slot;
      box.checked = state.compare[slot === "A" ? 0 : 1] === run.id;
      box.disabled = !run.result;
      box.onclick = (e) => { e.stopPropagation(); setCompare(slot, box.checked ? run.id : null); };
      label.append(box, slot);
      pick.appendChild(label);
    }
    li.append(img, text, pick);
    li.onclick = () => select(run.id);
    list.appendChild(li);
  }
}

function setCompare(slot, id) {
  state.compare[slot === "A" ? 0 : 1] = id;
  renderRuns();
  const [a, b] = state.compare;
  $("compare").hidden = !(a && b);
  if (!(a && b)) return;
  for (const [fig, runId] of [["compare-a", a], ["compare-b", b]]) {
    const run = state.runs.find((r) => r.id === runId);
    const figure = $(fig);
    figure.innerHTML = "";
    if (run.kind === "series") {
      const c = document.createElement("canvas"); c.width = 600; c.height = 260;
      api(`api/runs/${run.id}/view`).then((d) => drawTraces(c, d));
      figure.appendChild(c);
    } else {
      const img = document.createElement("img"); img.src = `api/runs/${run.id}/view?t=${run.finished}`;
      figure.appendChild(img);
    }
    const caption = document.createElement("figcaption");
    const changed = Object.entries(run.settings).map(([k, v]) => `${k}=${v}`).join(", ") || "defaults";
    caption.textContent = `run ${run.id} · J ${run.best ? run.best.total.toPrecision(4) : "–"} · ${changed}`;
    figure.appendChild(caption);
  }
}

// ---------------------------------------------------------------- events from the server

function listen() {
  const events = new EventSource("api/events");
  events.addEventListener("runs", (e) => {
    const runs = JSON.parse(e.data).runs;
    const before = selectedRun();
    state.runs = runs;
    renderRuns();
    const now = selectedRun();
    if (now) showRun(!before || before.status !== now.status || before.result !== now.result);
  });
  events.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    const run = state.runs.find((r) => r.id === p.id);
    if (run) {
      run.steps_done = p.step; run.total_steps = p.total_steps;
      const line = document.querySelector(`#runs li[data-run="${p.id}"] .small`);
      if (line) line.textContent = `${p.id.slice(0, 6)} · ${p.step}/${p.total_steps} steps · J ${p.J.toPrecision(3)}`;
    }
    if (p.id !== state.selected) return;
    state.history.push(p.point);
    $("status-line").textContent = `scale ${p.scale + 1}/${p.scales} (${p.side}) · step ${p.step}/${p.total_steps} · ` +
      `${seconds(p.elapsed)} · ${p.left === null ? "" : "about " + seconds(p.left) + " left · "}J = ${p.J.toPrecision(4)}`;
    drawCurve();
  });
  events.addEventListener("frame", (e) => {
    const frame = JSON.parse(e.data);
    state.lastFrame[frame.id] = frame;
    const run = selectedRun();
    if (frame.id === state.selected && run && !run.result) showFrame(frame);
    const thumbnail = document.querySelector(`#runs li[data-run="${frame.id}"] img`);
    if (thumbnail && frame.mime !== "application/json") thumbnail.src = frame.data;
  });
}

$("start").onclick = startRun;
$("stop").onclick = () => state.selected && api(`api/runs/${state.selected}/stop`, { method: "POST" }).catch((e) => say(e.message));
$("continue").onclick = () => continueFrom().catch((e) => say(e.message));
$("compare-close").onclick = () => { state.compare = []; $("compare").hidden = true; renderRuns(); };
wireDrops();
start().catch((e) => say(`cannot reach the studio: ${e.message}`));
