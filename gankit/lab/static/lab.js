// gankit lab: the browser side of a live 2-D GAN training session.
//
// One WebSocket (/ws) per page; the protocol is docs/lab-protocol.md. The server is the source of
// truth for the settings: controls send what the user changed and show whatever the next `state`
// (or `hello`) says. All page state lives in `window.lab` (browser tests read it).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  const DEFAULT_EXTENT = [-2, 2, -2, 2];
  const MAX_DRAWN = 2000; // the protocol takes 1..2000 points ...
  const COORD_LIMIT = 10; // ... each coordinate in [-10, 10]
  const MAX_CURVE_ROWS = 3000;
  const ERROR_MS = 10000;
  const CURVE_KEYS = ["step", "d_loss", "g_loss", "d_real", "d_fake", "grad_norm"];
  // settings key -> id of its number input
  const NUMERIC = {
    gamma: "gamma", lr_g: "lr-g", lr_d: "lr-d", n_critic: "n-critic", batch_size: "batch-size",
    z_dim: "z-dim", steps_per_update: "steps-per-update", seed: "seed",
  };
  const COLORS = {
    real: "#2e9e44", fake: "#8e44ad", arrow: "rgba(25, 25, 35, 0.65)", axis: "#9aa1ab",
    grid: "#eceef1", text: "#4b5260", d_loss: "#3b6fd8", g_loss: "#8e44ad",
    grad_norm: "#8a8f98", d_real: "#2e9e44", d_fake: "#e67e22",
  };

  const emptyCurves = () => Object.fromEntries(CURVE_KEYS.map((k) => [k, []]));

  const lab = (window.lab = {
    connected: false,
    step: 0, // the step shown in #step-counter
    frames: 0, // frames drawn (frames dropped before drawing are not counted)
    settings: null, // the last settings the server sent
    options: null,
    limits: null,
    status: "connecting",
    playing: false,
    lastError: null,
    recipe: null, // the last exported YAML
    dirac: null, // the last dirac reply
    extent: DEFAULT_EXTENT.slice(),
    lastFrame: null, // the frame on screen
    pendingFrame: null, // the newest frame not yet drawn
    drawn: [], // the points drawn on #plane since the last #clear-points
    curves: emptyCurves(),
    metrics: null, // the latest non-null metrics
    ws: null,
  });

  // ------------------------------------------------------------------ connection

  let retryDelay = 1000;
  // User actions sent and not yet answered. The server answers each with exactly one state, recipe,
  // dirac or error message; frames come unasked, so they answer nothing.
  let pendingReplies = 0;
  let seq = 0; // arrival order of frames and states
  let lastStateSeq = 0;

  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws`);
    lab.ws = ws;
    ws.onopen = () => {
      lab.connected = true;
      pendingReplies = 0;
      retryDelay = 1000;
      showConnection(null);
    };
    ws.onmessage = (ev) => dispatch(ev.data);
    ws.onclose = () => {
      if (lab.ws !== ws) return;
      lab.connected = false;
      const secs = Math.round(retryDelay / 1000);
      showConnection(`Connection to the server lost; reconnecting in ${secs} s…`);
      setTimeout(() => {
        showConnection("Reconnecting…");
        connect();
      }, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 8000);
    };
  }

  function showConnection(text) {
    const el = $("connection");
    el.hidden = !text;
    el.textContent = text || "";
  }

  function send(msg) {
    if (!lab.ws || lab.ws.readyState !== WebSocket.OPEN) {
      showError("Not connected to the server; wait for it to reconnect.");
      return false;
    }
    lab.ws.send(JSON.stringify(msg));
    pendingReplies += 1;
    return true;
  }

  const sendSettings = (settings) => send({ type: "settings", settings });

  // ------------------------------------------------------------------ message dispatcher

  const handlers = { hello: onHello, state: onState, frame: onFrame, recipe: onRecipe, dirac: onDirac, error: onError };

  function dispatch(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (e) {
      console.warn("gankit lab: message is not JSON", data);
      return;
    }
    const handler = handlers[msg.type];
    if (handler) handler(msg);
    else console.warn("gankit lab: unknown message type", msg.type);
  }

  // A reply other than `error` to the last action sent means it worked: the old error goes away.
  function acknowledge() {
    if (pendingReplies === 0) return;
    pendingReplies -= 1;
    if (pendingReplies === 0) clearError();
  }

  function onHello(msg) {
    lab.options = msg.options || {};
    lab.limits = msg.limits || {};
    const o = lab.options;
    fillSelect($("dataset"), o.datasets || []);
    fillSelect($("objective"), o.objectives || []);
    fillChecks($("penalties"), o.penalties || []);
    fillChecks($("tricks"), o.tricks || []);
    fillSelect($("dirac-method"), o.dirac_methods || []);
    applyLimits(lab.limits);
    // A new connection is a new session: paused at step 0 with nothing logged yet.
    lab.curves = emptyCurves();
    lab.metrics = null;
    lab.lastFrame = lab.pendingFrame = null;
    lab.extent = DEFAULT_EXTENT.slice();
    lastStateSeq = ++seq;
    setStep(0);
    setStatus("paused", "");
    lab.settings = msg.settings || {};
    applySettings(lab.settings);
    drawAll();
  }

  function onState(msg) {
    lastStateSeq = ++seq;
    lab.settings = msg.settings || lab.settings;
    applySettings(lab.settings);
    lab.playing = !!msg.playing;
    setStatus(msg.status, msg.message);
    setStep(msg.step);
    if (msg.reset) {
      // The curves start again; a frame still waiting belongs to the old networks.
      lab.curves = emptyCurves();
      lab.metrics = null;
      lab.pendingFrame = null;
      drawCurves();
      drawMetrics();
    }
    acknowledge();
  }

  function onFrame(msg) {
    msg.seq = ++seq;
    // Curves and metrics come only in the frame that carries them, so take them from every frame,
    // including the ones that arrive too fast to be drawn.
    appendCurves(msg.curves);
    if (msg.metrics) lab.metrics = msg.metrics;
    lab.pendingFrame = msg;
    scheduleDraw();
  }

  function onRecipe(msg) {
    lab.recipe = msg.yaml;
    $("recipe").textContent = msg.yaml;
    const url = URL.createObjectURL(new Blob([msg.yaml], { type: "application/x-yaml" }));
    download(url, msg.filename || "gankit-lab.yaml");
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    acknowledge();
  }

  function onDirac(msg) {
    lab.dirac = msg;
    drawDirac(msg);
    showDiracInfo(msg);
    acknowledge();
  }

  function onError(msg) {
    pendingReplies = Math.max(0, pendingReplies - 1);
    showError(msg.message || "error");
  }

  // ------------------------------------------------------------------ status, step, errors

  function setStep(step) {
    lab.step = step;
    $("step-counter").textContent = String(step);
  }

  function setStatus(status, message) {
    lab.status = status;
    const el = $("status");
    el.textContent = status === "stopped" ? message || "stopped" : status;
    el.className = `status ${status}`;
    // Any other message (not the stop message, which is the status itself) goes under it.
    $("state-message").textContent = status !== "stopped" && message ? message : "";
  }

  let errorTimer = null;
  function showError(message) {
    lab.lastError = message;
    $("error").textContent = message;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(clearError, ERROR_MS);
  }
  function clearError() {
    clearTimeout(errorTimer);
    $("error").textContent = "";
  }

  // ------------------------------------------------------------------ controls

  function fillSelect(select, names) {
    const keep = select.value;
    select.replaceChildren(...names.map((n) => new Option(n, n)));
    if (names.includes(keep)) select.value = keep;
  }

  function fillChecks(box, names) {
    box.replaceChildren(
      ...names.map((name) => {
        const label = document.createElement("label");
        const input = document.createElement("input");
        input.type = "checkbox";
        input.value = name;
        label.append(input, ` ${name}`);
        return label;
      })
    );
  }

  function applyLimits(limits) {
    const setMax = (id, v) => v != null && ($(id).max = String(v));
    setMax("lr-g", limits.lr_max);
    setMax("lr-d", limits.lr_max);
    setMax("batch-size", limits.batch_max);
    setMax("steps-per-update", limits.steps_per_update_max);
    setMax("z-dim", limits.z_dim_max);
  }

  function applySettings(s) {
    if (!s) return;
    for (const key of ["dataset", "objective"]) {
      if (s[key] == null) continue;
      const sel = $(key);
      // e.g. "drawn" may be missing from the options: show it anyway.
      if (![...sel.options].some((o) => o.value === s[key])) sel.add(new Option(s[key], s[key]));
      sel.value = s[key];
    }
    for (const key of ["penalties", "tricks"]) {
      if (!Array.isArray(s[key])) continue;
      for (const box of $(key).querySelectorAll("input[type=checkbox]")) box.checked = s[key].includes(box.value);
    }
    for (const [key, id] of Object.entries(NUMERIC)) if (key in s) $(id).value = s[key] == null ? "" : String(s[key]);
  }

  // A field that parses as a number is sent as a JSON number; anything else goes as typed, so the
  // server's validation error tells the user what is wrong.
  function parseNumber(text) {
    const t = String(text).trim();
    return t !== "" && Number.isFinite(Number(t)) ? Number(t) : text;
  }

  const checkedValues = (box) => [...box.querySelectorAll("input[type=checkbox]:checked")].map((b) => b.value);

  function wireControls() {
    $("play").onclick = () => send({ type: "play" });
    $("pause").onclick = () => send({ type: "pause" });
    $("step").onclick = () => send({ type: "step", n: 1 });
    $("reset").onclick = () => send({ type: "reset" });
    $("export").onclick = () => send({ type: "export" });
    $("snapshot").onclick = snapshot;
    $("clear-points").onclick = () => {
      lab.drawn = [];
      scheduleDraw(true);
    };
    for (const key of ["dataset", "objective"]) $(key).addEventListener("change", (e) => sendSettings({ [key]: e.target.value }));
    for (const key of ["penalties", "tricks"]) {
      const box = $(key);
      box.addEventListener("change", () => sendSettings({ [key]: checkedValues(box) }));
    }
    for (const [key, id] of Object.entries(NUMERIC)) $(id).addEventListener("change", (e) => sendSettings({ [key]: parseNumber(e.target.value) }));

    for (const id of ["dirac-method", "dirac-h", "dirac-steps", "dirac-gamma", "dirac-dsteps", "dirac-alternating"]) $(id).addEventListener("change", runDirac);
    $("dirac-run").onclick = runDirac;

    $("tab-lab").onclick = () => showTab("lab");
    $("tab-dirac").onclick = () => showTab("dirac");
    wirePlaneDrawing();
  }

  function showTab(name) {
    for (const t of ["lab", "dirac"]) {
      $(t).hidden = t !== name;
      $(`tab-${t}`).classList.toggle("active", t === name);
      $(`tab-${t}`).setAttribute("aria-selected", String(t === name));
    }
  }

  function download(href, filename) {
    const a = document.createElement("a");
    a.href = href;
    a.download = filename;
    document.body.append(a);
    a.click();
    a.remove();
  }

  function snapshot() {
    download($("plane").toDataURL("image/png"), `gankit-lab-step-${lab.step}.png`);
  }

  // ------------------------------------------------------------------ drawing a dataset

  function wirePlaneDrawing() {
    const canvas = $("plane");
    let drawing = false;
    let lastPx = null;
    // Canvas pixels of a pointer event (the canvas may be shown smaller than its resolution).
    const pixel = (e) => {
      const r = canvas.getBoundingClientRect();
      return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height];
    };
    const add = (px) => {
      if (lab.drawn.length >= MAX_DRAWN) return;
      const T = transform(canvas, lab.extent, PLANE_PAD);
      const clamp = (v) => Math.max(-COORD_LIMIT, Math.min(COORD_LIMIT, Math.round(v * 1e4) / 1e4));
      lab.drawn.push([clamp(T.dataX(px[0])), clamp(T.dataY(px[1]))]);
      lastPx = px;
      scheduleDraw(true);
    };
    canvas.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      drawing = true;
      canvas.setPointerCapture(e.pointerId);
      add(pixel(e));
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!drawing) return;
      const px = pixel(e);
      // one point per few pixels of drag, so a stroke is a trail and not a pile
      if (Math.hypot(px[0] - lastPx[0], px[1] - lastPx[1]) >= 4) add(px);
    });
    canvas.addEventListener("pointerup", () => {
      if (!drawing) return;
      drawing = false;
      if (lab.drawn.length) send({ type: "points", points: lab.drawn.slice(0, MAX_DRAWN) });
    });
    canvas.addEventListener("pointercancel", () => (drawing = false));
  }

  // ------------------------------------------------------------------ render loop

  let drawScheduled = false;
  let planeDirty = true;

  // Frames may arrive faster than the screen refreshes: keep only the newest and draw it on the next
  // animation frame.
  function scheduleDraw(plane = false) {
    if (plane) planeDirty = true;
    if (drawScheduled) return;
    drawScheduled = true;
    requestAnimationFrame(render);
  }

  function render() {
    drawScheduled = false;
    const f = lab.pendingFrame;
    if (f) {
      lab.pendingFrame = null;
      lab.lastFrame = f;
      lab.extent = f.extent || DEFAULT_EXTENT.slice();
      lab.frames += 1;
      // a `state` that arrived after this frame already set a newer step
      if (f.seq > lastStateSeq) setStep(f.step);
      drawMesh(f.mesh, lab.extent);
      drawCurves();
      drawMetrics();
      drawWarnings(f.warnings || []);
      planeDirty = true;
    }
    if (planeDirty) drawPlane();
    planeDirty = false;
  }

  function drawAll() {
    planeDirty = true;
    render();
    drawCurves();
    drawMetrics();
    drawWarnings([]);
    if (!lab.lastFrame) drawMesh(undefined, DEFAULT_EXTENT);
  }

  // ------------------------------------------------------------------ plotting helpers

  const PLANE_PAD = 26;

  // Maps data coordinates (y up) into a canvas with equal scale on both axes, centred.
  function transform(canvas, ext, pad) {
    const [x0, x1, y0, y1] = ext;
    const dx = x1 - x0 || 1;
    const dy = y1 - y0 || 1;
    const s = Math.min((canvas.width - 2 * pad) / dx, (canvas.height - 2 * pad) / dy);
    const left = (canvas.width - s * dx) / 2;
    const top = (canvas.height - s * dy) / 2;
    return {
      left, top, width: s * dx, height: s * dy,
      px: (x) => left + (x - x0) * s,
      py: (y) => top + (y1 - y) * s,
      dataX: (px) => x0 + (px - left) / s,
      dataY: (py) => y1 - (py - top) / s,
    };
  }

  // About `count` round tick values between lo and hi.
  function ticks(lo, hi, count) {
    const span = hi - lo;
    if (!(span > 0) || !Number.isFinite(span)) return [lo];
    const raw = span / count;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }

  const tickLabel = (v) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(0) : String(+v.toPrecision(3)));

  function drawAxes(ctx, T, ext, labels = null) {
    const [x0, x1, y0, y1] = ext;
    ctx.save();
    ctx.font = "10px system-ui, sans-serif";
    ctx.fillStyle = COLORS.text;
    ctx.lineWidth = 1;
    for (const v of ticks(x0, x1, 5)) {
      const x = T.px(v);
      ctx.strokeStyle = v === 0 ? COLORS.axis : COLORS.grid;
      ctx.beginPath(); ctx.moveTo(x, T.top); ctx.lineTo(x, T.top + T.height); ctx.stroke();
      ctx.textAlign = "center"; ctx.textBaseline = "top";
      ctx.fillText(tickLabel(v), x, T.top + T.height + 3);
    }
    for (const v of ticks(y0, y1, 5)) {
      const y = T.py(v);
      ctx.strokeStyle = v === 0 ? COLORS.axis : COLORS.grid;
      ctx.beginPath(); ctx.moveTo(T.left, y); ctx.lineTo(T.left + T.width, y); ctx.stroke();
      ctx.textAlign = "right"; ctx.textBaseline = "middle";
      ctx.fillText(tickLabel(v), T.left - 3, y);
    }
    ctx.strokeStyle = COLORS.axis;
    ctx.strokeRect(T.left + 0.5, T.top + 0.5, T.width - 1, T.height - 1);
    if (labels) {
      ctx.textAlign = "right"; ctx.textBaseline = "bottom";
      ctx.fillText(labels[0], T.left + T.width - 4, T.top + T.height - 3);
      ctx.textAlign = "left"; ctx.textBaseline = "top";
      ctx.fillText(labels[1], T.left + 4, T.top + 3);
    }
    ctx.restore();
  }

  function dots(ctx, T, points, color, r) {
    ctx.fillStyle = color;
    ctx.beginPath();
    for (const [x, y] of points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue; // a NaN stop sends nulls
      const px = T.px(x), py = T.py(y);
      ctx.moveTo(px + r, py);
      ctx.arc(px, py, r, 0, 2 * Math.PI);
    }
    ctx.fill();
  }

  // Blue (low) - white - orange (high).
  const LOW = [59, 111, 216], MID = [247, 247, 247], HIGH = [230, 126, 34];
  function heatColor(t) {
    const [a, b, u] = t < 0.5 ? [LOW, MID, t * 2] : [MID, HIGH, t * 2 - 1];
    return a.map((c, i) => Math.round(c + (b[i] - c) * u));
  }

  // ------------------------------------------------------------------ views

  function drawPlane() {
    const canvas = $("plane");
    const ctx = canvas.getContext("2d");
    const f = lab.lastFrame;
    const ext = lab.extent;
    const T = transform(canvas, ext, PLANE_PAD);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (f && f.heat && f.heat.n > 0) drawHeat(ctx, T, f.heat);
    drawAxes(ctx, T, ext);
    ctx.save();
    ctx.beginPath();
    ctx.rect(T.left, T.top, T.width, T.height);
    ctx.clip();
    if (f) {
      ctx.globalAlpha = 0.85;
      dots(ctx, T, f.real || [], COLORS.real, 2.2);
      dots(ctx, T, f.fake || [], COLORS.fake, 2.2);
      ctx.globalAlpha = 1;
      ctx.strokeStyle = COLORS.arrow;
      ctx.lineWidth = 1;
      ctx.beginPath();
      (f.arrows || []).forEach(([dx, dy], i) => {
        const p = f.fake && f.fake[i];
        if (!p || ![p[0], p[1], dx, dy].every(Number.isFinite)) return;
        ctx.moveTo(T.px(p[0]), T.py(p[1]));
        ctx.lineTo(T.px(p[0] + dx), T.py(p[1] + dy));
      });
      ctx.stroke();
    }
    // the user's drawing, on top, as green rings
    ctx.strokeStyle = COLORS.real;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (const [x, y] of lab.drawn) {
      ctx.moveTo(T.px(x) + 3, T.py(y));
      ctx.arc(T.px(x), T.py(y), 3, 0, 2 * Math.PI);
    }
    ctx.stroke();
    ctx.restore();
    if (f && f.heat) drawHeatLegend(ctx, T, f.heat);
  }

  function drawHeat(ctx, T, heat) {
    const n = heat.n;
    const values = heat.values.flat(); // flat row-major; tolerate rows sent as nested lists
    const lo = heat.min, hi = heat.max;
    const span = hi - lo || 1;
    const img = new ImageData(n, n);
    for (let i = 0; i < n * n; i++) {
      const v = values[i];
      const c = Number.isFinite(v) ? heatColor(Math.max(0, Math.min(1, (v - lo) / span))) : [200, 200, 200];
      img.data.set([c[0], c[1], c[2], 255], i * 4);
    }
    // row 0 of the values is the top (ymax) row, as in an image
    const cells = document.createElement("canvas");
    cells.width = cells.height = n;
    cells.getContext("2d").putImageData(img, 0, 0);
    ctx.save();
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = 0.75;
    ctx.drawImage(cells, T.left, T.top, T.width, T.height);
    ctx.restore();
  }

  function drawHeatLegend(ctx, T, heat) {
    const w = 90, h = 8, x = T.left + 8, y = T.top + 8;
    ctx.save();
    ctx.font = "10px system-ui, sans-serif";
    const label = heat.label || "";
    const boxW = Math.max(w, ctx.measureText(label).width) + 12;
    ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
    ctx.fillRect(x - 6, y - 4, boxW, 40);
    const grad = ctx.createLinearGradient(x, 0, x + w, 0);
    for (const t of [0, 0.25, 0.5, 0.75, 1]) grad.addColorStop(t, `rgb(${heatColor(t).join(",")})`);
    ctx.fillStyle = COLORS.text;
    ctx.textBaseline = "top";
    ctx.fillText(label, x, y);
    ctx.fillStyle = grad;
    ctx.fillRect(x, y + 13, w, h);
    ctx.fillStyle = COLORS.text;
    ctx.fillText(tickLabel(heat.min), x, y + 23);
    ctx.textAlign = "right";
    ctx.fillText(tickLabel(heat.max), x + w, y + 23);
    ctx.restore();
  }

  // mesh: polylines (draw them), null (z has more than 2 dimensions), undefined (no frame yet).
  function drawMesh(mesh, extent) {
    const canvas = $("mesh");
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (mesh === null) {
      ctx.fillStyle = COLORS.text;
      ctx.font = "12px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("z has more than 2 dimensions", canvas.width / 2, canvas.height / 2);
      return;
    }
    // the plane's extent, grown to hold the whole mesh (G may map the grid far away)
    const ext = extent.slice();
    for (const line of mesh || []) for (const [x, y] of line) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      ext[0] = Math.min(ext[0], x); ext[1] = Math.max(ext[1], x);
      ext[2] = Math.min(ext[2], y); ext[3] = Math.max(ext[3], y);
    }
    const T = transform(canvas, ext, 20);
    drawAxes(ctx, T, ext);
    ctx.strokeStyle = "rgba(142, 68, 173, 0.7)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const line of mesh || []) polyline(ctx, line, T.px, T.py);
    ctx.stroke();
  }

  function appendCurves(rows) {
    if (!rows || !Array.isArray(rows.step) || !rows.step.length) return;
    const n = rows.step.length;
    for (const k of CURVE_KEYS) {
      const col = Array.isArray(rows[k]) ? rows[k] : new Array(n).fill(null);
      for (let i = 0; i < n; i++) lab.curves[k].push(col[i] ?? null);
      const extra = lab.curves[k].length - MAX_CURVE_ROWS;
      if (extra > 0) lab.curves[k].splice(0, extra);
    }
  }

  // Two stacked panels sharing the step axis: losses (left axis) with grad_norm (right axis, dashed),
  // and D's mean outputs on real and fake data.
  function drawCurves() {
    const canvas = $("curves");
    const ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
    ctx.font = "10px system-ui, sans-serif";
    const c = lab.curves;
    const series = [["d_loss", false], ["g_loss", false], ["grad_norm", true], ["d_real", false], ["d_fake", false]];
    let x = 44;
    ctx.textBaseline = "middle";
    ctx.textAlign = "left";
    for (const [k, dashed] of series) {
      ctx.strokeStyle = COLORS[k];
      ctx.setLineDash(dashed ? [4, 3] : []);
      ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(x, 8); ctx.lineTo(x + 16, 8); ctx.stroke();
      ctx.fillStyle = COLORS.text;
      ctx.fillText(k, x + 20, 8);
      x += 28 + ctx.measureText(k).width;
    }
    ctx.setLineDash([]);
    const steps = c.step;
    if (!steps.length) {
      ctx.textAlign = "center";
      ctx.fillText("no training steps yet", W / 2, H / 2);
      ctx.textAlign = "left";
      return;
    }
    const sx0 = steps[0], sx1 = steps[steps.length - 1] === sx0 ? sx0 + 1 : steps[steps.length - 1];
    const left = 44, right = W - 40, bottom = H - 14;
    const panels = [
      { top: 20, bottom: 20 + (bottom - 20) * 0.6 - 6, axes: [[["d_loss", "g_loss"], "left"], [["grad_norm"], "right"]] },
      { top: 20 + (bottom - 20) * 0.6 + 6, bottom, axes: [[["d_real", "d_fake"], "left"]] },
    ];
    const xPx = (s) => left + ((s - sx0) / (sx1 - sx0)) * (right - left);
    for (const p of panels) {
      ctx.setLineDash([]);
      ctx.strokeStyle = COLORS.axis;
      ctx.lineWidth = 1;
      ctx.strokeRect(left + 0.5, p.top + 0.5, right - left, p.bottom - p.top);
      for (const [keys, side] of p.axes) {
        const [lo, hi] = range(keys.flatMap((k) => c[k]));
        const yPx = (v) => p.bottom - ((v - lo) / (hi - lo)) * (p.bottom - p.top);
        ctx.fillStyle = COLORS.text;
        ctx.textAlign = side === "left" ? "right" : "left";
        const tx = side === "left" ? left - 3 : right + 3;
        ctx.fillText(tickLabel(hi), tx, p.top + 5);
        ctx.fillText(tickLabel(lo), tx, p.bottom - 5);
        for (const k of keys) {
          ctx.strokeStyle = COLORS[k];
          ctx.setLineDash(k === "grad_norm" ? [4, 3] : []);
          ctx.lineWidth = 1.2;
          ctx.beginPath();
          polyline(ctx, c[k].map((v, i) => [steps[i], v]), xPx, yPx);
          ctx.stroke();
        }
      }
    }
    ctx.setLineDash([]);
    ctx.fillStyle = COLORS.text;
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    ctx.fillText(`step ${sx0}`, left, bottom + 2);
    ctx.textAlign = "right";
    ctx.fillText(`step ${steps[steps.length - 1]}`, right, bottom + 2);
  }

  // Adds a polyline to the current path, lifting the pen over missing (null) values.
  function polyline(ctx, points, px, py) {
    let pen = false;
    for (const [x, y] of points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) { pen = false; continue; }
      if (pen) ctx.lineTo(px(x), py(y));
      else ctx.moveTo(px(x), py(y));
      pen = true;
    }
  }

  // [lo, hi] of the finite values with a little margin (never an empty range).
  function range(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (v != null && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (lo === Infinity) return [0, 1];
    if (hi - lo < 1e-12) { const d = Math.abs(lo) * 0.1 || 1; return [lo - d, hi + d]; }
    const m = (hi - lo) * 0.05;
    return [lo - m, hi + m];
  }

  function drawMetrics() {
    const m = lab.metrics;
    const parts = [];
    if (m) {
      if (m.modes != null) parts.push(`modes ${m.modes}`);
      if (m.high_quality != null) parts.push(`high quality ${Math.round(m.high_quality * 100)}%`);
      if (m.kl != null) parts.push(`KL ${fmt(m.kl, 2)}`);
    }
    $("metrics").textContent = parts.length ? parts.join(" · ") : "-";
  }

  function drawWarnings(warnings) {
    $("warnings").replaceChildren(...warnings.map((w) => Object.assign(document.createElement("li"), { textContent: w })));
  }

  // ------------------------------------------------------------------ Dirac-GAN

  const DIRAC_START = [1, 1];

  function runDirac() {
    send({
      type: "dirac",
      method: $("dirac-method").value,
      h: parseNumber($("dirac-h").value),
      steps: parseNumber($("dirac-steps").value),
      alternating: $("dirac-alternating").checked,
      d_steps: parseNumber($("dirac-dsteps").value),
      gamma: parseNumber($("dirac-gamma").value),
      start: DIRAC_START.slice(),
    });
  }

  function drawDirac(msg) {
    const canvas = $("dirac-canvas");
    const ctx = canvas.getContext("2d");
    const path = (msg && msg.path) || [];
    const start = path.length ? path[0] : DIRAC_START;
    // a square box around the path, the start and the equilibrium, at least [-1.5, 1.5]^2
    let r = 1.5;
    for (const [t, p] of [start, ...path]) r = Math.max(r, Math.abs(t) * 1.1, Math.abs(p) * 1.1);
    const ext = [-r, r, -r, r];
    const T = transform(canvas, ext, 28);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    drawAxes(ctx, T, ext, ["theta", "psi"]);
    if (path.length > 1) {
      ctx.strokeStyle = COLORS.d_loss;
      ctx.lineWidth = 1.3;
      ctx.beginPath();
      polyline(ctx, path, T.px, T.py);
      ctx.stroke();
      const [te, pe] = path[path.length - 1];
      dots(ctx, T, [[te, pe]], COLORS.d_loss, 3.5);
    }
    // the equilibrium (0, 0): a cross; the start: a ring
    ctx.strokeStyle = COLORS.real;
    ctx.lineWidth = 2;
    const [ex, ey] = [T.px(0), T.py(0)];
    ctx.beginPath(); ctx.moveTo(ex - 6, ey - 6); ctx.lineTo(ex + 6, ey + 6); ctx.moveTo(ex + 6, ey - 6); ctx.lineTo(ex - 6, ey + 6); ctx.stroke();
    ctx.strokeStyle = COLORS.d_fake;
    ctx.beginPath(); ctx.arc(T.px(start[0]), T.py(start[1]), 5, 0, 2 * Math.PI); ctx.stroke();
    ctx.font = "10px system-ui, sans-serif";
    ctx.fillStyle = COLORS.text;
    ctx.textBaseline = "top";
    ctx.fillText("equilibrium", ex + 8, ey + 4);
    ctx.textBaseline = "bottom";
    ctx.fillText("start", T.px(start[0]) + 7, T.py(start[1]) - 5);
  }

  function fmt(x, digits = 3) {
    if (!Number.isFinite(x)) return String(x);
    return Math.abs(x) >= 1e4 || (Math.abs(x) < 10 ** -digits && x !== 0) ? x.toExponential(2) : x.toFixed(digits);
  }

  // "re ± im i" for a conjugate pair (shown once), "re + im i" otherwise, "re" when real.
  function formatEigenvalues(eigs) {
    const out = [];
    const used = new Set();
    eigs.forEach(([re, im], i) => {
      if (used.has(i)) return;
      if (Math.abs(im) < 1e-12) return void out.push(fmt(re));
      const j = eigs.findIndex(([re2, im2], k) => k > i && !used.has(k) && Math.abs(re2 - re) < 1e-9 && Math.abs(im2 + im) < 1e-9);
      if (j >= 0) {
        used.add(j);
        out.push(`${fmt(re)} ± ${fmt(Math.abs(im))} i`);
      } else out.push(`${fmt(re)} ${im < 0 ? "−" : "+"} ${fmt(Math.abs(im))} i`);
    });
    return out;
  }

  function showDiracInfo(msg) {
    const el = $("dirac-info");
    const verdict = Object.assign(document.createElement("span"), {
      className: msg.converges ? "yes" : "no",
      textContent: msg.converges ? "converges" : "does not converge",
    });
    const line = (text) => Object.assign(document.createElement("div"), { textContent: text });
    const v = document.createElement("div");
    v.append(`${msg.method}: `, verdict);
    el.replaceChildren(
      v,
      line(`eigenvalues: ${formatEigenvalues(msg.eigenvalues || []).join(", ")}`),
      line(`spectral radius: ${fmt(msg.spectral_radius, 4)}`)
    );
  }

  // ------------------------------------------------------------------ start

  wireControls();
  drawAll();
  drawDirac(null);
  connect();
})();
