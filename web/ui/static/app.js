// The UI's own script: connection trouble shown plainly, the confirmation dialog, charts.
// Everything here is optional: without JavaScript every page still reads and every form posts.
(function () {
  "use strict";
  var lastGood = new Date();

  function banner(text) {
    var net = document.getElementById("net");
    if (!net) return;
    if (text) { net.textContent = text; net.hidden = false; document.body.classList.add("offline"); }
    else { net.hidden = true; document.body.classList.remove("offline"); }
  }

  document.addEventListener("edge-signed-out", function () {
    banner("Your session has ended, so this was not sent. What you typed is kept: sign in " +
           "again in a new tab, then press the button again.");
    var net = document.getElementById("net");
    var link = document.createElement("a");
    link.href = "/login";
    link.target = "_blank";
    link.textContent = " Sign in (new tab)";
    net.appendChild(link);
  });

  // A form from before a new sign-in: take the new session's token, and ask for one more press.
  document.addEventListener("edge-csrf", function (e) {
    var token = e.detail.token;
    document.body.setAttribute("hx-headers", JSON.stringify({ "X-CSRF-Token": token }));
    Array.prototype.forEach.call(document.querySelectorAll("input[name=_csrf]"),
      function (input) { input.value = token; });
    banner("You signed in again since this page was loaded, so this was not sent. What you " +
           "typed is kept: press the button again.");
  });

  function clock(d) { return d ? d.toTimeString().slice(0, 8) : "the start"; }

  function trouble(evt, what) {
    var elt = evt.detail.elt;
    var verb = (evt.detail.requestConfig && evt.detail.requestConfig.verb) || "get";
    if (verb !== "get") {
      banner("Not sent: " + what + ". What you typed is kept; press the button again.");
    } else {
      banner("Connection lost (" + what + "): values shown are from " + clock(lastGood) +
             " and may be old. Retrying on its own.");
    }
    if (elt && elt.closest) { var live = elt.closest("[data-live]"); if (live) live.classList.add("stale"); }
  }

  document.addEventListener("htmx:sendError", function (e) { trouble(e, "no answer from the gateway"); });
  document.addEventListener("htmx:timeout", function (e) { trouble(e, "the gateway took too long"); });
  document.addEventListener("htmx:responseError", function (e) {
    trouble(e, "the gateway answered " + e.detail.xhr.status);
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var status = e.detail.xhr ? e.detail.xhr.status : 0;
    if (!e.detail.successful || status === 401 || status === 403 && !e.detail.xhr.responseText) {
      return;  // not sent: the banner set by the response's event stays
    }
    lastGood = new Date();
    banner("");
    var dialog = document.getElementById("dialog");
    // A confirmed action is done: its dialog goes.
    if (dialog && e.detail.elt && dialog.contains(e.detail.elt) && e.detail.target !== dialog) {
      dialog.innerHTML = "";
    }
  });
  // A poll waits while someone types in the part it would replace, or answers a dialog.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt;
    if (!elt || !elt.hasAttribute || !elt.hasAttribute("data-live")) return;
    var dialog = document.getElementById("dialog");
    var typing = document.activeElement && elt.contains(document.activeElement) &&
      /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
    var filled = Array.prototype.some.call(elt.querySelectorAll("textarea, input[type=text]"),
      function (f) { return f.value !== f.defaultValue; });
    if (typing || filled || (dialog && dialog.children.length)) e.preventDefault();
  });

  document.addEventListener("click", function (e) {
    var close = e.target.closest && e.target.closest("[data-close-dialog]");
    var dialog = document.getElementById("dialog");
    if (close && dialog && dialog.contains(close)) { e.preventDefault(); dialog.innerHTML = ""; }
  });
  document.addEventListener("keydown", function (e) {
    var dialog = document.getElementById("dialog");
    if (e.key === "Escape" && dialog) dialog.innerHTML = "";
  });

  // A chart fed by the server is fetched again on this period while it is on the page.
  var REFRESH_MS = 30000, EMPTY_RETRY_MS = 5000;

  function later(el, ms) {
    setTimeout(function () { if (document.body.contains(el)) load(el); }, ms);
  }

  function draw(el, data) {
    if (!window.uPlot || !data.t || !data.t.length) {
      el.textContent = "No readings in this range yet.";
      if (el.dataset.src) later(el, EMPTY_RETRY_MS);
      return;
    }
    var width = Math.max(300, el.clientWidth);
    el.innerHTML = "";
    new window.uPlot({
      width: width, height: 300,
      scales: { x: data.start ? { time: true, range: [data.start, data.end] } : { time: true } },
      axes: [{ size: 50, font: "16px sans-serif" }, { size: 80, font: "16px sans-serif",
               label: el.dataset.unit || "" }],
      series: [{}, { label: el.dataset.unit || "value", stroke: "#0b4fa8", width: 3,
                     spanGaps: false, points: { show: false } }],
      cursor: { points: { size: 12 } }
    }, [data.t, data.v], el);
  }

  function chart(el) {
    if (el.dataset.drawn) return;
    el.dataset.drawn = "1";
    if (el.dataset.series) { draw(el, JSON.parse(el.dataset.series)); return; }
    el.textContent = "Loading the chart…";
    load(el);
  }

  function load(el) {
    fetch(el.dataset.src, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        draw(el, data);
        if (data.t && data.t.length) later(el, REFRESH_MS);
      })
      .catch(function (err) {
        if (!el.querySelector("canvas")) {
          el.textContent = "The chart could not load (" + err.message + "); retrying.";
        }
        later(el, EMPTY_RETRY_MS);
      });
  }

  // Fields that only matter for some choices (a rule's kind, a transport) hide for others;
  // without the script every field shows and the labels say when each applies.
  function choice(form, name) {
    var field = form.querySelector("select[name='" + name + "']");
    if (field) return field.value;
    var checked = form.querySelector("input[name='" + name + "']:checked");
    return checked ? checked.value : "";
  }

  function showWhen(root) {
    var found = root.querySelectorAll ? root.querySelectorAll("[data-show-when]") : [];
    Array.prototype.forEach.call(found, function (el) {
      var form = el.closest("form");
      var rule = el.dataset.showWhen.split("=");
      if (form) el.hidden = rule[1].split(",").indexOf(choice(form, rule[0])) < 0;
    });
  }

  document.addEventListener("change", function (e) {
    if (e.target.form) showWhen(e.target.form);
  });

  function charts(root) {
    var found = root.querySelectorAll ? root.querySelectorAll("[data-chart]") : [];
    Array.prototype.forEach.call(found, chart);
    if (root.matches && root.matches("[data-chart]")) chart(root);
  }

  function enhance(root) { charts(root); showWhen(root); }

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    if (window.htmx) window.htmx.onLoad(enhance);
  });
})();
