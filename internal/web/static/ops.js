// The operations console: every service and instance from the registry,
// each asked for its own /readyz and /metrics (by the gateway, at
// /ops/api/status), the views' lag over time, the command figures, and
// the dead-letter topic with redrive. Data reaches the page as
// textContent only; the charts are SVG built element by element.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const SPAN = 5 * 60 * 1000; // the charts' span: the gateway keeps five minutes
  let tracesURL = "";
  let shownID = "";
  let lastList = "";

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function duration(s) {
    if (s === undefined || s === null) return "";
    if (s < 60) return Math.floor(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  function ms(s) {
    if (s === undefined || s === null) return "—";
    return s < 0.01 ? (s * 1000).toFixed(2) + " ms" : s < 1 ? (s * 1000).toFixed(0) + " ms" : s.toFixed(2) + " s";
  }

  // traceLink is a link to trace id in the viewer, or null.
  function traceLink(id, text) {
    if (!tracesURL || !/^[0-9a-f]{32}$/.test(id) || /^0+$/.test(id)) return null;
    const a = el("a", text || "trace " + id.slice(0, 8) + "…");
    a.href = tracesURL.replace("{trace}", encodeURIComponent(id));
    a.rel = "noreferrer";
    return a;
  }

  // A line chart of points' key over the last five minutes (now at the
  // right) in a small SVG, with its last and highest values said in words
  // for those who cannot see it.
  function chart(points, key, unit, now) {
    const w = 220, h = 44, pad = 3;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("width", w);
    svg.setAttribute("height", h);
    svg.setAttribute("role", "img");
    svg.setAttribute("class", "chart");
    const values = points.map((p) => p[key]);
    const top = Math.max(1e-9, ...values);
    const last = values.length ? values[values.length - 1] : 0;
    const fmt = (v) => (unit === "s" ? v.toFixed(2) + " s" : Math.round(v) + " records");
    svg.setAttribute("aria-label", "now " + fmt(last) + ", at most " + fmt(Math.max(0, ...values)) + " in the last five minutes");
    const axis = document.createElementNS(SVG, "line");
    axis.setAttribute("x1", pad); axis.setAttribute("x2", w - pad);
    axis.setAttribute("y1", h - pad); axis.setAttribute("y2", h - pad);
    axis.setAttribute("class", "axis");
    svg.append(axis);
    if (values.length > 1) {
      const line = document.createElementNS(SVG, "polyline");
      const x = (t) => pad + Math.max(0, 1 - (now - Date.parse(t)) / SPAN) * (w - 2 * pad);
      line.setAttribute("points", points.map((p, i) =>
        x(p.t).toFixed(1) + "," + (h - pad - (values[i] / top) * (h - 2 * pad)).toFixed(1)).join(" "));
      line.setAttribute("class", "line");
      svg.append(line);
    }
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", pad); label.setAttribute("y", 11);
    label.setAttribute("class", "chart-label");
    label.textContent = "max " + fmt(top < 1e-6 ? 0 : top);
    svg.append(label);
    return svg;
  }

  function partitions(inst) {
    if (!inst.partitions) return inst.position !== undefined ? "position " + inst.position : "";
    return inst.partitions.map((p) => {
      const lag = inst.group_lag && inst.group_lag[String(p)];
      return lag === undefined ? String(p) : p + " (" + lag + ")";
    }).join(", ");
  }

  function renderInstances(st) {
    const rows = [];
    let ready = 0, total = 0;
    for (const svc of st.services) {
      if (svc.instances.length === 0) {
        const tr = el("tr");
        tr.append(el("th", svc.service), el("td", "—"), el("td", ""), el("td", "none", "bad"), el("td", ""), el("td", ""),
          el("td", svc.error || "no healthy instance in the registry"), el("td", ""), el("td", ""), el("td", ""));
        tr.firstChild.scope = "row";
        rows.push(tr);
        continue;
      }
      for (const inst of svc.instances) {
        total++;
        if (inst.ready) ready++;
        const tr = el("tr");
        const name = el("th", svc.service);
        name.scope = "row";
        tr.append(name, el("td", inst.id), el("td", inst.address),
          el("td", inst.ready ? "healthy" : "not ready", inst.ready ? "good" : "bad"),
          el("td", inst.version || ""), el("td", duration(inst.uptime_seconds)),
          el("td", inst.status), el("td", inst.ms + " ms"), el("td", partitions(inst)),
          el("td", inst.dead_lettered === undefined ? "" : inst.dead_lettered));
        tr.dataset.service = svc.service;
        tr.dataset.ready = inst.ready ? "yes" : "no";
        rows.push(tr);
      }
    }
    $("instances").querySelector("tbody").replaceChildren(...rows);
    $("status").textContent = ready + " of " + total + " instances healthy · " + new Date(st.time).toLocaleTimeString();
  }

  function renderViews(st) {
    const rows = [];
    const now = Date.parse(st.time);
    for (const svc of st.services) {
      for (const inst of svc.instances) {
        if (inst.lag_records === undefined) continue;
        const h = inst.history || [];
        const tr = el("tr");
        const name = el("th", svc.service + " · " + inst.id);
        name.scope = "row";
        const c1 = el("td"), c2 = el("td");
        c1.append(chart(h, "records", "records", now));
        c2.append(chart(h, "seconds", "s", now));
        tr.append(name, el("td", inst.position === undefined ? "" : inst.position),
          el("td", inst.lag_records), el("td", (inst.lag_seconds || 0).toFixed(2)), c1, c2);
        rows.push(tr);
      }
    }
    $("views").querySelector("tbody").replaceChildren(...rows);
  }

  function renderCommands(c) {
    $("cmd-rate").textContent = c.window_seconds ? c.per_second.toFixed(2) : "—";
    $("cmd-p50").textContent = ms(c.p50);
    $("cmd-p95").textContent = ms(c.p95);
    $("cmd-p99").textContent = ms(c.p99);
    const outs = Object.entries(c.outcomes || {}).map(([k, v]) => v + " " + k);
    $("cmd-outcomes").textContent = outs.length ? outs.join(", ") : "none in the window";
    $("cmd-shed").textContent = c.shed_window + " in the window, " + c.shed + " since start";
    $("cmd-total").textContent = c.total;
    $("cmd-window").textContent = c.window_seconds
      ? "Over the last " + Math.round(c.window_seconds) + " s, from the books instances' bookshelf_command_duration_seconds."
      : "The figures need two looks at the instances; the next comes in two seconds.";
  }

  function renderTraces(url) {
    if (url === tracesURL) return;
    tracesURL = url || "";
    $("trace-form").hidden = !tracesURL;
    if (tracesURL) {
      // The viewer's own page: the address up to the trace's place, less
      // a trailing traces/ or trace/.
      $("trace-viewer").href = tracesURL.split("{trace}")[0].replace(/traces?\/$/, "");
    }
  }

  async function refresh() {
    try {
      const resp = await fetch("/ops/api/status", { headers: { Accept: "application/json" } });
      if (!resp.ok) throw new Error(resp.status + " " + resp.statusText);
      const st = await resp.json();
      renderTraces(st.traces_url);
      renderInstances(st);
      renderViews(st);
      renderCommands(st.commands);
      const dl = st.dead_letters;
      $("dead-letters").textContent = dl
        ? dl.total + (dl.total === 1 ? " dead letter" : " dead letters") + " in the topic, " + dl.waiting + " not redriven"
        : "The dead-letter topic cannot be read: " + (st.dead_letters_error || "");
      if (dl) await refreshDeadLetters(false);
    } catch (e) {
      $("status").textContent = "The gateway does not answer: " + e.message;
    }
    setTimeout(refresh, 2000);
  }

  async function problem(resp) {
    try {
      const p = await resp.json();
      return p.detail || p.title || resp.statusText;
    } catch (e) {
      return resp.status + " " + resp.statusText;
    }
  }

  function renderOrigins(list) {
    const sel = $("dl-origin");
    const origins = [...new Set(list.map((d) => d.origin_topic).filter(Boolean))].sort();
    const have = [...sel.options].slice(1).map((o) => o.value);
    if (have.join("\n") !== origins.join("\n")) {
      const keep = sel.value;
      sel.replaceChildren(new Option("every topic", ""), ...origins.map((o) => new Option(o, o)));
      sel.value = origins.includes(keep) ? keep : "";
    }
    $("dl-redrive-origin").disabled = sel.value === "";
  }

  async function refreshDeadLetters(force) {
    const resp = await fetch("/ops/api/dead-letters", { headers: { Accept: "application/json" } });
    if (!resp.ok) {
      $("dl-result").textContent = await problem(resp);
      return;
    }
    const body = await resp.text();
    if (!force && body === lastList) return; // unchanged: keep focus where it is
    lastList = body;
    const list = JSON.parse(body).dead_letters;
    renderOrigins(list);
    const origin = $("dl-origin").value;
    const rows = [];
    for (const d of list) {
      if (origin && d.origin_topic !== origin) continue;
      const tr = el("tr");
      tr.dataset.id = d.id;
      const id = el("th", d.id);
      id.scope = "row";
      const state = d.redriven_to ? "yes, to " + d.redriven_to : d.redriven ? d.redriven + " times before" : "no";
      const actions = el("td", null, "actions");
      const show = el("button", "Show", "secondary");
      show.type = "button";
      show.setAttribute("aria-label", "Show dead letter " + d.id);
      show.addEventListener("click", () => showDeadLetter(d.id));
      const redrive = el("button", "Redrive");
      redrive.type = "button";
      redrive.setAttribute("aria-label", "Redrive dead letter " + d.id);
      if (d.not_redrivable) {
        redrive.disabled = true;
        redrive.title = d.not_redrivable;
      }
      redrive.addEventListener("click", () => sendRedrive({ ids: [d.id] }));
      actions.append(show, redrive);
      const err = el("td", d.error);
      if (d.not_redrivable) err.append(el("span", "Cannot be redriven: " + d.not_redrivable, "meta"));
      tr.append(id, el("td", d.origin), el("td", new Date(d.time).toLocaleString()), err, el("td", state),
        el("td", d.value_base64 ? "(binary, " + d.size + " bytes)" : d.value, "value"), actions);
      rows.push(tr);
    }
    if (rows.length === 0) {
      const tr = el("tr");
      const td = el("td", "No dead letters" + (origin ? " from " + origin : "") + ".");
      td.colSpan = 7;
      tr.append(td);
      rows.push(tr);
    }
    $("dead-letter-list").querySelector("tbody").replaceChildren(...rows);
  }

  function field(dl, name, value) {
    if (value === undefined || value === null || value === "") return;
    const dd = el("dd");
    if (value instanceof Node) dd.append(value); else dd.textContent = String(value);
    dl.append(el("dt", name), dd);
  }

  async function showDeadLetter(id) {
    const resp = await fetch("/ops/api/dead-letters/" + encodeURIComponent(id), { headers: { Accept: "application/json" } });
    if (!resp.ok) {
      $("dl-result").textContent = await problem(resp);
      return;
    }
    const d = await resp.json();
    shownID = d.id;
    $("dl-detail-title").textContent = "Dead letter " + d.id;
    const f = $("dl-detail-fields");
    f.replaceChildren();
    field(f, "Came from", d.origin);
    field(f, "Dead-lettered", new Date(d.time).toLocaleString() + (d.by ? " by " + d.by : ""));
    field(f, "Error", d.error);
    field(f, "Redriven before", d.redriven);
    field(f, "Redriven since", d.redriven_to);
    field(f, "Redrive", d.not_redrivable ? "no: " + d.not_redrivable : "yes");
    field(f, "Size", d.size + " bytes" + (d.value_base64 ? ", binary (shown as base64)" : ""));
    if (d.trace_id) field(f, "Trace", traceLink(d.trace_id, d.trace_id) || d.trace_id);
    const hs = $("dl-detail-headers");
    hs.replaceChildren();
    for (const [k, v] of Object.entries(d.headers || {})) field(hs, k, v);
    $("dl-value").value = d.value;
    $("dl-value").disabled = !!d.value_base64;
    for (const b of ["dl-redrive-mended", "dl-redrive-one"]) $(b).disabled = !!d.not_redrivable;
    $("dl-redrive-mended").disabled = !!d.not_redrivable || !!d.value_base64;
    $("dl-detail").hidden = false;
    $("dl-detail-title").focus();
  }

  async function sendRedrive(body) {
    $("dl-result").textContent = "Redriving…";
    try {
      const resp = await fetch("/ops/api/dead-letters/redrive", {
        method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify(body),
      });
      if (!resp.ok) {
        $("dl-result").textContent = "Not redriven: " + (await problem(resp));
        return;
      }
      const r = await resp.json();
      const lines = r.redriven.map((x) => x.error ? x.id + " not redriven: " + x.error : x.id + " redriven to " + x.to);
      $("dl-result").textContent = r.sent + " redriven, " + r.refused + " not. " + lines.join(" · ") + (r.error ? " · " + r.error : "");
    } catch (e) {
      $("dl-result").textContent = "Not redriven: " + e.message;
    }
    await refreshDeadLetters(true);
  }

  $("dl-origin").addEventListener("change", () => refreshDeadLetters(true));
  $("dl-redrive-origin").addEventListener("click", () => {
    const origin = $("dl-origin").value;
    if (origin) sendRedrive({ origin });
  });
  $("dl-redrive-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (shownID) sendRedrive({ ids: [shownID], value: $("dl-value").value });
  });
  $("dl-redrive-one").addEventListener("click", () => { if (shownID) sendRedrive({ ids: [shownID] }); });
  $("dl-close").addEventListener("click", () => {
    $("dl-detail").hidden = true;
    shownID = "";
    $("dl-title").focus();
  });
  $("trace-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = $("trace-id").value.trim().toLowerCase();
    const a = traceLink(id);
    if (a) window.open(a.href, "_blank", "noreferrer");
    else $("trace-id").setAttribute("aria-invalid", "true");
  });

  refresh();
})();
