"use strict";
(function () {
  var endpoint = window.location.pathname + window.location.search;
  var tokenKey = "bulwark-admin-token";
  var list = document.getElementById("policies");
  var status = document.getElementById("status");
  var rows = {};

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) { for (var k in attrs) { if (attrs[k] !== undefined) e.setAttribute(k, attrs[k]); } }
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function say(msg, ok) {
    status.textContent = msg;
    status.className = ok ? "ok" : "error";
  }
  function fmtNum(v) {
    if (Math.abs(v) >= 1000 || Number.isInteger(v)) return String(Math.round(v * 1000) / 1000);
    return v.toPrecision(3);
  }
  function fmtTime(t) {
    if (!t) return "";
    var d = new Date(t);
    return isNaN(d) ? t : d.toLocaleTimeString();
  }
  function slug(s) { return s.replace(/[^A-Za-z0-9_-]/g, "_"); }

  function actionForm(p, a) {
    var f = el("form", { "class": "action", "data-action": a.name });
    var id = "f-" + slug(p.name) + "-" + slug(a.name);
    (a.params || []).forEach(function (prm) {
      var fid = id + "-" + slug(prm.name);
      f.appendChild(el("label", { "for": fid }, prm.label || prm.name));
      var input;
      if (prm.kind === "choice" || prm.kind === "bool") {
        input = el("select", { id: fid, name: prm.name });
        var choices = prm.kind === "bool" ? ["true", "false"] : (prm.choices || []);
        choices.forEach(function (c) { input.appendChild(el("option", { value: c }, c)); });
      } else {
        input = el("input", { id: fid, name: prm.name, type: (prm.kind === "int" || prm.kind === "float") ? "number" : "text" });
        if (prm.kind === "float") input.step = "any";
        if (prm.kind === "duration") input.placeholder = "e.g. 30s";
      }
      if (prm.default) input.value = prm.default;
      if (prm.required) input.required = true;
      if (prm.help) input.title = prm.help;
      f.appendChild(input);
    });
    var rid = id + "-reason";
    f.appendChild(el("label", { "for": rid }, "Reason"));
    f.appendChild(el("input", { id: rid, name: "reason", type: "text", required: "required", placeholder: "why, for the incident log" }));
    f.appendChild(el("button", { type: "submit", id: id + "-submit" }, a.label || a.name));
    f.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var args = {};
      (a.params || []).forEach(function (prm) {
        var v = f.elements[prm.name].value;
        if (v !== "") args[prm.name] = v;
      });
      send(p.name, a.name, args, f.elements["reason"].value);
    });
    return f;
  }

  function row(p) {
    var r = rows[p.name];
    var sig = JSON.stringify(p.actions || []);
    if (!r) {
      var box = el("section", { "class": "policy", id: "p-" + slug(p.name), "data-policy": p.name, "aria-label": p.name });
      var h = el("h3");
      h.appendChild(el("span", { "class": "name" }, p.name));
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
      list.appendChild(box);
      r = rows[p.name] = { box: box, kind: kind, state: state, figs: figs, change: change, evList: evList, actions: actions, sig: null };
    }
    r.box.className = "policy " + (p.health || "ok");
    r.kind.textContent = p.kind || "";
    r.state.textContent = p.state || "";
    r.figs.textContent = "";
    (p.figures || []).forEach(function (f) {
      var d = el("div");
      d.appendChild(el("dt", null, f.name));
      d.appendChild(el("dd", null, fmtNum(f.value) + (f.unit && f.unit !== "1" ? " " + f.unit : "")));
      r.figs.appendChild(d);
    });
    var c = "";
    if (p.changed) c = "changed " + fmtTime(p.changed);
    if (p.source) c += (c ? " · " : "") + p.source;
    if (p.reason) c += (c ? " · " : "") + p.reason;
    r.change.textContent = c;
    r.evList.textContent = "";
    (p.events || []).slice().reverse().forEach(function (e) {
      var t = fmtTime(e.time) + " " + (e.from ? e.from + " → " : "") + e.to;
      if (e.source) t += " (" + e.source + ")";
      if (e.reason) t += ": " + e.reason;
      r.evList.appendChild(el("li", null, t));
    });
    if (r.sig !== sig) { // forms are rebuilt only when the declared actions change, never under the operator's typing
      r.sig = sig;
      r.actions.textContent = "";
      (p.actions || []).forEach(function (a) { r.actions.appendChild(actionForm(p, a)); });
    }
  }

  function render(state) {
    var seen = {};
    (state.policies || []).forEach(function (p) { seen[p.name] = true; row(p); });
    Object.keys(rows).forEach(function (n) {
      if (!seen[n]) { rows[n].box.remove(); delete rows[n]; }
    });
    document.getElementById("empty").hidden = (state.policies || []).length > 0;
    document.getElementById("updated").textContent = "updated " + fmtTime(state.time);
  }

  function refresh() {
    fetch(endpoint, { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(render)
      .catch(function (e) { document.getElementById("updated").textContent = "refresh failed: " + e.message; });
  }

  function send(policy, action, args, reason) {
    var token = sessionStorage.getItem(tokenKey) || "";
    if (!token) { say("Enter the operator token first.", false); return; }
    fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token, "Accept": "application/json" },
      body: JSON.stringify({ policy: policy, action: action, args: args, reason: reason })
    }).then(function (r) {
      return r.text().then(function (body) {
        var detail = "";
        try { detail = JSON.parse(body).detail || ""; } catch (e) { detail = ""; }
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
    });
    document.getElementById("token-forget").addEventListener("click", function () {
      sessionStorage.removeItem(tokenKey);
      say("Token forgotten.", true);
    });
  }

  try { render(JSON.parse(document.getElementById("initial").textContent)); } catch (e) { /* the poll fills it */ }
  setInterval(refresh, 1500);
})();
