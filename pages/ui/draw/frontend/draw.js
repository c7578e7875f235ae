// The Activations page's drawing pad (a Streamlit component, declared in pages/ui/draw/__init__.py), run in the
// sandboxed frame that outer.js makes; it talks to outer.js only ({kind: render|model} in, {kind: ready|value|height}
// out).
// Pointer events (mouse, finger, pen) draw on a 280×280 pad shown at any size; while the pen moves the digit is
// read (digit.js), run through the active model (net.js, TensorFlow.js) and the prediction, probabilities and
// the chosen layer's maps are redrawn; when the pen lifts every layer's maps are drawn and the strokes, the
// 28×28 digit and the pad's picture go to Python, which computes the reference for the sections below.
(function () {
  "use strict";
  const SIZE = 280;
  const LIVE_MS = 40; // readings start at most every 40 ms while drawing (25 per second); the ink follows every frame
  const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
    "#b5de2b", "#fde725"].map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
  const pad = document.getElementById("pad");
  const ctx = pad.getContext("2d", { willReadFrequently: true });
  const seen = document.getElementById("seen");
  const answer = document.getElementById("answer");
  const status = document.getElementById("status");
  const mapsBox = document.getElementById("maps");

  let strokes = [];
  let current = null;
  let pointerId = null;
  let penWidth = 22;
  let chosen = null;
  let perMap = false;
  let net = null;
  let modelUrl;
  let note = "";
  let seq = 0;
  let started = false;
  let lastReading = -1e9;
  let frameAsked = false;
  let lateTimer = null;
  const stats = { strokes: [], penUps: [], model: null };
  window.drawStats = stats;

  function send(message) {
    window.parent.postMessage(message, "*");
  }
  let height = 0;
  function fitHeight() {
    const h = Math.ceil(document.getElementById("root").getBoundingClientRect().height) + 6;
    if (h !== height) {
      height = h;
      send({ kind: "height", height: h });
    }
  }

  function all() {
    return current ? strokes.concat([current]) : strokes;
  }

  // ------------------------------------------------------------------ reading and answering
  function read() {
    DrawDigit.paint(ctx, all());
    if (!all().length) return { blank: true };
    const pixels = ctx.getImageData(0, 0, SIZE, SIZE).data;
    return DrawDigit.canvasToDigit(pixels, SIZE, SIZE);
  }

  function viridis(t) {
    const x = Math.min(1, Math.max(0, t)) * 9;
    const i = Math.min(8, Math.floor(x));
    const f = x - i;
    const a = VIRIDIS[i];
    const b = VIRIDIS[i + 1];
    return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
  }

  function drawSeen(digit) {
    const c = seen.getContext("2d");
    const img = c.createImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      const v = digit ? digit[i] : 0;
      img.data.set([v, v, v, 255], 4 * i);
    }
    c.putImageData(img, 0, 0);
  }

  function drawBars(p) {
    const box = document.getElementById("probs");
    if (!p) {
      box.innerHTML = "";
      return;
    }
    const best = p.indexOf(Math.max(...p));
    if (box.children.length !== p.length) {
      box.innerHTML = p
        .map((_, k) => `<div class="bar" data-k="${k}"><span class="k">${k}</span><span class="track">` +
          `<span class="fill"></span></span><span class="p"></span></div>`)
        .join("");
    }
    p.forEach((v, k) => {
      const row = box.children[k];
      row.classList.toggle("best", k === best);
      row.querySelector(".fill").style.width = `${(v * 100).toFixed(2)}%`;
      row.querySelector(".p").textContent = `${(v * 100).toFixed(1)} %`;
    });
  }

  // one layer's maps (H, W, C) as a mosaic: the page's tile layout (8 columns, 16 for maps under 10×10), viridis
  function layerBlock(name, out, isChosen) {
    let block = mapsBox.querySelector(`.layer[data-layer="${name}"]`);
    if (!block) {
      block = document.createElement("div");
      block.className = "layer";
      block.dataset.layer = name;
      block.innerHTML = "<h4></h4><canvas></canvas>";
      mapsBox.appendChild(block);
    }
    block.classList.toggle("chosen", isChosen);
    block.style.opacity = "1";
    const [h, w, c] = out.shape;
    const d = out.data;
    const cols = Math.min(c, h >= 10 ? 8 : 16);
    const rows = Math.ceil(c / cols);
    const W = cols * (w + 1) - 1;
    const H = rows * (h + 1) - 1;
    const canvas = block.querySelector("canvas");
    if (canvas.width !== W || canvas.height !== H) {
      canvas.width = W;
      canvas.height = H;
    }
    const lo = new Float32Array(c).fill(Infinity);
    const hi = new Float32Array(c).fill(-Infinity);
    for (let i = 0; i < d.length; i++) {
      const m = i % c;
      if (d[i] < lo[m]) lo[m] = d[i];
      if (d[i] > hi[m]) hi[m] = d[i];
    }
    let dead = 0;
    for (let m = 0; m < c; m++) if (Math.max(Math.abs(lo[m]), Math.abs(hi[m])) <= 1e-6) dead += 1;
    const gLo = Math.min(0, ...lo);
    const gHi = Math.max(...hi);
    const img = new ImageData(W, H);
    img.data.fill(255);
    for (let m = 0; m < c; m++) {
      const r0 = Math.floor(m / cols) * (h + 1);
      const c0 = (m % cols) * (w + 1);
      const zlo = perMap ? Math.min(0, lo[m]) : gLo;
      const span = (perMap ? hi[m] : gHi) - zlo || 1;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const rgb = viridis((d[(y * w + x) * c + m] - zlo) / span);
          const j = 4 * ((r0 + y) * W + c0 + x);
          img.data[j] = rgb[0];
          img.data[j + 1] = rgb[1];
          img.data[j + 2] = rgb[2];
        }
      }
    }
    canvas.getContext("2d").putImageData(img, 0, 0);
    const room = mapsBox.clientWidth || 860;
    const wanted = isChosen ? Math.min(room, 640) : Math.min(room, 420);
    canvas.style.width = `${Math.max(W, Math.floor(wanted / W) * W)}px`;
    block.querySelector("h4").textContent =
      `${name}: ${c} maps of ${h}×${w} · ${dead} dead for this digit` + (isChosen ? " (the layer chosen below)" : "");
  }

  function show(reading, result, final) {
    drawSeen(reading.digit || null);
    const heading = document.getElementById("prediction");
    const words = document.getElementById("confidence");
    if (!reading.digit) {
      heading.textContent = reading.blank ? "Draw a digit" : "Read on the server";
      words.textContent = reading.blank
        ? "Draw one digit on the black pad (mouse, finger or pen): the network answers while you draw."
        : `This drawing is read by the server (${reading.why}): its answer is below once the pen lifts.`;
      drawBars(null);
      mapsBox.innerHTML = "";
    } else if (!result) {
      heading.textContent = "Answered by the server";
      words.textContent = note || "The prediction is computed on the server when the pen lifts (below).";
      drawBars(null);
      mapsBox.innerHTML = "";
    } else {
      const p = result.probabilities;
      const best = p.indexOf(Math.max(...p));
      heading.textContent = `Prediction: ${best}`;
      words.textContent = `${(p[best] * 100).toFixed(1)} % confident` + (final ? "" : " · drawing…");
      drawBars(p);
      const spatial = Object.keys(result.outputs).filter((n) => result.outputs[n].shape.length === 3);
      const pick = spatial.includes(chosen) ? chosen : spatial[0];
      const order = pick ? [pick].concat(spatial.filter((n) => n !== pick)) : [];
      order.forEach((name, i) => {
        if (final || name === pick) layerBlock(name, result.outputs[name], name === pick);
        const block = mapsBox.querySelector(`.layer[data-layer="${name}"]`);
        if (block && !final && name !== pick) block.style.opacity = "0.35"; // last pen-up's maps, not this stroke's
        if (block && mapsBox.children[i] !== block) mapsBox.insertBefore(block, mapsBox.children[i] || null);
      });
      for (const block of [...mapsBox.children]) if (!order.includes(block.dataset.layer)) block.remove();
    }
    answer.dataset.final = final ? "1" : "0";
    fitHeight();
  }

  // the drawing's reading and the network's answer; the last one is reused while the strokes are the same
  let last = { key: "", reading: null, result: null };
  function answerNow(final) {
    const t0 = performance.now();
    const strokesNow = all();
    const tail = strokesNow.length ? strokesNow[strokesNow.length - 1] : null;
    const key = JSON.stringify([
      strokesNow.map((s) => s.p.length),
      tail && [tail.w, tail.p[0], tail.p[tail.p.length - 1]],
      net ? modelUrl : null,
    ]);
    if (key !== last.key || !last.reading) {
      const reading = read();
      const result = reading.digit && net ? net.run(reading.digit) : null;
      last = { key, reading, result };
    } else {
      DrawDigit.paint(ctx, all());
    }
    show(last.reading, last.result, final);
    lastReading = t0; // the next reading may start LIVE_MS after this one started, not after it ended
    return { reading: last.reading, result: last.result, ms: performance.now() - t0 };
  }

  // ------------------------------------------------------------------ drawing
  function frame() {
    frameAsked = false;
    if (!current) return;
    const now = performance.now();
    if (now - lastReading >= LIVE_MS) {
      answerNow(false);
      const stroke = stats.strokes[stats.strokes.length - 1];
      if (stroke) stroke.updates.push(performance.now());
    } else {
      DrawDigit.paint(ctx, all());
      clearTimeout(lateTimer);
      lateTimer = setTimeout(ask, LIVE_MS - (now - lastReading)); // the last points are read even if the pen rests
    }
  }
  function ask() {
    if (!frameAsked) {
      frameAsked = true;
      requestAnimationFrame(frame);
    }
  }

  function point(e) {
    const r = pad.getBoundingClientRect();
    const x = ((e.clientX - r.left) * SIZE) / r.width;
    const y = ((e.clientY - r.top) * SIZE) / r.height;
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  }

  pad.addEventListener("pointerdown", (e) => {
    if (pointerId !== null) return;
    e.preventDefault();
    pointerId = e.pointerId;
    pad.setPointerCapture(e.pointerId);
    current = { w: penWidth, p: [point(e)] };
    stats.strokes.push({ down: e.timeStamp, type: e.pointerType, updates: [] });
    ask();
  });
  pad.addEventListener("pointermove", (e) => {
    if (e.pointerId !== pointerId || !current) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of events.length ? events : [e]) current.p.push(point(ev));
    ask();
  });
  function penUp(e) {
    if (e.pointerId !== pointerId || !current) return;
    pointerId = null;
    strokes.push(current);
    current = null;
    clearTimeout(lateTimer);
    finish(e.timeStamp);
  }
  pad.addEventListener("pointerup", penUp);
  pad.addEventListener("pointercancel", penUp);

  // after a stroke, Undo or Clear: the whole answer now, then the drawing to Python
  function finish(since) {
    const { reading, result, ms } = answerNow(true);
    seq += 1;
    answer.dataset.seq = String(seq);
    const mine = seq;
    const answered = performance.now();
    const p = result ? result.probabilities : null;
    const predicted = p ? p.indexOf(Math.max(...p)) : null;
    stats.answer = { seq: mine, predicted, probabilities: p }; // what the pad shows from now on, with its number
    const value = {
      seq: Date.now() * 1000 + (seq % 1000), // unique across remounts
      strokes,
      digit: reading.digit ? Array.from(reading.digit) : null,
      png: strokes.length ? pad.toDataURL("image/png") : null,
      predicted,
      probabilities: p,
    };
    // Python hears of it once the answer is painted: the page's rerun that follows must not delay it
    requestAnimationFrame(() =>
      setTimeout(() => {
        stats.penUps.push({ seq: mine, up: since, answered, shown: performance.now(), compute_ms: ms });
        send({ kind: "value", value });
      }, 0),
    );
  }

  document.getElementById("undo").addEventListener("click", () => {
    if (!strokes.length) return;
    strokes = strokes.slice(0, -1);
    finish(performance.now());
  });
  document.getElementById("clear").addEventListener("click", () => {
    strokes = [];
    finish(performance.now());
  });

  // ------------------------------------------------------------------ Streamlit
  async function useModel(url, description, error) {
    if (net) net.dispose();
    net = null;
    modelUrl = url;
    if (url) {
      try {
        if (!description) throw new Error(error || "no model");
        const t0 = performance.now();
        await DrawNet.ready();
        if (url !== modelUrl) return; // another model came meanwhile
        net = DrawNet.load(description);
        stats.model = { url, ms: performance.now() - t0 };
        status.textContent = "";
        pad.dataset.model = url;
      } catch (err) {
        status.textContent = `the model could not run in the browser (${err.message}); the server answers`;
      }
    }
    if (!current) answerNow(true);
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return;
    const msg = event.data || {};
    if (msg.kind === "model") {
      useModel(msg.url || null, msg.description, msg.error);
      return;
    }
    if (msg.kind !== "render") return;
    const args = msg.args || {};
    penWidth = Number(args.pen) || penWidth;
    perMap = args.scale === "per map";
    chosen = args.layer || null;
    note = args.model_note || "";
    if (!args.model_url) {
      if (net) net.dispose();
      net = null;
      modelUrl = null;
      status.textContent = note;
    } else if (args.model_url !== modelUrl) {
      status.textContent = "loading the model…";
    }
    if (!started) {
      started = true;
      strokes = Array.isArray(args.strokes) ? args.strokes : [];
    }
    if (!current) answerNow(true);
  });
  new ResizeObserver(fitHeight).observe(document.getElementById("root"));
  DrawDigit.paint(ctx, []);
  send({ kind: "ready" });
})();
