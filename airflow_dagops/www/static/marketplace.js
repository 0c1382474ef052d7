/* Marketplace pages (airflow-dagops). Plain JavaScript, no build step, no dependencies.
 *
 * The HTML shell carries the configuration in <meta> tags; the data comes from the REST API
 * (/marketplace/... in docs/api.md) with the `_token` cookie, and every state-changing call sends the
 * X-DagOps-CSRF header. API data, reviews above all, only ever reaches the page through textContent / text
 * nodes (see `el`), never as HTML. The one piece of HTML, a package's README, is rendered on the server with
 * raw HTML disabled (www/readme.py) and is part of the shell.
 */
(function () {
  "use strict";

  // Shared with the other dagops pages (common.js, loaded first).
  const { meta, $, el, token, plural, withBusy, openInTop } = window.DagOpsCommon;

  const SYNC_POLL_MS = 2000;
  const NOTICE_MS = 6000;
  const CHECK_DELAY_MS = 300; // wait for a pause in typing before asking the API about a namespace
  const PAUSED_POLL_MS = 3000; // while Airflow has not parsed an installed package's DAGs yet
  const PAUSED_POLLS = 60;
  const NAMESPACE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
  const FINISHED = ["success", "unchanged", "rejected", "failed"];

  // ---- configuration -------------------------------------------------------------------------------

  const CONFIG = {
    api: meta("dagops-api").replace(/\/+$/, ""),
    csrf: meta("dagops-csrf"),
    canWrite: meta("dagops-can-write") === "true",
    canDelete: meta("dagops-can-delete") === "true",
    airflowBase: meta("dagops-airflow-base").replace(/\/+$/, ""),
    marketUrl: meta("dagops-market-url").replace(/\/+$/, ""),
    page: document.body.dataset.page,
    packageName: document.body.dataset.package || null,
  };
  const api = window.DagOpsCommon.apiClient(CONFIG.api, CONFIG.csrf);

  // ---- the API -------------------------------------------------------------------------------------

  function packagePath(name, suffix) {
    return "marketplace/packages/" + encodeURIComponent(name) + (suffix ? "/" + suffix : "");
  }

  // ---- DOM helpers ---------------------------------------------------------------------------------

  /** Replace a node's children, skipping the null ones (replaceChildren would show them as "null"). */
  function fill(node, children) {
    node.replaceChildren.apply(node, children.filter(function (child) { return child !== null && child !== undefined; }));
  }

  function button(label, opts) {
    const options = opts || {};
    return el("button", {
      type: options.type || "button",
      class: ["btn", options.variant, options.small ? "btn-sm" : null].filter(Boolean).join(" "),
      testid: options.testid,
      "aria-label": options.ariaLabel,
      onclick: options.onclick,
    }, [label]);
  }

  function formatDateTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return isNaN(date) ? String(iso) : date.toLocaleString();
  }

  // ---- links (the pages live in an iframe of the Airflow UI) ------------------------------------

  function packageUrl(name) {
    return CONFIG.marketUrl + "/" + encodeURIComponent(name);
  }

  /** The "DAG Repositories" page of a repository: the marketplace's sibling under /dagops/. */
  function repositoryUrl(name) {
    return CONFIG.marketUrl.replace(/\/marketplace$/, "") + "/repositories/" + encodeURIComponent(name);
  }

  /** A link to one of Airflow's own pages ("/dags/x" from the API), opened in the top window. */
  function airflowLink(path, label, testid) {
    if (typeof path !== "string" || !path.startsWith("/") || path.startsWith("//")) {
      return el("span", { class: "muted", text: label });
    }
    return el("a", { href: CONFIG.airflowBase + path, target: "_top", testid: testid }, [label]);
  }

  function followLinksFromTop(event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest && event.target.closest("a[target=_top]");
    if (!link || window.top === window) return;
    event.preventDefault();
    openInTop(link.href);
  }

  // ---- notices -------------------------------------------------------------------------------------

  let noticeTimer = null;

  function notify(message, kind) {
    const variant = kind || "info";
    const notice = el("div", { class: "notice kind-" + variant, testid: "notice", role: variant === "error" ? "alert" : "status", data: { kind: variant } }, [
      el("div", { class: "notice-text", text: message }),
      el("button", { type: "button", class: "icon-btn", "aria-label": "Dismiss", onclick: function () { notice.remove(); } }, ["×"]),
    ]);
    clearTimeout(noticeTimer);
    $("notice-area").replaceChildren(notice);
    if (variant !== "error") noticeTimer = setTimeout(function () { notice.remove(); }, NOTICE_MS);
  }

  function reportError(err) {
    if (err && err.status === 401) {
      notify("Your Airflow session has ended. Reload the page to sign in again.", "error");
      return;
    }
    notify((err && err.message) || String(err), "error");
  }

  function stateBox(title, text, testid) {
    return el("div", { class: "state-box is-error", testid: testid || "load-error" }, [
      el("h2", { class: "state-title", text: title }),
      el("p", { class: "state-text", text: text }),
    ]);
  }

  // ---- small pieces shared by both pages ---------------------------------------------------------

  const BADGE_WORDS = { passing: "Checks passing", failing: "Checks failing", unknown: "Not checked yet" };
  const BADGE_TONES = { passing: "success", failing: "failed", unknown: "pending" };

  function badge(info) {
    const status = (info && info.status) || "unknown";
    const failed = Object.entries((info && info.checks) || {}).filter(function (entry) { return entry[1] !== "passed"; });
    const title = info && info.checked_at
      ? "Checked " + formatDateTime(info.checked_at) + (failed.length ? "; failed: " + failed.map(function (e) { return e[0]; }).join(", ") : "")
      : "No check has run for this version yet";
    return el("span", { class: "status-badge status-" + token(BADGE_TONES[status] || "pending"), testid: "badge", data: { status: token(status) }, title: title }, [
      el("span", { class: "status-mark", "aria-hidden": "true" }),
      BADGE_WORDS[status] || status,
    ]);
  }

  function starText(rating) {
    const full = Math.round(rating || 0);
    return "★★★★★".slice(0, full) + "☆☆☆☆☆".slice(0, 5 - full);
  }

  function ratingLine(item) {
    const count = item.ratings_count || 0;
    const rating = typeof item.rating === "number" ? item.rating : null;
    return el("span", { class: "mp-rating", testid: "rating", data: { rating: rating === null ? "" : rating.toFixed(1), count: String(count) }, title: rating === null ? "Not rated yet" : rating.toFixed(1) + " of 5" }, [
      el("span", { class: "mp-stars", "aria-hidden": "true", text: starText(rating) }),
      rating === null ? " not rated" : " " + rating.toFixed(1) + " (" + plural(count, "rating") + ")",
    ]);
  }

  function installsLine(item) {
    return el("span", { class: "mp-installs", testid: "installs", data: { count: String(item.installs || 0) }, text: plural(item.installs || 0, "install") });
  }

  // Downloads: installs + updates of every version here (marketplace/stats.py); the title tells them apart.
  function downloadsLine(item) {
    const counts = item.downloads || { downloads: 0, installs: 0, updates: 0, uninstalls: 0 };
    return el("span", {
      class: "mp-downloads", testid: "downloads", data: { count: String(counts.downloads) },
      title: plural(counts.installs, "install") + ", " + plural(counts.updates, "update") + ", " + plural(counts.uninstalls, "uninstall"),
      text: plural(counts.downloads, "download"),
    });
  }

  function downloadsByVersion(info) {
    const rows = (info.downloads_by_version || []).filter(function (v) { return v.downloads || v.uninstalls; });
    if (!rows.length) return null;
    return el("span", { class: "mp-downloads-versions muted", testid: "downloads-by-version", text: rows.map(function (v) {
      return "v" + v.version + ": " + v.installs + " installed, " + v.updates + " updated, " + v.uninstalls + " uninstalled";
    }).join(" \u00b7 ") });
  }

  function tags(list) {
    return el("span", { class: "mp-tags" }, (list || []).map(function (tag) { return el("span", { class: "tag", testid: "tag", text: tag }); }));
  }

  // ---- install: register, then follow the dagops_sync run until the DAGs are live ---------------

  function showInstallState(box, kind, lines) {
    box.dataset.state = kind;
    box.className = "mp-install-status alert " + (kind === "failed" ? "" : "alert-info");
    box.replaceChildren(el("div", { class: "alert-text" }, lines));
  }

  /** Install, then show the sync's progress in `box` (the package page's, or a search result's). */
  async function install(name, body, target, box) {
    box.hidden = false;
    let accepted;
    try {
      accepted = await withBusy(target, function () { return api("POST", packagePath(name, "install"), body); });
    } catch (err) {
      showInstallState(box, "failed", [el("div", { class: "alert-title", text: "Not installed" }), el("div", { class: "alert-message", testid: "install-error", text: err.message })]);
      return null;
    }
    await followSync(box, accepted);
    return accepted;
  }

  async function followSync(box, accepted) {
    const runLink = airflowLink((accepted.links || {}).airflow_run, "View the run in Airflow", "install-run");
    for (;;) {
      let sync;
      try {
        sync = await api("GET", "syncs/" + encodeURIComponent(accepted.sync.id));
      } catch (err) {
        showInstallState(box, "failed", [el("div", { class: "alert-message", text: "Lost track of the sync: " + err.message }), runLink]);
        return;
      }
      box.dataset.sync = sync.status;
      if (!FINISHED.includes(sync.status)) {
        const what = sync.status === "running" ? "Validating in Airflow" : "Queued in Airflow";
        showInstallState(box, "syncing", [
          el("div", { class: "alert-title", text: "Installing " + accepted.package + " " + (accepted.version || "") + " into " + accepted.namespace }),
          el("div", { class: "alert-message", testid: "install-progress", text: what + " (dagops_sync) · " }),
          runLink,
        ]);
        await new Promise(function (resolve) { setTimeout(resolve, SYNC_POLL_MS); });
        continue;
      }
      if (sync.status === "success" || sync.status === "unchanged") await showLive(box, accepted, runLink);
      else showBlocked(box, accepted, sync, runLink);
      return;
    }
  }

  async function showLive(box, accepted, runLink) {
    let dags = [];
    try {
      dags = (await api("GET", "repositories/" + encodeURIComponent(accepted.repository) + "/dags")).items || [];
    } catch (err) {
      /* the install worked; only the list of DAGs is missing */
    }
    showInstallState(box, "live", [
      el("div", { class: "alert-title", testid: "install-done", text: accepted.package + " is live in namespace " + accepted.namespace }),
      el("ul", { class: "mp-live-dags", testid: "live-dags" }, dags.map(function (dag) {
        return el("li", { testid: "live-dag", data: { dagId: dag.dag_id } }, [airflowLink(dag.airflow_url, dag.dag_id, "dag-link")]);
      })),
      missingNote(accepted),
      el("div", { class: "alert-sub" }, [el("a", { href: repositoryUrl(accepted.repository), testid: "repository-link", text: "Repository " + accepted.repository }), " · ", runLink]),
    ]);
  }

  /** Providers the package declares that this Airflow lacks: its DAGs load, but such tasks fail at run time. */
  function missingNote(accepted) {
    const missing = (accepted.missing_providers || []).concat(accepted.missing_packages || []);
    if (!missing.length) return null;
    return el("div", { class: "alert-message", testid: "missing-providers", text: "Not installed on this Airflow (install them on every machine): " + missing.join(", ") });
  }

  function showBlocked(box, accepted, sync, runLink) {
    const why = sync.error || sync.status_message || "the validation pipeline refused it";
    showInstallState(box, "failed", [
      el("div", { class: "alert-title", text: accepted.package + " is blocked: nothing went live" }),
      el("div", { class: "alert-message", testid: "install-error", text: why }),
      missingNote(accepted),
      el("div", { class: "alert-sub" }, [el("a", { href: repositoryUrl(accepted.repository), testid: "repository-link", text: "See the findings" }), " · ", runLink]),
    ]);
  }

  // ---- the install dialog: version, namespace, what is missing, then install -----------------------

  /** What the open dialog installs: {name, versions, target, box, onDone, check}; null when closed. */
  let installing = null;
  let checkTimer = null;
  let checkSeq = 0;

  /** Ask before installing: Cancel changes nothing; Install registers the package and follows its sync. */
  function openInstallDialog(name, versions, target, box, onDone) {
    const dialog = $("install-dialog");
    if (!dialog) return;
    installing = { name: name, versions: versions, target: target, box: box, onDone: onDone, check: null };
    $("install-dialog-package").textContent = name;
    const version = $("install-dialog-version");
    fill(version, versions.map(function (v) { return el("option", { value: v, text: "v" + v }); }));
    version.disabled = versions.length < 2;
    const namespace = $("install-dialog-namespace");
    namespace.value = name;
    namespace.setAttribute("aria-invalid", "false");
    $("install-dialog-force").checked = false;
    renderCheck(null, "Checking what this Airflow has\u2026");
    dialog.showModal();
    namespace.focus();
    namespace.select();
    runCheck();
  }

  function closeInstallDialog() {
    clearTimeout(checkTimer);
    checkSeq += 1; // an answer still on its way is for a dialog that is gone
    installing = null;
    const dialog = $("install-dialog");
    if (dialog && dialog.open) dialog.close();
  }

  function namespaceProblem(value) {
    if (!value) return "Give a namespace.";
    if (!NAMESPACE.test(value)) return "1-63 lower-case letters, digits, - or _, starting with a letter or digit.";
    return null;
  }

  function showNamespaceError(message) {
    const error = $("install-dialog-namespace-error");
    error.textContent = message || "";
    error.hidden = !message;
    $("install-dialog-namespace").setAttribute("aria-invalid", message ? "true" : "false");
  }

  function scheduleCheck() {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(runCheck, CHECK_DELAY_MS);
  }

  /** The API's install check for the chosen version and namespace (changes nothing). */
  async function runCheck() {
    if (!installing) return;
    const seq = ++checkSeq;
    const namespace = $("install-dialog-namespace").value.trim();
    const problem = namespaceProblem(namespace);
    showNamespaceError(problem);
    if (problem) {
      renderCheck(null, "");
      return;
    }
    const query = "?version=" + encodeURIComponent($("install-dialog-version").value) + "&namespace=" + encodeURIComponent(namespace);
    try {
      const check = await api("GET", packagePath(installing.name, "install-check") + query);
      if (seq === checkSeq) renderCheck(check, null);
    } catch (err) {
      if (seq !== checkSeq) return;
      if (err.status === 422) showNamespaceError(err.message);
      renderCheck(null, err.status === 422 ? "" : err.message);
    }
  }

  function renderCheck(check, waiting) {
    if (installing) installing.check = check;
    const requirements = $("install-dialog-requirements");
    const missing = check ? (check.missing_providers || []).concat(check.missing_packages || []) : [];
    $("install-dialog-force-row").hidden = !missing.length;
    if (!check) {
      $("install-dialog-plan").textContent = waiting || "";
      requirements.replaceChildren();
      updateConfirm();
      return;
    }
    $("install-dialog-plan").textContent = "Installs " + check.package + " v" + check.version + " into " + check.namespace +
      "/ of the dags folder. A dagops_sync run in Airflow validates it before anything goes live.";
    const parts = [];
    if (missing.length) {
      parts.push(el("div", { class: "alert mp-missing", testid: "install-missing", role: "alert" }, [el("div", { class: "alert-text" }, [
        el("span", { class: "alert-title", text: "Missing on this Airflow" }),
        el("ul", { class: "mp-list" }, missing.map(function (item) { return el("li", { class: "mono", testid: "install-missing-item", text: item }); })),
        el("span", { class: "alert-sub", text: "Its DAGs may load, but their tasks fail until these are installed on every Airflow machine." }),
      ])]));
    } else {
      const needs = (check.providers || []).concat(check.packages || []);
      parts.push(el("p", { class: "mp-requirements-ok", testid: "install-requirements-ok", text: needs.length
        ? "Everything it needs is installed here: " + needs.join(", ") + "."
        : "It needs no providers or packages beyond Airflow." }));
    }
    for (const refusal of check.refusals || []) {
      parts.push(el("p", { class: "field-error", testid: "install-refusal", text: refusal }));
    }
    fill(requirements, parts);
    updateConfirm();
  }

  function updateConfirm() {
    const check = installing && installing.check;
    const force = $("install-dialog-force").checked;
    const confirm = $("install-dialog-confirm");
    confirm.disabled = !check || !check.installable || (check.needs_force && !force);
    confirm.textContent = check && check.needs_force ? "Install anyway" : "Install";
    confirm.title = check && check.needs_force && !force ? "Tick \u201cInstall anyway\u201d first: something it needs is missing" : "";
  }

  async function confirmInstall(event) {
    event.preventDefault();
    const chosen = installing;
    if (!chosen || !chosen.check || $("install-dialog-confirm").disabled) return;
    const body = { version: chosen.check.version, namespace: chosen.check.namespace };
    if (chosen.check.needs_force) body.force = $("install-dialog-force").checked;
    closeInstallDialog();
    const accepted = await install(chosen.name, body, chosen.target, chosen.box);
    if (accepted && chosen.onDone) await chosen.onDone(accepted);
  }

  function initInstallDialog() {
    const dialog = $("install-dialog");
    if (!dialog) return; // the role cannot install: no dialog in the page
    $("install-dialog-form").addEventListener("submit", confirmInstall);
    for (const node of dialog.querySelectorAll("[data-action=cancel]")) node.addEventListener("click", closeInstallDialog);
    dialog.addEventListener("close", function () { installing = null; }); // Escape
    $("install-dialog-namespace").addEventListener("input", scheduleCheck);
    $("install-dialog-version").addEventListener("change", runCheck);
    $("install-dialog-force").addEventListener("change", updateConfirm);
  }

  // ---- paused DAGs of an installed package ----------------------------------------------------------

  /** Airflow creates new DAGs paused: say which of the package's DAGs are, with an Unpause button. Polls
   * while Airflow has not parsed them yet. */
  async function showPaused(name, slot, polls) {
    let dags;
    try {
      dags = await api("GET", packagePath(name, "dags"));
    } catch (err) {
      slot.hidden = true;
      return;
    }
    if (!slot.isConnected) return;
    const items = dags.items || [];
    const unknown = items.filter(function (dag) { return dag.paused === null || dag.paused === undefined; });
    const paused = items.filter(function (dag) { return dag.paused === true; });
    slot.dataset.paused = String(paused.length);
    slot.dataset.waiting = String(unknown.length);
    slot.hidden = !items.length;
    if (paused.length) {
      slot.className = "mp-paused alert alert-warning";
      fill(slot, [
        el("div", { class: "alert-text" }, [
          el("span", { class: "alert-title", text: "Paused in Airflow" }),
          el("span", { class: "alert-message", testid: "paused-message", text: paused.length === items.length
            ? (items.length === 1 ? "Its DAG is paused: it does not run until unpaused." : "All " + items.length + " of its DAGs are paused: they do not run until unpaused.")
            : paused.length + " of its " + items.length + " DAGs are paused: they do not run until unpaused." }),
          el("ul", { class: "mp-paused-dags" }, paused.map(function (dag) {
            return el("li", { testid: "paused-dag", data: { dagId: dag.dag_id } }, [airflowLink(dag.airflow_url, dag.dag_id, "paused-dag-link"), " ", el("span", { class: "status-badge status-paused", text: "Paused" })]);
          })),
        ]),
        CONFIG.canWrite ? el("div", { class: "alert-actions" }, [button("Unpause", { small: true, testid: "unpause", onclick: function (event) { unpause(name, slot, event.currentTarget); } })]) : null,
      ]);
    } else if (unknown.length) {
      slot.className = "mp-paused mp-note";
      fill(slot, [el("span", { testid: "paused-waiting", text: "Waiting for Airflow to parse " + plural(unknown.length, "DAG") + "\u2026" })]);
    } else {
      slot.className = "mp-paused mp-note";
      fill(slot, [el("span", { class: "mp-installed", testid: "dags-active", text: (items.length === 1 ? "Its DAG is" : "All " + items.length + " DAGs are") + " active in Airflow." })]);
    }
    const left = polls === undefined ? PAUSED_POLLS : polls;
    if (unknown.length && left > 0) {
      setTimeout(function () { showPaused(name, slot, left - 1); }, PAUSED_POLL_MS);
    }
  }

  async function unpause(name, slot, target) {
    try {
      const answer = await withBusy(target, function () { return api("POST", packagePath(name, "unpause"), {}); });
      notify(answer.message, "success");
    } catch (err) {
      reportError(err);
    }
    await showPaused(name, slot, 0);
  }

  // ---- the search page ---------------------------------------------------------------------------

  async function runSearch(query) {
    const results = $("results");
    results.setAttribute("aria-busy", "true");
    let data;
    try {
      const sort = $("sort-select") ? $("sort-select").value : "relevance";
      const order = sort === "relevance" || !$("sort-order") ? "" : "&order=" + encodeURIComponent($("sort-order").dataset.order);
      data = await api("GET", "marketplace/search?limit=50&sort=" + encodeURIComponent(sort) + order + "&q=" + encodeURIComponent(query));
    } catch (err) {
      results.replaceChildren(stateBox("Could not search the marketplace", err.message));
      results.setAttribute("aria-busy", "false");
      return;
    }
    results.setAttribute("aria-busy", "false");
    $("result-note").textContent = query ? plural(data.total, "package") + " for \u201c" + query + "\u201d" : plural(data.total, "package");
    if (!data.items.length) {
      results.replaceChildren(el("div", { class: "state-box", testid: "no-results" }, [
        el("h2", { class: "state-title", text: query ? "No package matches" : "The catalogs have no packages yet" }),
        el("p", { class: "state-text", text: query ? "Try another word, or fewer words." : "Add a catalog with `dagops marketplace catalogs add` and refresh it." }),
      ]));
      return;
    }
    results.replaceChildren.apply(results, data.items.map(resultCard));
  }

  function resultCard(item) {
    const footer = el("div", { class: "card-footer" }, [
      item.installed_namespace
        ? el("span", { class: "mp-installed", testid: "installed", text: "Installed in " + item.installed_namespace })
        : CONFIG.canWrite
          ? button("Install", { small: true, variant: "btn-primary", testid: "install", onclick: function (event) { installFromCard(item, event.currentTarget); } })
          : null,
      el("a", { class: "btn btn-sm", href: packageUrl(item.name), testid: "open-package" }, ["Details"]),
    ]);
    return el("article", { class: "card mp-card", testid: "package-card", data: { name: item.name } }, [
      el("div", { class: "card-header" }, [
        el("div", { class: "card-title-wrap" }, [
          el("a", { class: "card-title", href: packageUrl(item.name), testid: "package-link", text: item.name }),
          el("span", { class: "mono muted", testid: "version", text: " v" + item.version }),
        ]),
        badge(item.badge),
      ]),
      el("div", { class: "card-body" }, [
        el("p", { class: "mp-summary", testid: "summary", text: item.summary || "" }),
        el("div", { class: "mp-stats" }, [ratingLine(item), installsLine(item), downloadsLine(item), el("span", { class: "muted", text: item.catalog ? "catalog " + item.catalog : "" })]),
        tags(item.tags),
      ]),
      // Above the footer, so the card's buttons stay at its bottom edge whatever the install says.
      el("div", { class: "mp-install-status", testid: "install-status", hidden: true, "aria-live": "polite" }),
      footer,
    ]);
  }

  /** The shown version, into the namespace the dialog confirms (the package page offers every version). */
  function installFromCard(item, target) {
    const card = target.closest("[data-testid=package-card]");
    const box = card.querySelector("[data-testid=install-status]");
    openInstallDialog(item.name, [item.version], target, box, function (accepted) {
      target.replaceWith(el("span", { class: "mp-installed", testid: "installed", text: "Installed in " + accepted.namespace }));
      if (box.dataset.state !== "live") return;
      const slot = el("div", { class: "mp-paused", testid: "paused-status", hidden: true, "aria-live": "polite" });
      box.after(slot); // new DAGs start paused in Airflow: say so where the user just installed
      showPaused(accepted.package, slot);
    });
  }

  // The natural order of each sort (marketplace/listing.py) and how each direction reads to the user.
  const SORT_ORDERS = {
    downloads: { natural: "desc", desc: "\u2193 Most first", asc: "\u2191 Fewest first" },
    installs: { natural: "desc", desc: "\u2193 Most first", asc: "\u2191 Fewest first" },
    rating: { natural: "desc", desc: "\u2193 Best first", asc: "\u2191 Worst first" },
    name: { natural: "asc", asc: "A \u2192 Z", desc: "Z \u2192 A" },
  };

  /** Label the order button for `sort`; relevance has one order only, so the button is disabled then. */
  function showOrder(orderButton, sort, wanted) {
    const orders = SORT_ORDERS[sort];
    if (!orders) {
      orderButton.disabled = true;
      orderButton.dataset.order = "desc";
      orderButton.textContent = "Best match first";
      orderButton.title = "Choose another sort to turn the order around";
      return;
    }
    const order = wanted === "asc" || wanted === "desc" ? wanted : orders.natural;
    orderButton.disabled = false;
    orderButton.dataset.order = order;
    orderButton.textContent = orders[order];
    orderButton.title = "Click to turn the order around";
  }

  function keepSortInAddress(sort, order) {
    const url = new URL(window.location.href);
    url.searchParams.set("sort", sort);
    if (order && SORT_ORDERS[sort] && order !== SORT_ORDERS[sort].natural) url.searchParams.set("order", order);
    else url.searchParams.delete("order");
    window.history.replaceState(null, "", url);
  }

  function startSearchPage() {
    const input = $("search-input");
    const params = new URLSearchParams(window.location.search);
    input.value = params.get("q") || "";
    const sortSelect = $("sort-select");
    const orderButton = $("sort-order");
    if (sortSelect) {
      sortSelect.value = params.get("sort") || "relevance";
      if (!sortSelect.value) sortSelect.value = "relevance";  // an unknown ?sort= from an old link
      showOrder(orderButton, sortSelect.value, params.get("order"));
      sortSelect.addEventListener("change", function () {
        showOrder(orderButton, sortSelect.value, null);  // a new sort starts in its natural order
        keepSortInAddress(sortSelect.value, null);
        runSearch(input.value.trim());
      });
      orderButton.addEventListener("click", function () {
        const flipped = orderButton.dataset.order === "asc" ? "desc" : "asc";
        showOrder(orderButton, sortSelect.value, flipped);
        keepSortInAddress(sortSelect.value, flipped);
        runSearch(input.value.trim());
      });
    }
    $("search-form").addEventListener("submit", function (event) {
      event.preventDefault();
      const query = input.value.trim();
      const url = new URL(window.location.href);
      if (query) url.searchParams.set("q", query);
      else url.searchParams.delete("q");
      window.history.replaceState(null, "", url);
      runSearch(query);
    });
    runSearch(input.value.trim());
  }

  // ---- the package page --------------------------------------------------------------------------

  async function loadPackage() {
    let info;
    try {
      info = await api("GET", packagePath(CONFIG.packageName));
    } catch (err) {
      const body = $("package-body");
      body.setAttribute("aria-busy", "false");
      if (err.status === 404) body.replaceChildren(stateBox("Package not found", err.message, "not-found"));
      else body.replaceChildren(stateBox("Could not load this package", err.message));
      return null;
    }
    renderHeader(info);
    renderFacts(info);
    renderReviews(info);
    $("package-body").setAttribute("aria-busy", "false");
    return info;
  }

  function renderHeader(info) {
    $("package-version").textContent = "v" + info.version;
    $("package-badge").replaceChildren(badge(info.badge));
    $("package-summary").textContent = info.summary || "";
    fill($("package-stats"), [ratingLine(info), installsLine(info), downloadsLine(info), downloadsByVersion(info), tags(info.tags)]);
    $("package-actions").replaceChildren(actions(info));
  }

  function actions(info) {
    if (info.installed_namespace) {
      const slot = el("div", { class: "mp-paused", testid: "paused-status", hidden: true, "aria-live": "polite" });
      showPaused(info.name, slot);
      return el("div", { class: "mp-installed-actions" }, [
        el("div", { class: "mp-actions" }, [
          el("span", { class: "mp-installed", testid: "installed", text: "Installed in " + info.installed_namespace }),
          CONFIG.canDelete ? button("Uninstall", { small: true, variant: "btn-ghost-danger", testid: "uninstall", onclick: function (event) { uninstall(info, event.currentTarget); } }) : null,
        ]),
        slot,
      ]);
    }
    if (!CONFIG.canWrite) return el("span", { class: "muted", text: "Your Airflow role cannot install packages." });
    const released = (info.versions || []).filter(function (v) { return v.released; }).map(function (v) { return v.version; });
    const versions = released.length ? released : [info.version];
    return el("div", { class: "mp-actions", testid: "install-form" }, [
      button("Install\u2026", { variant: "btn-primary", testid: "install", onclick: function (event) {
        openInstallDialog(info.name, versions, event.currentTarget, $("install-status"), refreshPackage);
      } }),
    ]);
  }

  /** Two clicks: Airflow's iframe sandbox has no allow-modals, so window.confirm() would answer false unseen. */
  async function uninstall(info, target) {
    if (target.dataset.armed !== "true") {
      target.dataset.armed = "true";
      target.dataset.testid = "uninstall-confirm";
      target.textContent = "Remove " + info.installed_namespace + " and its DAGs?";
      return;
    }
    try {
      const answer = await withBusy(target, function () { return api("DELETE", packagePath(info.name, "install")); });
      notify(answer.message || "Uninstalled.", "success");
      $("install-status").hidden = true;
      await refreshPackage();
    } catch (err) {
      reportError(err);
    }
  }

  async function refreshPackage() {
    try {
      const info = await api("GET", packagePath(CONFIG.packageName));
      renderHeader(info);
      renderReviews(info);
    } catch (err) {
      reportError(err);
    }
  }

  function fact(label, value, testid) {
    if (value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)) return null;
    const shown = Array.isArray(value)
      ? el("ul", { class: "mp-list" }, value.map(function (item) { return el("li", { class: "mono", text: String(item) }); }))
      : value instanceof Node ? value : el("span", { text: String(value) });
    return el("div", { class: "mp-fact", testid: testid }, [el("dt", { text: label }), el("dd", {}, [shown])]);
  }

  function renderFacts(info) {
    const others = (info.other_catalogs || []).map(function (other) { return other.catalog + " (v" + other.version + ")"; });
    const checks = Object.entries((info.badge && info.badge.checks) || {}).map(function (entry) { return entry[0] + ": " + entry[1]; });
    const config = info.example_config ? el("pre", { class: "mp-pre", testid: "example-config", text: info.example_config }) : null;
    fill($("package-facts"), [
      el("section", { class: "panel" }, [
        el("header", { class: "panel-header" }, [el("h2", { text: "About" })]),
        el("dl", { class: "panel-body mp-facts" }, [
          fact("Description", info.description, "description"),
          fact("Author", info.author, "author"),
          fact("License", info.license, "license"),
          fact("Catalog", info.catalog, "catalog"),
          fact("Versions", (info.versions || []).map(function (v) { return "v" + v.version + (v.released ? "" : " (not released)"); }), "versions"),
          fact("Required providers", info.providers, "providers"),
          fact("Not installed here", (info.missing_providers || []).concat(info.missing_packages || []), "missing-providers"),
          fact("Required packages", info.packages, "packages"),
          fact("DAG files", info.dag_files, "dag-files"),
          fact("Also in", others, "other-catalogs"),
          fact("Checks", checks, "checks"),
        ]),
      ]),
      config ? el("section", { class: "panel" }, [el("header", { class: "panel-header" }, [el("h2", { text: "Example configuration" })]), el("div", { class: "panel-body" }, [config])]) : null,
    ]);
  }

  function renderReviews(info) {
    const reviews = info.reviews || [];
    const list = reviews.length
      ? el("ul", { class: "mp-reviews", testid: "review-list" }, reviews.map(function (review) {
          return el("li", { class: "mp-review", testid: "review" }, [
            el("div", { class: "mp-review-head" }, [
              el("strong", { testid: "review-author", text: review.author || "" }),
              el("span", { class: "muted", title: review.created_at || "", text: " · " + formatDateTime(review.created_at) }),
            ]),
            // textContent only: a review is whatever its author typed, HTML included.
            el("p", { class: "mp-review-text", testid: "review-text", text: review.text || "" }),
          ]);
        }))
      : el("p", { class: "muted", testid: "no-reviews", text: "No reviews yet." });
    fill($("reviews"), [el("div", { class: "mp-rating-summary" }, [ratingLine(info), histogram(info)]), CONFIG.canWrite ? reviewForms(info) : null, list]);
  }

  function histogram(info) {
    const counts = info.histogram || info.rating_histogram || {};
    const total = Object.values(counts).reduce(function (sum, n) { return sum + (Number(n) || 0); }, 0);
    if (!total) return null;
    return el("div", { class: "mp-histogram", testid: "histogram" }, [5, 4, 3, 2, 1].map(function (stars) {
      const count = Number(counts[stars] || counts[String(stars)] || 0);
      return el("div", { class: "mp-histogram-row" }, [
        el("span", { class: "mp-histogram-label", text: stars + "★" }),
        el("span", { class: "mp-histogram-bar" }, [histogramFill(count, total)]),
        el("span", { class: "muted", text: String(count) }),
      ]);
    }));
  }

  function histogramFill(count, total) {
    const fill = el("span", { class: "mp-histogram-fill" });
    fill.style.width = Math.round((100 * count) / total) + "%"; // CSSOM: allowed by the CSP, unlike a style attribute
    return fill;
  }

  function reviewForms(info) {
    const stars = el("div", { class: "mp-star-buttons", role: "group", "aria-label": "Your rating" }, [1, 2, 3, 4, 5].map(function (n) {
      return el("button", { type: "button", class: "mp-star-button", testid: "star-" + n, "aria-label": "Rate " + plural(n, "star"), title: plural(n, "star"), onclick: function (event) { rate(info, n, event.currentTarget); } }, ["★"]);
    }));
    const text = el("textarea", { class: "mp-review-input", name: "text", rows: "3", maxlength: "2000", testid: "review-input", placeholder: "Share how this package worked for you (plain text, up to 2000 characters)", "aria-label": "Your review" });
    const form = el("form", { class: "mp-review-form", testid: "review-form" }, [
      el("div", { class: "mp-rate-row" }, [el("span", { text: "Rate it: " }), stars]),
      text,
      el("div", {}, [button("Post review", { type: "submit", variant: "btn-primary", small: true, testid: "review-submit" })]),
    ]);
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      if (!text.value.trim()) return notify("Write something first.", "error");
      try {
        await withBusy(form.querySelector("button[type=submit]"), function () { return api("POST", packagePath(info.name, "reviews"), { text: text.value }); });
        notify("Thanks for the review.", "success");
        await refreshPackage();
      } catch (err) {
        reportError(err);
      }
    });
    return form;
  }

  async function rate(info, stars, target) {
    try {
      await withBusy(target, function () { return api("POST", packagePath(info.name, "ratings"), { stars: stars }); });
      notify("Rated " + plural(stars, "star") + ".", "success");
      await refreshPackage();
    } catch (err) {
      reportError(err);
    }
  }

  async function startPackagePage() {
    await loadPackage();
  }

  // ---- start ---------------------------------------------------------------------------------------

  document.addEventListener("click", followLinksFromTop);
  initInstallDialog();
  if (CONFIG.page === "package") startPackagePage();
  else startSearchPage();
})();
