// The browser page served at `/`: one static document in the binary (no CDN, no build step). It
// speaks only the native job API: POST /v1/jobs, the job's event stream (read with fetch so an API
// key can travel in the Authorization header, which EventSource cannot send), cancel, and the PNGs.
// The gallery lives in this browser's localStorage, PNG bytes included, so downloads keep their
// `parameters` chunk after the server has dropped the job.
enum WebPage {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>DeciDiffusion</title>
    <style>
    :root { --bg: #101418; --panel: #1a2027; --line: #2c3540; --text: #e6e9ed; --muted: #9aa5b1; --accent: #4f9cf9; --bad: #f26b6b; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 15px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--text); }
    header { padding: 12px 16px; border-bottom: 1px solid var(--line); display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; }
    header h1 { font-size: 18px; margin: 0; }
    header .model { color: var(--muted); font-size: 13px; }
    main { display: grid; grid-template-columns: minmax(280px, 380px) 1fr; gap: 16px; padding: 16px; }
    @media (max-width: 760px) { main { grid-template-columns: 1fr; padding: 10px; } }
    form, .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px; }
    label { display: block; font-size: 13px; color: var(--muted); margin: 8px 0 3px; }
    textarea, input, select { width: 100%; padding: 7px 8px; border-radius: 6px; border: 1px solid var(--line); background: #0d1115; color: var(--text); font: inherit; }
    textarea { resize: vertical; min-height: 64px; }
    .row { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
    .buttons { display: flex; gap: 8px; margin-top: 12px; }
    button { padding: 9px 14px; border-radius: 6px; border: 0; font: inherit; cursor: pointer; background: var(--accent); color: #fff; }
    button.secondary { background: #3a4552; }
    button:disabled { opacity: .5; cursor: default; }
    #status { min-height: 1.4em; margin: 4px 0 8px; }
    #status.error { color: var(--bad); }
    progress { width: 100%; height: 10px; }
    #preview { display: block; width: 100%; max-width: 512px; image-rendering: auto; border-radius: 6px; background: #0d1115; aspect-ratio: 1; object-fit: contain; }
    #gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 10px; margin-top: 12px; }
    .card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; font-size: 12px; }
    .card img { width: 100%; display: block; aspect-ratio: 1; object-fit: contain; background: #0d1115; }
    .card .meta { padding: 6px 8px; color: var(--muted); word-break: break-word; }
    .card .meta b { color: var(--text); font-weight: 500; }
    .card .actions { display: flex; flex-wrap: wrap; gap: 6px; padding: 0 8px 8px; }
    .card .actions button, .card .actions a { flex: 1 1 auto; min-width: 0; font-size: 12px; padding: 5px 6px; white-space: nowrap; text-align: center; border-radius: 5px; background: #3a4552; color: #fff; text-decoration: none; }
    details { margin-top: 8px; }
    summary { cursor: pointer; color: var(--muted); font-size: 13px; }
    </style>
    </head>
    <body>
    <header><h1>DeciDiffusion</h1><span class="model" id="model">connecting…</span></header>
    <main>
      <form id="form" autocomplete="off">
        <label for="prompt">Prompt</label>
        <textarea id="prompt" name="prompt" required placeholder="a red circle on a blue background"></textarea>
        <label for="negative_prompt">Negative prompt</label>
        <textarea id="negative_prompt" name="negative_prompt" rows="2"></textarea>
        <div class="row">
          <div><label for="width">Width</label><input id="width" name="width" type="number" min="8" step="8"></div>
          <div><label for="height">Height</label><input id="height" name="height" type="number" min="8" step="8"></div>
        </div>
        <div class="row">
          <div><label for="steps">Steps</label><input id="steps" name="steps" type="number" min="1" max="1000"></div>
          <div><label for="guidance_scale">Guidance</label><input id="guidance_scale" name="guidance_scale" type="number" min="0" max="100" step="0.5"></div>
        </div>
        <div class="row">
          <div><label for="seed">Seed (-1 random)</label><input id="seed" name="seed" type="number" value="-1"></div>
          <div><label for="num_images">Images</label><input id="num_images" name="num_images" type="number" min="1" value="1"></div>
        </div>
        <label for="scheduler">Scheduler</label>
        <select id="scheduler" name="scheduler"><option value="">the model's own</option></select>
        <details><summary>API key</summary>
          <label for="apikey">Bearer key (kept in this browser)</label><input id="apikey" type="password">
        </details>
        <div class="buttons">
          <button id="generate" type="submit">Generate</button>
          <button id="cancel" type="button" class="secondary" disabled>Cancel</button>
        </div>
      </form>
      <section>
        <div class="panel">
          <div id="status">Ready.</div>
          <progress id="bar" max="1" value="0"></progress>
          <img id="preview" alt="preview">
        </div>
        <div id="gallery"></div>
      </section>
    </main>
    <script>
    "use strict";
    const $ = (id) => document.getElementById(id);
    const store = { get: (k, d) => { try { return JSON.parse(localStorage.getItem(k)) ?? d; } catch { return d; } },
                    set: (k, v) => { try { localStorage.setItem(k, JSON.stringify(v)); return true; } catch { return false; } } };
    const fields = ["prompt", "negative_prompt", "width", "height", "steps", "guidance_scale", "seed", "num_images", "scheduler"];
    let current = null;

    function headers(json) {
      const h = {};
      const key = $("apikey").value.trim();
      if (key) h["Authorization"] = "Bearer " + key;
      if (json) h["Content-Type"] = "application/json";
      return h;
    }
    function setStatus(text, error) { $("status").textContent = text; $("status").className = error ? "error" : ""; }
    function clock(s) { s = Math.max(0, Math.round(s)); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); }
    async function errorText(res) {
      try { const j = await res.json(); return (j.error && j.error.message) || JSON.stringify(j); } catch { return res.status + " " + res.statusText; }
    }

    async function loadCapabilities() {
      try {
        const res = await fetch("/v1/capabilities", { headers: headers() });
        if (!res.ok) { $("model").textContent = res.status === 401 ? "API key needed" : "capabilities: " + res.status; return; }
        const caps = await res.json();
        const def = (caps.models || []).find(m => m.default) || (caps.models || [])[0];
        $("model").textContent = def ? "model: " + def.name : "";
        const d = caps.defaults || {};
        for (const k of ["width", "height", "steps", "guidance_scale"]) if (d[k] != null && !$(k).value) $(k).value = d[k];
        if (d.size_multiple) { $("width").step = $("height").step = $("width").min = $("height").min = d.size_multiple; }
        const sel = $("scheduler");
        for (const s of caps.schedulers || []) {
          const name = typeof s === "string" ? s : s.name;
          if ([...sel.options].some(o => o.value === name)) continue;
          const o = document.createElement("option"); o.value = o.textContent = name; sel.appendChild(o);
        }
      } catch (e) { $("model").textContent = "server unreachable"; }
    }

    function body() {
      const b = { preview_every: 1, preview_upscale: true };
      for (const k of fields) {
        const v = $(k).value.trim();
        if (v === "") continue;
        b[k] = ["prompt", "negative_prompt", "scheduler"].includes(k) ? v : Number(v);
      }
      return b;
    }

    // Reads a text/event-stream body and calls onEvent(name, data) per event.
    async function readEvents(res, onEvent) {
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end); buffer = buffer.slice(end + 2);
          let name = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          let parsed = null; try { parsed = data ? JSON.parse(data) : null; } catch {}
          onEvent(name, parsed);
        }
      }
    }

    async function generate(ev) {
      ev.preventDefault();
      if (current) return;
      const settings = body();
      $("generate").disabled = true; $("bar").value = 0; $("bar").max = 1;
      setStatus("Submitting…");
      try {
        const res = await fetch("/v1/jobs", { method: "POST", headers: headers(true), body: JSON.stringify(settings) });
        if (!res.ok) {
          const retry = res.headers.get("Retry-After");
          throw new Error(await errorText(res) + (retry ? " (retry in " + retry + " s)" : ""));
        }
        const job = await res.json();
        current = job.id;
        $("cancel").disabled = false;
        setStatus("Queued, position " + job.queue_position + ".");
        const stream = await fetch(job.events_url || ("/v1/jobs/" + job.id + "/events"), { headers: headers() });
        if (!stream.ok) throw new Error(await errorText(stream));
        let final = null;
        await readEvents(stream, (name, data) => {
          if (name === "queued" && data) setStatus("Queued, position " + data.position + ".");
          else if (name === "started") setStatus("Running…");
          else if (name === "progress" && data) {
            $("bar").max = data.total_steps; $("bar").value = data.step;
            const eta = data.eta_seconds != null ? ", ETA " + clock(data.eta_seconds) : "";
            const rate = data.seconds_per_step != null ? ", " + data.seconds_per_step.toFixed(2) + " s/step" : "";
            setStatus("Step " + data.step + "/" + data.total_steps + rate + eta);
            if (data.preview) $("preview").src = "data:image/png;base64," + data.preview;
          } else if (["done", "failed", "cancelled"].includes(name)) final = { name, job: data };
        });
        if (!final) throw new Error("the event stream ended early");
        if (final.name === "failed") throw new Error("failed: " + ((final.job && final.job.error) || "unknown error"));
        await collect(final.job, settings, final.name === "cancelled");
        setStatus(final.name === "cancelled" ? "Cancelled." : "Done: seed " + final.job.seed + ".");
      } catch (e) {
        setStatus(e.message || String(e), true);
      } finally {
        current = null; $("generate").disabled = false; $("cancel").disabled = true;
      }
    }

    async function collect(job, settings, partial) {
      const items = store.get("gallery", []);
      for (const url of job.images || []) {
        const res = await fetch(url, { headers: headers() });
        if (!res.ok) continue;
        const blob = await res.blob();
        const dataURL = await new Promise(r => { const fr = new FileReader(); fr.onload = () => r(fr.result); fr.readAsDataURL(blob); });
        $("preview").src = dataURL;
        items.unshift({ id: job.id, url: dataURL, seed: job.seed, partial, settings: Object.assign({}, settings, { seed: job.seed }),
                        created: new Date().toISOString() });
      }
      // Oldest first out when the browser's storage is full.
      while (items.length && !store.set("gallery", items.slice(0, 60))) items.pop();
      render();
    }

    function render() {
      const g = $("gallery"); g.textContent = "";
      for (const [i, item] of store.get("gallery", []).entries()) {
        const card = document.createElement("div"); card.className = "card";
        const img = document.createElement("img"); img.src = item.url; img.alt = item.settings.prompt || "";
        const meta = document.createElement("div"); meta.className = "meta";
        const s = item.settings;
        meta.innerHTML = "<b></b><br>";
        meta.querySelector("b").textContent = s.prompt || "";
        meta.append("seed " + item.seed + (s.steps ? ", " + s.steps + " steps" : "") + (s.guidance_scale != null ? ", cfg " + s.guidance_scale : "")
                    + (s.scheduler ? ", " + s.scheduler : "") + (item.partial ? " (partial)" : ""));
        const actions = document.createElement("div"); actions.className = "actions";
        const use = document.createElement("button"); use.type = "button"; use.textContent = "Use settings"; use.title = "Put these settings back in the form";
        use.onclick = () => { for (const k of fields) $(k).value = s[k] ?? (k === "scheduler" ? "" : $(k).value); window.scrollTo(0, 0); };
        const dl = document.createElement("a"); dl.textContent = "PNG"; dl.href = item.url; dl.download = "decidiffusion-" + item.seed + "-" + i + ".png";
        const rm = document.createElement("button"); rm.type = "button"; rm.textContent = "Remove";
        rm.onclick = () => { const all = store.get("gallery", []); all.splice(i, 1); store.set("gallery", all); render(); };
        actions.append(use, dl, rm);
        card.append(img, meta, actions);
        g.appendChild(card);
      }
    }

    $("cancel").onclick = async () => {
      if (!current) return;
      $("cancel").disabled = true;
      // Said before the call: the server answers once the job has stopped, often after the event
      // stream has already reported "cancelled".
      setStatus("Cancelling…");
      const res = await fetch("/v1/jobs/" + current + "/cancel", { method: "POST", headers: headers() });
      if (!res.ok) setStatus(await errorText(res), true);
    };
    $("apikey").value = store.get("apikey", "");
    $("apikey").onchange = () => { store.set("apikey", $("apikey").value.trim()); loadCapabilities(); };
    $("form").onsubmit = generate;
    render();
    loadCapabilities();
    </script>
    </body>
    </html>
    """#
}
