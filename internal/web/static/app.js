// The bookshelf web app: a client of the gateway's public API.
//
// Every command's answer carries Bookshelf-Position ("partition:offset"
// of its event). The page keeps the furthest position it has seen for
// each partition and sends it with every query, so the views answer from a
// state that holds what the person just did. Data from the shelf only ever
// reaches the page as textContent.
"use strict";

(function () {
  const POSITION = "Bookshelf-Position";
  const FIELDS = ["title", "authors", "year", "isbn"];
  const $ = (id) => document.getElementById(id);

  // --- read-your-writes -------------------------------------------------

  function parsePosition(s) {
    const m = new Map();
    for (const part of (s || "").split(",")) {
      const [p, o] = part.trim().split(":");
      if (/^\d+$/.test(p || "") && /^\d+$/.test(o || "")) {
        const prev = m.get(p);
        if (prev === undefined || BigInt(o) > BigInt(prev)) m.set(p, o);
      }
    }
    return m;
  }

  let position = sessionStorage.getItem("bookshelf-position") || "";

  // remember merges the position of a command's answer into ours.
  function remember(pos) {
    if (!pos) return;
    const m = parsePosition(position);
    for (const [p, o] of parsePosition(pos)) {
      const prev = m.get(p);
      if (prev === undefined || BigInt(o) > BigInt(prev)) m.set(p, o);
    }
    position = [...m].map(([p, o]) => p + ":" + o).join(",");
    sessionStorage.setItem("bookshelf-position", position);
  }

  // --- the API ----------------------------------------------------------

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  // call sends one request. A command carries an Idempotency-Key, so a
  // 503 (retry) is sent again, a few times, without deciding twice; a
  // query carries our position. It resolves to {status, data, problem}.
  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    const command = method !== "GET";
    if (command) headers["Idempotency-Key"] = newKey();
    else if (position) headers[POSITION] = position;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    for (let attempt = 1; ; attempt++) {
      let resp;
      try {
        resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      } catch (e) {
        if (attempt < 3) { await sleep(500 * attempt); continue; }
        return { status: 0, problem: { title: "No answer", detail: "the bookshelf could not be reached: " + e.message } };
      }
      if (resp.status === 503 && attempt < 4) {
        const after = Number(resp.headers.get("Retry-After")) || 1;
        await sleep(Math.min(after, 3) * 1000);
        continue;
      }
      remember(resp.headers.get(POSITION));
      if (command) noteTrace(resp.headers.get("traceresponse"));
      let data = null;
      const text = await resp.text();
      if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
      if (resp.ok) return { status: resp.status, data };
      return { status: resp.status, problem: data || { title: resp.statusText, detail: text } };
    }
  }

  // --- traces -------------------------------------------------------------

  // With a trace viewer configured (/app/config.json), the last command's
  // answer links to its trace: the W3C traceresponse header,
  // 00-<trace id>-<span id>-<flags>. Without the header, no link.
  let tracesURL = "";

  async function loadConfig() {
    try {
      const resp = await fetch("/app/config.json", { headers: { Accept: "application/json" } });
      if (resp.ok) tracesURL = (await resp.json()).traces_url || "";
    } catch (e) { tracesURL = ""; }
  }

  function noteTrace(header) {
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/.exec((header || "").trim());
    const p = $("last-trace");
    if (!tracesURL || !m || /^0+$/.test(m[1])) {
      p.hidden = true;
      return;
    }
    const a = document.createElement("a");
    a.href = tracesURL.replace("{trace}", encodeURIComponent(m[1]));
    a.rel = "noreferrer";
    a.textContent = "Trace of the last command";
    a.id = "last-trace-link";
    p.replaceChildren(a);
    p.hidden = false;
  }

  function say(text) { $("status").textContent = text; }

  function describe(problem) {
    return problem.detail || problem.title || "something went wrong";
  }

  // --- elements ---------------------------------------------------------

  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function button(text, label, onClick, cls) {
    const b = el("button", text, { type: "button", "aria-label": label });
    if (cls) b.className = cls;
    b.addEventListener("click", onClick);
    return b;
  }

  const when = (t) => (t ? new Date(t).toLocaleString() : "");

  // --- adding a book ----------------------------------------------------

  function clearErrors() {
    $("form-error").hidden = true;
    $("form-error").textContent = "";
    for (const f of FIELDS) {
      $(f + "-error").hidden = true;
      $(f + "-error").textContent = "";
      $(f).removeAttribute("aria-invalid");
    }
  }

  function fieldError(field, text) {
    const slot = $(field + "-error");
    slot.textContent = text;
    slot.hidden = false;
    $(field).setAttribute("aria-invalid", "true");
    $(field).focus();
  }

  // fieldOf is the form field a problem's field names, if it is one.
  function fieldOf(problem) {
    const f = String(problem.field || "").toLowerCase();
    return FIELDS.includes(f) ? f : null;
  }

  // The detail of a field's problem starts with the field's name; next to
  // the field, the name is already said by its label.
  function reasonOf(problem, field) {
    const d = describe(problem);
    const prefix = field + ": ";
    return d.toLowerCase().startsWith(prefix) ? d.slice(prefix.length) : d;
  }

  async function addBook(ev) {
    ev.preventDefault();
    clearErrors();
    const body = { title: $("title").value.trim() };
    const authors = $("authors").value.split(",").map((s) => s.trim()).filter((s) => s);
    if (authors.length) body.authors = authors;
    const year = $("year").value.trim();
    if (year) {
      if (!/^-?\d+$/.test(year)) { fieldError("year", "a year is a whole number, such as 1954"); return; }
      body.year = Number(year);
    }
    const isbn = $("isbn").value.trim();
    if (isbn) body.isbn = isbn;
    $("add-button").disabled = true;
    const res = await call("POST", "/books", body);
    $("add-button").disabled = false;
    if (res.problem) {
      const f = fieldOf(res.problem);
      if (f) fieldError(f, reasonOf(res.problem, f));
      else {
        $("form-error").textContent = describe(res.problem);
        $("form-error").hidden = false;
      }
      say("The book was not added.");
      return;
    }
    $("add-form").reset();
    $("title").focus();
    say("Added “" + res.data.title + "”.");
    await Promise.all([loadCatalog(), loadStats()]);
  }

  // --- the catalog --------------------------------------------------------

  // The catalog's query lives in the address, so a search can be shared
  // and the back button works: ?q=, ?author=, ?after= (a page's cursor).
  let query = readQuery();
  let previous = []; // cursors of the pages before this one

  function readQuery() {
    const u = new URLSearchParams(location.search);
    return { q: u.get("q") || "", author: u.get("author") || "", after: u.get("after") || "" };
  }

  function writeQuery(push) {
    const u = new URLSearchParams();
    for (const k of ["q", "author", "after"]) if (query[k]) u.set(k, query[k]);
    const s = u.toString();
    const url = location.pathname + (s ? "?" + s : "");
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
  }

  async function loadCatalog() {
    const u = new URLSearchParams({ limit: "10" });
    for (const k of ["q", "author", "after"]) if (query[k]) u.set(k, query[k]);
    $("q").value = query.q;
    $("author").value = query.author;
    const res = await call("GET", "/books?" + u.toString());
    const tbody = $("books").querySelector("tbody");
    if (res.problem) {
      $("catalog-summary").textContent = "The catalog cannot be shown: " + describe(res.problem);
      return;
    }
    const page = res.data;
    const rows = page.books.map(bookRow);
    tbody.replaceChildren(...rows);
    let summary = page.total === 1 ? "1 book" : page.total + " books";
    if (query.q || query.author) summary += " found";
    if (query.q) summary += " for “" + query.q + "”";
    if (query.author) summary += " by " + query.author;
    if (page.total === 0) summary = query.q || query.author ? "No book found." : "The shelf is empty: add a book.";
    $("catalog-summary").textContent = summary.endsWith(".") ? summary : summary + ".";
    $("next-page").disabled = !page.next;
    $("next-page").dataset.next = page.next || "";
    $("prev-page").disabled = previous.length === 0;
    $("first-page").disabled = !query.after;
  }

  function bookRow(b) {
    const tr = el("tr");
    tr.dataset.id = b.id;
    tr.append(el("td", b.title, { class: "title" }));
    const authors = el("td");
    (b.authors || []).forEach((a, i) => {
      if (i) authors.append(", ");
      authors.append(button(a, "Show the books of " + a, () => filterAuthor(a), "link"));
    });
    tr.append(authors, el("td", b.year || ""), el("td", b.isbn || ""));
    const reads = el("td", b.reads || 0);
    if (b.last_read_at) reads.title = "last read " + when(b.last_read_at);
    tr.append(reads);
    const actions = el("td", null, { class: "actions" });
    actions.append(
      button("Mark read", "Mark “" + b.title + "” read", () => markRead(b)),
      button("Remove", "Remove “" + b.title + "”", () => removeBook(b, tr), "secondary"),
    );
    tr.append(actions);
    return tr;
  }

  function filterAuthor(a) {
    query = { q: "", author: a, after: "" };
    previous = [];
    writeQuery(true);
    loadCatalog();
  }

  async function markRead(b) {
    const res = await call("POST", "/books/" + encodeURIComponent(b.id) + "/read");
    if (res.problem) { say("“" + b.title + "” was not marked read: " + describe(res.problem)); return; }
    say("Marked “" + b.title + "” read.");
    await Promise.all([loadLastRead(), loadCatalog(), loadStats()]);
  }

  async function removeBook(b, row) {
    const res = await call("DELETE", "/books/" + encodeURIComponent(b.id));
    if (res.problem && res.status !== 404) { say("“" + b.title + "” was not removed: " + describe(res.problem)); return; }
    say("Removed “" + b.title + "”.");
    const next = row.nextElementSibling || row.previousElementSibling;
    await Promise.all([loadCatalog(), loadLastRead(), loadStats()]);
    const again = next && $("books").querySelector('tr[data-id="' + CSS.escape(next.dataset.id) + '"] button');
    (again || $("q")).focus();
  }

  // --- last read and statistics -----------------------------------------

  async function loadLastRead() {
    const res = await call("GET", "/books/last-read?limit=5");
    const list = $("last-read-list");
    if (res.problem) { list.replaceChildren(el("li", "Cannot be shown: " + describe(res.problem))); return; }
    const items = res.data.books.map((b) => {
      const li = el("li");
      li.append(el("span", b.title, { class: "title" }));
      const meta = [(b.authors || []).join(", "), when(b.read_at)].filter((s) => s).join(" · ");
      li.append(el("span", meta, { class: "meta" }));
      return li;
    });
    list.replaceChildren(...items);
    $("last-read-empty").hidden = items.length > 0;
  }

  function countRows(obj, limit, byKey) {
    let entries = Object.entries(obj || {});
    entries.sort(byKey ? (a, b) => b[0].localeCompare(a[0]) : (a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    return entries.slice(0, limit).map(([k, n]) => {
      const tr = el("tr");
      tr.append(el("td", k), el("td", n));
      return tr;
    });
  }

  async function loadStats() {
    const res = await call("GET", "/stats");
    const dl = $("stats-totals");
    if (res.problem) { dl.replaceChildren(el("dt", "Unavailable"), el("dd", describe(res.problem))); return; }
    const s = res.data;
    dl.replaceChildren(
      el("dt", "Books on the shelf"), el("dd", s.books_on_shelf),
      el("dt", "Reads"), el("dd", s.books_read),
      el("dt", "Distinct books read"), el("dd", s.distinct_books),
    );
    $("per-year").querySelector("tbody").replaceChildren(...countRows(s.per_year, 10, true));
    $("per-author").querySelector("tbody").replaceChildren(...countRows(s.per_author, 10, false));
  }

  // --- wiring -----------------------------------------------------------

  function start() {
    $("add-form").addEventListener("submit", addBook);
    $("search-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      query = { q: $("q").value.trim(), author: $("author").value.trim(), after: "" };
      previous = [];
      writeQuery(true);
      loadCatalog();
    });
    $("clear-search").addEventListener("click", () => {
      query = { q: "", author: "", after: "" };
      previous = [];
      writeQuery(true);
      loadCatalog();
    });
    $("next-page").addEventListener("click", () => {
      previous.push(query.after);
      query.after = $("next-page").dataset.next;
      writeQuery(true);
      loadCatalog();
    });
    $("prev-page").addEventListener("click", () => {
      query.after = previous.pop() || "";
      writeQuery(true);
      loadCatalog();
    });
    $("first-page").addEventListener("click", () => {
      query.after = "";
      previous = [];
      writeQuery(true);
      loadCatalog();
    });
    window.addEventListener("popstate", () => {
      query = readQuery();
      previous = [];
      loadCatalog();
    });
    loadConfig();
    loadCatalog();
    loadLastRead();
    loadStats();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
