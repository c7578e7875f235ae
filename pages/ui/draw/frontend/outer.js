// The component's frame (same origin as the app) speaks Streamlit's component protocol and holds the pad in a
// sandboxed frame of its own (opaque origin): Chromium runs such a frame in a process of its own, so the pad keeps
// drawing and answering while the app's page re-renders the sections below after each stroke.
(function () {
  "use strict";
  const FILES = ["draw.css", "pad.html", "tf-core.min.js", "tf-backend-cpu.min.js", "digit.js", "net.js", "draw.js"];
  const frame = document.getElementById("pad-frame");
  let ready = false;
  let pending = null; // the last render's args, kept until the pad is ready
  let modelUrl;
  const models = {};

  function toStreamlit(type, data) {
    window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
  }
  function toPad(message) {
    frame.contentWindow.postMessage(message, "*");
  }

  async function model(url) {
    if (!url) return null;
    if (!models[url]) models[url] = fetch(url).then((r) => (r.ok ? r.json() : Promise.reject(new Error(r.status))));
    return models[url];
  }

  async function render(args) {
    if (!ready) {
      pending = args;
      return;
    }
    toPad({ kind: "render", args });
    if (args.model_url !== modelUrl) {
      modelUrl = args.model_url;
      try {
        toPad({ kind: "model", url: modelUrl, description: await model(modelUrl) });
      } catch (err) {
        toPad({ kind: "model", url: modelUrl, description: null, error: String(err) });
      }
    }
  }

  window.addEventListener("message", (event) => {
    const msg = event.data || {};
    if (event.source === frame.contentWindow) {
      if (msg.kind === "ready") {
        ready = true;
        if (pending) render(pending);
      } else if (msg.kind === "value") {
        toStreamlit("streamlit:setComponentValue", { dataType: "json", value: msg.value });
      } else if (msg.kind === "height") {
        frame.style.height = `${msg.height}px`;
        toStreamlit("streamlit:setFrameHeight", { height: msg.height });
      }
    } else if (msg.type === "streamlit:render") {
      render(msg.args || {});
    }
  });

  Promise.all(FILES.map((name) => fetch(name).then((r) => r.text()))).then(([css, html, ...scripts]) => {
    const code = scripts.map((s) => `<script>${s.replace(/<\/script/gi, "<\\/script")}</` + "script>").join("\n");
    frame.srcdoc = `<!doctype html><html><head><meta charset="utf-8"><style>${css}</style></head><body>${html}${code}</body></html>`;
  });
  toStreamlit("streamlit:componentReady", { apiVersion: 1 });
})();
