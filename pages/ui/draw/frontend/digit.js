// The drawing → the 28×28 digit the network sees, step for step as the server's
// core.images.canvas_to_gray + to_mnist_digit(gray, invert=False) computes it (float32 where numpy is float32,
// Pillow's fixed-point Lanczos, Python's round-half-even), so both give the same bytes.
// A drawing whose border is uneven (lots of ink on the canvas's edge) takes the server's photo path, which is
// not ported: canvasToDigit then answers {serverOnly: true} and the page computes it instead.
(function (root) {
  "use strict";
  const f32 = Math.fround;

  function roundHalfEven(x) {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  // The values in order, as numpy sorts them: a histogram when they are all whole numbers 0..255 (a pad drawn in
  // white on black always is: fast), else a sorted copy. at(i) is the i-th smallest.
  function ordered(values) {
    const counts = new Uint32Array(256);
    let whole = true;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v >= 0 && v <= 255 && v === (v | 0)) counts[v] += 1;
      else {
        whole = false;
        break;
      }
    }
    if (!whole) {
      const sorted = Float32Array.from(values).sort();
      return { n: sorted.length, at: (i) => sorted[i] };
    }
    const ends = new Uint32Array(256); // ends[v]: how many values are ≤ v
    let total = 0;
    for (let v = 0; v < 256; v++) ends[v] = total += counts[v];
    const at = (i) => {
      let lo = 0;
      let hi = 255;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (ends[mid] > i) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    };
    return { n: values.length, at };
  }

  // numpy.percentile(values, q) with the default linear interpolation
  function percentile(sorted, q) {
    const n = sorted.n;
    const pos = (q / 100) * (n - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, n - 1);
    const t = pos - lo;
    const a = sorted.at(lo);
    const b = sorted.at(hi);
    const d = b - a;
    return t >= 0.5 ? b - d * (1 - t) : a + d * t;
  }

  function sortedCopy(values) {
    return ordered(values);
  }

  // canvas_to_gray: mean of r, g, b (float32) times alpha / 255
  function canvasToGray(rgba, width, height) {
    const gray = new Float32Array(width * height);
    for (let i = 0; i < width * height; i++) {
      const s = f32(f32(rgba[4 * i] + rgba[4 * i + 1]) + rgba[4 * i + 2]);
      gray[i] = f32(f32(s / 3) * f32(rgba[4 * i + 3] / 255));
    }
    return gray;
  }

  function border(gray, h, w) {
    const b = Math.max(1, Math.floor(Math.min(h, w) / 20));
    const out = [];
    for (let r = 0; r < b; r++) for (let c = 0; c < w; c++) out.push(gray[r * w + c]);
    for (let r = h - b; r < h; r++) for (let c = 0; c < w; c++) out.push(gray[r * w + c]);
    for (let r = 0; r < h; r++) for (let c = 0; c < b; c++) out.push(gray[r * w + c]);
    for (let r = 0; r < h; r++) for (let c = w - b; c < w; c++) out.push(gray[r * w + c]);
    return ordered(out);
  }

  function median(sorted) {
    const n = sorted.n;
    if (n % 2) return sorted.at((n - 1) / 2);
    return f32(f32(sorted.at(n / 2 - 1) + sorted.at(n / 2)) / 2);
  }

  // scipy.ndimage.label with a 3×3 structure; labels numbered in raster order of each mark's first pixel
  function label(mask, h, w) {
    const labels = new Int32Array(h * w);
    const stack = [];
    let n = 0;
    for (let i = 0; i < h * w; i++) {
      if (!mask[i] || labels[i]) continue;
      n += 1;
      labels[i] = n;
      stack.push(i);
      while (stack.length) {
        const p = stack.pop();
        const pr = (p / w) | 0;
        const pc = p - pr * w;
        for (let dr = -1; dr <= 1; dr++) {
          const r = pr + dr;
          if (r < 0 || r >= h) continue;
          for (let dc = -1; dc <= 1; dc++) {
            const c = pc + dc;
            if (c < 0 || c >= w) continue;
            const q = r * w + c;
            if (mask[q] && !labels[q]) {
              labels[q] = n;
              stack.push(q);
            }
          }
        }
      }
    }
    return { labels, n };
  }

  function gap(a, b) {
    const dy = Math.max(0, a[0] - b[2], b[0] - a[2]);
    const dx = Math.max(0, a[1] - b[3], b[1] - a[3]);
    return Math.hypot(dy, dx);
  }

  // core.images._pick_digit with drop_border=False (drawings)
  function pickDigit(strokes, h, w) {
    const mask = new Uint8Array(h * w);
    for (let i = 0; i < h * w; i++) mask[i] = strokes[i] > 0 ? 1 : 0;
    const { labels, n } = label(mask, h, w);
    if (n === 0) return strokes;
    const mass = new Float64Array(n);
    const boxes = [];
    for (let k = 0; k < n; k++) boxes.push([h, w, -1, -1]);
    for (let i = 0; i < h * w; i++) {
      const k = labels[i] - 1;
      if (k < 0) continue;
      mass[k] += strokes[i];
      const r = (i / w) | 0;
      const c = i - r * w;
      const b = boxes[k];
      if (r < b[0]) b[0] = r;
      if (c < b[1]) b[1] = c;
      if (r > b[2]) b[2] = r;
      if (c > b[3]) b[3] = c;
    }
    const maxMass = Math.max(...mass);
    const sized = [];
    for (let k = 0; k < n; k++) if (mass[k] >= 0.25 * maxMass) sized.push(k);
    const cy = (h - 1) / 2;
    const cx = (w - 1) / 2;
    const point = [cy, cx, cy, cx];
    sized.sort((a, b) => gap(boxes[a], point) - gap(boxes[b], point) || mass[b] - mass[a] || a - b);
    const first = sized[0];
    const group = new Set([first]);
    let box = boxes[first].slice();
    let grown = true;
    while (grown) {
      grown = false;
      const reach = Math.max(0.25 * Math.max(box[2] - box[0] + 1, box[3] - box[1] + 1), 0.05 * Math.max(h, w));
      for (let k = 0; k < n; k++) {
        if (!(mass[k] >= 0.05 * mass[first]) || group.has(k)) continue;
        if (gap(boxes[k], box) <= reach) {
          group.add(k);
          const b = boxes[k];
          box = [Math.min(box[0], b[0]), Math.min(box[1], b[1]), Math.max(box[2], b[2]), Math.max(box[3], b[3])];
          grown = true;
        }
      }
    }
    let digitMass = 0;
    for (const k of group) digitMass += mass[k];
    const kept = new Uint8Array(n + 1);
    for (const k of group) if (mass[k] >= 0.05 * digitMass) kept[k + 1] = 1;
    const out = new Float32Array(h * w);
    for (let i = 0; i < h * w; i++) if (kept[labels[i]]) out[i] = strokes[i];
    return out;
  }

  // Pillow's Image.resize(LANCZOS) of an 8-bit image: Resample.c's coefficients, fixed point with 22 bits
  const PRECISION_BITS = 32 - 8 - 2;
  function lanczos(x) {
    const sinc = (v) => (v === 0 ? 1 : Math.sin(v * Math.PI) / (v * Math.PI));
    return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0;
  }
  function coefficients(inSize, outSize) {
    const scale = inSize / outSize;
    const filterscale = Math.max(scale, 1);
    const support = 3 * filterscale;
    const rows = [];
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale;
      const ss = 1 / filterscale;
      const xmin = Math.max(0, Math.trunc(center - support + 0.5));
      const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
      const k = [];
      let ww = 0;
      for (let x = 0; x < xmax; x++) {
        const v = lanczos((x + xmin - center + 0.5) * ss);
        k.push(v);
        ww += v;
      }
      const ints = k.map((v) => {
        const u = ww !== 0 ? v / ww : v;
        return u < 0 ? Math.trunc(-0.5 + u * (1 << PRECISION_BITS)) : Math.trunc(0.5 + u * (1 << PRECISION_BITS));
      });
      rows.push({ xmin, k: ints });
    }
    return rows;
  }
  function clip8(v) {
    if (v >= 2 ** (PRECISION_BITS + 8)) return 255;
    if (v <= 0) return 0;
    return Math.floor(v / 2 ** PRECISION_BITS);
  }
  function passRows(img, rows, width, outW, coeffs) {
    // each row resampled to outW columns
    const out = new Uint8Array(rows * outW);
    for (let y = 0; y < rows; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const { xmin, k } = coeffs[xx];
        let ss = 1 << (PRECISION_BITS - 1);
        for (let x = 0; x < k.length; x++) ss += img[y * width + x + xmin] * k[x];
        out[y * outW + xx] = clip8(ss);
      }
    }
    return out;
  }
  function passColumns(img, width, coeffs, outH) {
    // each column resampled to outH rows
    const out = new Uint8Array(outH * width);
    for (let yy = 0; yy < outH; yy++) {
      const { xmin, k } = coeffs[yy];
      for (let xx = 0; xx < width; xx++) {
        let ss = 1 << (PRECISION_BITS - 1);
        for (let y = 0; y < k.length; y++) ss += img[(y + xmin) * width + xx] * k[y];
        out[yy * width + xx] = clip8(ss);
      }
    }
    return out;
  }
  // Pillow 13 runs the vertical pass first when the height shrinks by more than twice the pixels the width
  // loses (python-pillow/Pillow#9549; found to match Pillow 13.0 on every shape an MNIST crop can have)
  function resizeLanczos(src, h, w, newH, newW) {
    const needH = newW !== w;
    const needV = newH !== h;
    const horizontalFirst = !(newH < h && h - newH > 2 * (w - newW));
    if (needH && needV && !horizontalFirst) {
      const tall = passColumns(src, w, coefficients(h, newH), newH);
      return passRows(tall, newH, w, newW, coefficients(w, newW));
    }
    let img = src;
    let rows = h;
    const vert = coefficients(h, newH);
    if (needH) {
      const first = needV ? vert[0].xmin : 0;
      rows = needV ? vert[newH - 1].xmin + vert[newH - 1].k.length - first : h;
      img = passRows(src.subarray(first * w), rows, w, newW, coefficients(w, newW));
      for (const row of vert) row.xmin -= first;
    }
    return needV ? passColumns(img, needH ? newW : w, vert, newH) : img;
  }

  // rgba: canvas pixels (Uint8ClampedArray, width*height*4), white strokes on black
  function canvasToDigit(rgba, width, height) {
    if (width > 512 || height > 512) return { serverOnly: true, why: "canvas larger than 512 px" };
    const h = height;
    const w = width;
    const gray = canvasToGray(rgba, w, h);
    const b = border(gray, h, w);
    if (f32(percentile(b, 90)) - f32(percentile(b, 10)) > 12 && Math.min(h, w) >= 16) {
      return { serverOnly: true, why: "ink along the canvas's edge" };
    }
    const background = median(sortedCopy(gray));
    const strokes = new Float32Array(h * w);
    for (let i = 0; i < h * w; i++) strokes[i] = f32(gray[i] - background);
    const r0 = Math.floor(h / 5);
    const r1 = h - Math.floor(h / 5) || h;
    const c0 = Math.floor(w / 5);
    const c1 = w - Math.floor(w / 5) || w;
    const middle = [];
    for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) middle.push(strokes[r * w + c]);
    let top = middle.length >= 64 ? percentile(sortedCopy(middle), 99.5) : 0;
    if (top < 25) top = percentile(sortedCopy(strokes), 99.5);
    if (top < 25) return { blank: true };
    const topF = f32(top);
    const floor = f32(0.15);
    for (let i = 0; i < h * w; i++) {
      let v = f32(strokes[i] / topF);
      v = v < 0 ? 0 : v > 1 ? 1 : v;
      strokes[i] = v < floor ? 0 : v;
    }
    const picked = pickDigit(strokes, h, w);
    let rTop = h;
    let rBot = -1;
    let cLeft = w;
    let cRight = -1;
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        if (picked[r * w + c] !== 0) {
          if (r < rTop) rTop = r;
          if (r > rBot) rBot = r;
          if (c < cLeft) cLeft = c;
          if (c > cRight) cRight = c;
        }
      }
    }
    if (rBot < 0) return { blank: true };
    const ch = rBot - rTop + 1;
    const cw = cRight - cLeft + 1;
    const crop = new Uint8Array(ch * cw);
    for (let r = 0; r < ch; r++) {
      for (let c = 0; c < cw; c++) crop[r * cw + c] = Math.trunc(f32(picked[(r + rTop) * w + c + cLeft] * 255));
    }
    const scale = 20.0 / Math.max(ch, cw);
    const newH = Math.max(1, roundHalfEven(ch * scale));
    const newW = Math.max(1, roundHalfEven(cw * scale));
    const small = newH === ch && newW === cw ? crop : resizeLanczos(crop, ch, cw, newH, newW);
    const placed = new Float64Array(784);
    const t0 = Math.floor((28 - newH) / 2);
    const l0 = Math.floor((28 - newW) / 2);
    let total = 0;
    let sy = 0;
    let sx = 0;
    for (let r = 0; r < newH; r++) {
      for (let c = 0; c < newW; c++) {
        const v = small[r * newW + c];
        placed[(r + t0) * 28 + c + l0] = v;
        total += v;
        sy += v * (r + t0);
        sx += v * (c + l0);
      }
    }
    if (total <= 0) return { blank: true };
    const dy = Math.trunc(roundHalfEven(13.5 - sy / total));
    const dx = Math.trunc(roundHalfEven(13.5 - sx / total));
    const digit = new Uint8Array(784);
    for (let r = 0; r < 28; r++) {
      for (let c = 0; c < 28; c++) {
        const sr = r - dy;
        const sc = c - dx;
        if (sr >= 0 && sr < 28 && sc >= 0 && sc < 28) digit[r * 28 + c] = placed[sr * 28 + sc];
      }
    }
    return { digit };
  }

  // The strokes ({w: pen width, p: [[x, y], ...]} in pad pixels) drawn afresh on a black pad: one path per stroke,
  // round caps and joins, so a replay (Undo, a remount) gives the very pixels the live drawing gave.
  function paint(ctx, strokes) {
    const { width, height } = ctx.canvas;
    ctx.globalCompositeOperation = "source-over";
    ctx.fillStyle = "#000000";
    ctx.fillRect(0, 0, width, height);
    ctx.strokeStyle = "#ffffff";
    ctx.fillStyle = "#ffffff";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const { w, p } of strokes) {
      if (!p.length) continue;
      ctx.beginPath();
      if (p.length === 1) {
        ctx.arc(p[0][0], p[0][1], w / 2, 0, 2 * Math.PI);
        ctx.fill();
        continue;
      }
      ctx.lineWidth = w;
      ctx.moveTo(p[0][0], p[0][1]);
      for (let i = 1; i < p.length; i++) ctx.lineTo(p[i][0], p[i][1]);
      ctx.stroke();
    }
  }

  root.DrawDigit = { canvasToDigit, canvasToGray, paint, _resize: resizeLanczos };
})(typeof window !== "undefined" ? window : globalThis);
