"use strict";
(function () {
  var endpoint = window.location.pathname + window.location.search;
  var tokenKey = "bulwark-admin-token";
  var pollEvery = 1500;      // ms between the end of one refresh and the next
  var requestTimeout = 10000; // ms before a refresh or an action gives up
  var list = document.getElementById("policies");
  var status = document.getElementById("status");
  // Rows by policy name. A Map, not an object: a policy may be named
  // "constructor" or "__proto__".
  var rows = new Map();
  var nextID = 0;

  // uid returns a fresh element id. Ids are never derived from names, so
  // two names that look alike ("a.b", "a_b") cannot share one and every
  // label points at its own field.
  function uid(prefix) { nextID++; return prefix + "-" + nextID; }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) { if (attrs[k] !== undefined) e.setAttribute(k, attrs[k]); });
    }
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function str(v) { return v === undefined || v === null ? "" : String(v); }
  function say(msg, ok) {
    status.textContent = msg;
    status.className = ok ? "ok" : "error";
  }
  function fmtNum(v) {
    if (typeof v !== "number" || !isFinite(v)) return "—"; // null: NaN or ±Inf on the server
    if (Math.abs(v) >= 1000 || Number.isInteger(v)) return String(Math.round(v * 1000) / 1000);
    return v.toPrecision(3);
  }
  function fmtTime(t) {
    if (!t) return "";
    var d = new Date(t);
    return isNaN(d) ? str(t) : d.toLocaleTimeString();
  }
  function token() { return sessionStorage.getItem(tokenKey) || ""; }

  // request fetches with a timeout, so that a slow server cannot pile
  // requests up behind one another.
  function request(opts) {
    var ctl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = ctl ? setTimeout(function () { ctl.abort(); }, requestTimeout) : null;
    if (ctl) opts.signal = ctl.signal;
    return fetch(endpoint, opts).finally(function () { if (timer) clearTimeout(timer); });
  }

  function actionForm(p, a) {
    var f = el("form", { "class": "action", "data-action": str(a.name) });
    var fields = []; // [param, input]: read by reference, never by name
    (a.params || []).forEach(function (prm) {
      var fid = uid("field");
      f.appendChild(el("label", { "for": fid }, str(prm.label || prm.name)));
      var input;
      if (prm.kind === "choice" || prm.kind === "bool") {
        input = el("select", { id: fid, name: str(prm.name) });
        var choices = prm.kind === "bool" ? ["true", "false"] : (prm.choices || []);
        choices.forEach(function (c) { input.appendChild(el("option", { value: str(c) }, str(c))); });
      } else {
        input = el("input", { id: fid, name: str(prm.name), type: (prm.kind === "int" || prm.kind === "float") ? "number" : "text" });
        if (prm.kind === "float") input.step = "any";
        if (prm.kind === "duration") input.placeholder = "e.g. 30s";
      }
      if (prm.default) input.value = str(prm.default);
      if (prm.required) input.required = true;
      if (prm.help) input.title = str(prm.help);
      f.appendChild(input);
      fields.push([prm, input]);
    });
    var rid = uid("reason");
    f.appendChild(el("label", { "for": rid }, "Reason"));
    var reason = el("input", { id: rid, name: "reason", type: "text", required: "required", placeholder: "why, for the incident log" });
    f.appendChild(reason);
    f.appendChild(el("button", { type: "submit", id: uid("submit") }, str(a.label || a.name)));
    f.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var args = Object.create(null);
      fields.forEach(function (pf) {
        var v = pf[1].value;
        if (v !== "") args[str(pf[0].name)] = v;
      });
      send(p.name, a.name, args, reason.value);
    });
    return f;
  }

  function row(p, mutations) {
    var r = rows.get(p.name);
    // A read-only page (no token configured) offers no forms: they
    // could only be refused.
    var offered = mutations ? (p.actions || []) : [];
    var sig = JSON.stringify(offered);
    if (!r) {
      var box = el("section", { "class": "policy", id: uid("policy"), "data-policy": str(p.name), "aria-label": str(p.name) });
      var h = el("h3");
      h.appendChild(el("span", { "class": "name" }, str(p.name)));
      var kind = el("span", { "class": "kind" });
      var state = el("span", { "class": "state", "data-role": "state" });
      h.appendChild(kind); h.appendChild(state);
      box.appendChild(h);
      var figs = el("dl", { "class": "figures" });
      var change = el("p", { "class": "change" });
      var ev = el("details");
      ev.appendChild(el("summary", null, "Recent events"));
      var evList = el("ol");
      ev.appendChild(evList);
      var actions = el("div", { "class": "actions" });
      box.appendChild(figs); box.appendChild(change); box.appendChild(ev); box.appendChild(actions);
      r = { box: box, kind: kind, state: state, figs: figs, change: change, evList: evList, actions: actions, sig: null };
      rows.set(p.name, r);
      list.appendChild(box);
    }
    var health = p.health === "warn" || p.health === "fail" ? p.health : "ok";
    r.box.className = "policy " + health;
    r.kind.textContent = str(p.kind);
    r.state.textContent = str(p.state);
    r.figs.textContent = "";
    (p.figures || []).forEach(function (f) {
      var d = el("div");
      d.appendChild(el("dt", null, str(f.name)));
      d.appendChild(el("dd", null, fmtNum(f.value) + (f.unit && f.unit !== "1" ? " " + str(f.unit) : "")));
      r.figs.appendChild(d);
    });
    var c = "";
    if (p.changed) c = "changed " + fmtTime(p.changed);
    if (p.source) c += (c ? " · " : "") + str(p.source);
    if (p.reason) c += (c ? " · " : "") + str(p.reason);
    r.change.textContent = c;
    r.evList.textContent = "";
    (p.events || []).slice().reverse().forEach(function (e) {
      var t = fmtTime(e.time) + " " + (e.from ? str(e.from) + " → " : "") + str(e.to);
      if (e.source) t += " (" + str(e.source) + ")";
      if (e.reason) t += ": " + str(e.reason);
      r.evList.appendChild(el("li", null, t));
    });
    if (r.sig !== sig) { // forms are rebuilt only when the declared actions change, never under the operator's typing
      r.sig = sig;
      r.actions.textContent = "";
      offered.forEach(function (a) { r.actions.appendChild(actionForm(p, a)); });
    }
  }

  function render(state) {
    var seen = new Set();
    (state.policies || []).forEach(function (p) {
      if (typeof p.name !== "string" || seen.has(p.name)) return;
      seen.add(p.name);
      row(p, state.mutations === true);
    });
    rows.forEach(function (r, n) {
      if (!seen.has(n)) { r.box.remove(); rows.delete(n); }
    });
    document.getElementById("empty").hidden = seen.size > 0;
    document.getElementById("updated").textContent = "updated " + fmtTime(state.time);
  }

  // refresh polls the state; the next poll is scheduled when this one
  // ends, so a slow server never has more than one poll per tab.
  var pending = null;
  var asked = 0, shown = 0; // refreshes started, and the latest one rendered
  function refresh() {
    if (pending) { clearTimeout(pending); pending = null; }
    var headers = { "Accept": "application/json" };
    var t = token();
    if (t) headers["Authorization"] = "Bearer " + t; // a read token, when the page needs one
    var n = ++asked;
    request({ headers: headers, cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (state) {
        // A poll answered after a newer refresh (the one an action
        // starts) is stale: it must not put the old state back.
        if (n < shown) return;
        shown = n;
        render(state);
      })
      .catch(function (e) { document.getElementById("updated").textContent = "refresh failed: " + e.message; })
      .finally(function () { if (!pending) pending = setTimeout(refresh, pollEvery); });
  }

  function send(policy, action, args, reason) {
    var t = token();
    if (!t) { say("Enter the operator token first.", false); return; }
    request({
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + t, "Accept": "application/json" },
      body: JSON.stringify({ policy: policy, action: action, args: args, reason: reason })
    }).then(function (r) {
      return r.text().then(function (body) {
        var detail = "";
        try { detail = str(JSON.parse(body).detail); } catch (e) { detail = ""; }
        if (r.status === 401) { say("Refused: the token is wrong (401).", false); return; }
        if (r.status === 403) { say("Refused: mutations are disabled (403).", false); return; }
        if (!r.ok) { say("Refused (" + r.status + "): " + detail, false); return; }
        say("Applied " + action + " to " + policy + ".", true);
        refresh();
      });
    }).catch(function (e) { say("Request failed: " + e.message, false); });
  }

  var form = document.getElementById("token-form");
  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var t = document.getElementById("token");
      sessionStorage.setItem(tokenKey, t.value.trim());
      t.value = "";
      say("Token set for this tab.", true);
      refresh();
    });
    document.getElementById("token-forget").addEventListener("click", function () {
      sessionStorage.removeItem(tokenKey);
      say("Token forgotten.", true);
    });
  }

  try { render(JSON.parse(document.getElementById("initial").textContent)); } catch (e) { /* the poll fills it */ }
  pending = setTimeout(refresh, pollEvery);
})();
