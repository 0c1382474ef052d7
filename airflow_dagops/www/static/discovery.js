/* The list page's "Discover" (airflow-dagops): scan the organizations of dagops.yaml's `discovery:` block, show what
 * matched in a dialog, and register or ignore the proposed repositories. What `dagops discover` shows, from the same
 * REST API: POST /discovery/scan ({apply: true} registers every proposed match), GET /discovery, and
 * POST /discovery/repositories/{name}/register | ignore (docs/many-repositories.md).
 *
 * Loaded before dagops.js, which owns the page and calls `window.DagOpsDiscovery(kit)` once with its helpers.
 * Registering attaches the source's connection to new repositories, so its buttons show only to users the API lets
 * do it (kit.canUseConnections); the API checks again. Data reaches the page only through text nodes (`kit.el`).
 */
(function () {
  "use strict";

  // How each status of a discovered repository looks (a status-* class of dagops.css) and reads.
  const STATUS = {
    proposed: ["info", "Proposed"],
    registered: ["success", "Registered"],
    removed: ["warning", "Removed"],
    ignored: ["disabled", "Ignored"],
  };

  window.DagOpsDiscovery = function (kit) {
    const { el, api, button, statusBadge, table, outcomeBox } = kit;
    const dialog = document.getElementById("discover-dialog");
    const body = document.getElementById("discover-body");
    const registerAll = document.getElementById("discover-register-all");
    const rescan = document.getElementById("discover-rescan");
    const footnote = document.getElementById("discover-footnote");
    // working: what is being done (a sentence) or false; result: the last scan's answer; outcomes: the last
    // registrations; error: the last refusal ({err: an ApiError, title, unchanged: what it left as it was}).
    const state = { working: false, result: null, outcomes: null, error: null };

    for (const closer of dialog.querySelectorAll("[data-action=close-discover]")) {
      closer.addEventListener("click", function () { dialog.close(); });
    }
    rescan.addEventListener("click", function () { scan(); });
    registerAll.addEventListener("click", function () { registerProposed(); });

    function repositories(count) {
      return count + (count === 1 ? " repository" : " repositories");
    }

    /** What "Register" tries (`apply`): every proposed match, those a reason held back included (the reason may be
     *  gone, e.g. a remote that was down; if not, the attempt says so again). */
    function registrable(result) {
      return ((result && result.repositories) || []).filter(function (r) { return r.status === "proposed"; });
    }

    // ---- actions: each one shows what it does while it runs, then what came of it ---------------------------

    /** One action: the dialog says what is happening and every button in it waits; a refusal is shown in it,
     *  titled `failure` (e.g. "Discovery failed"). */
    async function act(doing, failure, work) {
      if (state.working) return;
      state.working = doing;
      state.error = null;
      if (!dialog.open) dialog.showModal();
      render();
      try {
        await work();
      } catch (err) {
        if (err.status === 401) {
          dialog.close();
          kit.reportError(err); // the session ended: the page offers to sign in again
        }
        state.error = { err: err, title: err.code === "forbidden" ? "Not allowed" : failure[0], unchanged: failure[1] };
      } finally {
        state.working = false;
        render();
      }
    }

    function scan() {
      return act("Scanning the organizations of dagops.yaml\u2019s discovery: block\u2026", ["Discovery failed", "Nothing was registered."], async function () {
        state.outcomes = null;
        state.result = await api("POST", "discovery/scan", {});
      });
    }

    function registerProposed() {
      const count = registrable(state.result).length;
      return act("Registering " + repositories(count) + " (each remote is checked with git ls-remote first)\u2026", ["Not registered", "Nothing was registered."], async function () {
        state.result = await api("POST", "discovery/scan", { apply: true });
        state.outcomes = [].concat.apply([], state.result.sources.map(function (s) { return s.registered || []; }));
        kit.refresh();
      });
    }

    function registerOne(row) {
      return act("Registering " + row.name + "\u2026", ["Not registered", "Nothing was registered."], async function () {
        let outcome = null;
        try {
          outcome = await api("POST", "discovery/repositories/" + encodeURIComponent(row.name) + "/register", {});
        } catch (err) {
          if (err.status !== 409) throw err; // 409: not registered, and its row now says why (read back below)
        }
        await reload();
        if (!outcome) {
          const again = state.result.repositories.find(function (r) { return r.full_name === row.full_name; });
          outcome = { name: row.name, ok: false, reason: (again && again.reason) || "it is no longer proposed" };
        }
        state.outcomes = [outcome];
        kit.refresh();
      });
    }

    function ignore(row, ignored) {
      return act((ignored ? "Ignoring " : "Proposing again ") + row.full_name + "\u2026", ["Not changed", "Nothing was changed."], async function () {
        // By its derived name: a full name's "/" cannot travel in one path segment (it would be decoded first).
        await api("POST", "discovery/repositories/" + encodeURIComponent(row.name || row.full_name) + "/ignore", { ignored: ignored });
        await reload();
      });
    }

    /** The matches as they are now, keeping the last scan's per-source lines. */
    async function reload() {
      const listed = await api("GET", "discovery");
      state.result = { configured: true, sources: (state.result && state.result.sources) || [], repositories: listed.repositories };
    }

    // ---- rendering -------------------------------------------------------------------------------------

    function render() {
      const parts = [];
      if (state.working) {
        parts.push(el("p", { class: "discover-progress", testid: "discover-progress", role: "status" }, [
          el("span", { class: "spinner", "aria-hidden": "true" }), state.working,
        ]));
      }
      if (state.error) parts.push(errorBox(state.error));
      if (state.outcomes) parts.push(outcomesBox(state.outcomes));
      if (state.result && !state.result.configured) {
        parts.push(el("p", { class: "discover-empty", testid: "discover-not-configured", text: "No discovery source is configured. Add a discovery: block to dagops.yaml (docs/many-repositories.md) and apply it with dagops repos apply -f dagops.yaml." }));
      } else if (state.result) {
        parts.push(sourceList(state.result.sources));
        parts.push(matchTable(state.result.repositories));
      }
      body.replaceChildren.apply(body, parts);
      body.setAttribute("aria-busy", state.working ? "true" : "false");
      for (const control of dialog.querySelectorAll("button:not([data-action=close-discover])")) control.disabled = Boolean(state.working);
      const count = registrable(state.result).length;
      registerAll.hidden = !(kit.canUseConnections && count);
      registerAll.textContent = "Register " + repositories(count);
      footnote.hidden = kit.canUseConnections || !count;
      footnote.textContent = "Registering attaches the source\u2019s connection to new repositories: it needs Airflow\u2019s connection permission. Ask an Airflow admin, or run dagops discover --apply.";
    }

    function errorBox(error) {
      return outcomeBox(false, "discover-error", kit.token(error.err.code), [el("strong", { text: error.title })], [
        el("div", { class: "access-message", testid: "discover-error-message", text: error.err.message }),
        el("div", { class: "cell-sub", text: error.unchanged }),
      ]);
    }

    function outcomesBox(outcomes) {
      const done = outcomes.filter(function (o) { return o.ok; });
      const failed = outcomes.filter(function (o) { return !o.ok; });
      const title = done.length
        ? repositories(done.length) + " registered: " + done.map(function (o) { return o.name; }).join(", ")
        : "Nothing was registered";
      return outcomeBox(!failed.length && done.length > 0, "discover-outcome", failed.length ? "partial" : "ok", [el("strong", { text: title })],
        failed.map(function (o) {
          return el("div", { class: "access-message", testid: "discover-failure", text: o.name + " was not registered: " + o.reason });
        }).concat(done.length ? [el("div", { class: "cell-sub", text: "Their cards are on the page; Sync Now publishes them." })] : []));
    }

    function sourceList(sources) {
      return el("ul", { class: "discover-sources", testid: "discover-sources" }, sources.map(function (s) {
        if (s.error) {
          return el("li", { class: "error-text", testid: "discover-source", data: { source: s.source, kind: "error" }, text: s.source + ": not scanned: " + s.error });
        }
        const changes = [(s.new || []).length + " new", (s.back || []).length + " back", (s.removed || []).length + " removed"].join(", ");
        return el("li", { testid: "discover-source", data: { source: s.source, kind: "ok" },
          text: s.source + ": " + repositories(s.listed) + " listed, " + s.matched + (s.matched === 1 ? " match" : " matches") + " (" + changes + ")" });
      }));
    }

    function matchTable(rows) {
      if (!rows.length) return el("p", { class: "discover-empty", testid: "discover-no-matches", text: "No repository matches the rules yet." });
      return table(["Repository", "Name and namespace", "Status", ""], rows.map(function (row) {
        const [tone, word] = STATUS[row.status] || ["unknown", row.status];
        return el("tr", { testid: "discover-row", data: { fullName: row.full_name, name: row.name || "", status: row.status } }, [
          el("td", { class: "cell-main" }, [
            el("div", { class: "mono", text: row.full_name }),
            row.topics && row.topics.length ? el("div", { class: "cell-sub", text: row.topics.join(", ") }) : null,
          ]),
          el("td", { class: "mono", text: row.name || "\u2014" }),
          el("td", {}, [statusBadge(tone, "discover-status", word), note(row)]),
          el("td", { class: "cell-actions" }, actions(row)),
        ]);
      }));
    }

    function note(row) {
      let text = row.reason || "";
      if (row.status === "registered" && row.repository) text = "as " + row.repository;
      if (row.status === "removed") text = "no longer in the organization or no longer matching; its registration, if any, stays";
      return text ? el("div", { class: "cell-sub", testid: "discover-note", text: text }) : null;
    }

    function actions(row) {
      const buttons = [];
      if (row.status === "proposed" && row.name && kit.canUseConnections) {
        buttons.push(button("Register", { small: true, variant: "btn-primary", testid: "discover-register", onclick: function () { registerOne(row); } }));
      }
      if (row.status === "proposed" && kit.canWrite) {
        buttons.push(button("Ignore", { small: true, testid: "discover-ignore", title: "Stop proposing it", onclick: function () { ignore(row, true); } }));
      }
      if (row.status === "ignored" && kit.canWrite) {
        buttons.push(button("Propose again", { small: true, testid: "discover-unignore", onclick: function () { ignore(row, false); } }));
      }
      return buttons;
    }

    return { scan: scan };
  };
})();
