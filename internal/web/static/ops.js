// The operations page: every service and instance from the registry,
// each asked for its own /readyz and /metrics, and the dead letters;
// refreshed every two seconds. Data reaches the page as textContent only.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  // A view's lag behind the log: records yet to read, and how old the
  // last one it applied is while it is behind.
  function lag(inst) {
    if (inst.lag_records === undefined) return "";
    if (inst.lag_records === 0) return "caught up";
    return inst.lag_records + " records, " + (inst.lag_seconds || 0).toFixed(1) + " s";
  }

  function render(st) {
    const rows = [];
    let ready = 0, total = 0;
    for (const svc of st.services) {
      if (svc.instances.length === 0) {
        const tr = el("tr");
        tr.append(el("td", svc.service), el("td", "—"), el("td", "none", "bad"),
          el("td", svc.error || "no healthy instance in the registry"), el("td", ""), el("td", ""), el("td", ""));
        rows.push(tr);
        continue;
      }
      for (const inst of svc.instances) {
        total++;
        if (inst.ready) ready++;
        const tr = el("tr");
        tr.append(el("td", svc.service), el("td", inst.url),
          el("td", inst.ready ? "ready" : "not ready", inst.ready ? "good" : "bad"),
          el("td", inst.status), el("td", inst.ms + " ms"),
          el("td", inst.dead_lettered === undefined ? "" : inst.dead_lettered),
          el("td", lag(inst)));
        rows.push(tr);
      }
    }
    $("instances").querySelector("tbody").replaceChildren(...rows);
    const dl = st.dead_letters;
    $("dead-letters").textContent = dl
      ? dl.total + (dl.total === 1 ? " dead letter" : " dead letters") + " in the topic, " + dl.waiting + " not redriven"
      : "Count unknown: " + (st.dead_letters_error || "");
    $("status").textContent = ready + " of " + total + " instances ready · " + new Date(st.time).toLocaleTimeString();
  }

  async function refresh() {
    try {
      const resp = await fetch("/ops/status", { headers: { Accept: "application/json" } });
      if (!resp.ok) throw new Error(resp.status + " " + resp.statusText);
      render(await resp.json());
    } catch (e) {
      $("status").textContent = "The gateway does not answer: " + e.message;
    }
    setTimeout(refresh, 2000);
  }

  refresh();
})();
