/* DAG Repositories page (airflow-dagops). Plain JavaScript, no build step, no dependencies.
 *
 * The HTML shell carries the configuration in <meta> tags; everything else comes from the REST API
 * (docs/api.md) with the `_token` cookie, and every state-changing call sends the X-DagOps-CSRF header.
 * Data only ever reaches the page through textContent / text nodes (see `el`), never as HTML.
 */
(function () {
  "use strict";

  // Shared with the other dagops pages (common.js, loaded first).
  const { meta, $, el, token, plural, withBusy, openInTop } = window.DagOpsCommon;

  const FAST_POLL_MS = 2000; // while a repository is syncing
  const SLOW_POLL_MS = 15000;
  const NOTICE_MS = 6000;
  const FLASH_KEY = "dagops-flash";

  // ---- configuration -------------------------------------------------------------------------------

  const CONFIG = {
    api: meta("dagops-api").replace(/\/+$/, ""),
    csrf: meta("dagops-csrf"),
    canWrite: meta("dagops-can-write") === "true",
    canDelete: (meta("dagops-can-delete") || meta("dagops-can-write")) === "true",
    // Registering a webhook or a discovered repository acts with a connection's token (the API checks it too).
    canUseConnections: meta("dagops-can-use-connections") === "true",
    airflowBase: meta("dagops-airflow-base").replace(/\/+$/, ""),
    listUrl: meta("dagops-list-url") || "./",
    page: document.body.dataset.page,
    repository: document.body.dataset.repository || null,
    checkId: document.body.dataset.checkId || null,
  };
  const api = window.DagOpsCommon.apiClient(CONFIG.api, CONFIG.csrf);

  // ---- the API -------------------------------------------------------------------------------------

  function repoPath(name, suffix) {
    return "repositories/" + encodeURIComponent(name) + (suffix ? "/" + suffix : "");
  }

  // ---- DOM helpers ---------------------------------------------------------------------------------

  const ICONS = {
    branch: ["M6 3v12", { c: [18, 6, 3] }, { c: [6, 18, 3] }, "M18 9a9 9 0 0 1-9 9"],
    clock: [{ c: [12, 12, 10] }, "M12 6v6l4 2"],
    dags: [{ r: [3, 3, 8, 8, 2] }, "M7 11v4a2 2 0 0 0 2 2h4", { r: [13, 13, 8, 8, 2] }],
    folder: ["M20 20a2 2 0 0 0 2-2V8a2 2 0 0 0-2-2h-7.9a2 2 0 0 1-1.69-.9L9.6 3.9A2 2 0 0 0 7.93 3H4a2 2 0 0 0-2 2v13a2 2 0 0 0 2 2Z"],
    sync: ["M3 12a9 9 0 0 1 9-9 9.75 9.75 0 0 1 6.74 2.74L21 8", "M21 3v5h-5", "M21 12a9 9 0 0 1-9 9 9.75 9.75 0 0 1-6.74-2.74L3 16", "M8 16H3v5"],
    settings: ["M20 7h-9", "M14 17H5", { c: [17, 17, 3] }, { c: [7, 7, 3] }],
    trash: ["M3 6h18", "M19 6v14c0 1-1 2-2 2H7c-1 0-2-1-2-2V6", "M8 6V4c0-1 1-2 2-2h4c1 0 2 1 2 2v2"],
    rollback: ["M3 12a9 9 0 1 0 9-9 9.75 9.75 0 0 0-6.74 2.74L3 8", "M3 3v5h5"],
    pin: ["M12 17v5", "M9 10.76a2 2 0 0 1-1.11 1.79l-1.78.9A2 2 0 0 0 5 15.24V16a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-.76a2 2 0 0 0-1.11-1.79l-1.78-.9A2 2 0 0 1 15 10.76V7a1 1 0 0 1 1-1 2 2 0 0 0 0-4H8a2 2 0 0 0 0 4 1 1 0 0 1 1 1z"],
    external: ["M15 3h6v6", "M10 14 21 3", "M18 13v6a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h6"],
    alert: [{ c: [12, 12, 10] }, "M12 8v4", "M12 16h.01"],
    key: [{ c: [7.5, 15.5, 5.5] }, "m21 2-9.6 9.6", "m15.5 7.5 3 3L22 7l-3-3"],
    check: [{ c: [12, 12, 10] }, "m9 12 2 2 4-4"],
    cross: [{ c: [12, 12, 10] }, "m15 9-6 6", "m9 9 6 6"],
    copy: [{ r: [8, 8, 14, 14, 2] }, "M4 16c-1.1 0-2-.9-2-2V4c0-1.1.9-2 2-2h10c1.1 0 2 .9 2 2"],
    plus: ["M12 5v14", "M5 12h14"],
    shield: ["M20 13c0 5-3.5 7.5-7.66 8.95a1 1 0 0 1-.67-.01C7.5 20.5 4 18 4 13V6a1 1 0 0 1 1-1c2 0 4.5-1.2 6.24-2.72a1.17 1.17 0 0 1 1.52 0C14.51 3.81 17 5 19 5a1 1 0 0 1 1 1z"],
    search: [{ c: [11, 11, 8] }, "m21 21-4.3-4.3"],
  };

  function icon(name) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    const attrs = { viewBox: "0 0 24 24", fill: "none", stroke: "currentColor", "stroke-width": "2",
      "stroke-linecap": "round", "stroke-linejoin": "round", "aria-hidden": "true", focusable: "false" };
    for (const [key, value] of Object.entries(attrs)) svg.setAttribute(key, value);
    for (const part of ICONS[name] || []) {
      let shape;
      if (typeof part === "string") {
        shape = document.createElementNS(ns, "path");
        shape.setAttribute("d", part);
      } else if (part.c) {
        shape = document.createElementNS(ns, "circle");
        ["cx", "cy", "r"].forEach(function (key, i) { shape.setAttribute(key, part.c[i]); });
      } else {
        shape = document.createElementNS(ns, "rect");
        ["x", "y", "width", "height", "rx"].forEach(function (key, i) { shape.setAttribute(key, part.r[i]); });
      }
      svg.append(shape);
    }
    return svg;
  }

  function button(label, options) {
    const opts = options || {};
    return el("button", {
      type: "button",
      class: "btn " + (opts.variant || "") + (opts.small ? " btn-sm" : ""),
      testid: opts.testid,
      disabled: opts.disabled,
      title: opts.title,
      onclick: opts.onclick,
    }, [opts.icon ? icon(opts.icon) : null, label]);
  }

  // Sections are rebuilt only when their data changed, so open <details>, focus and selection survive polls.
  const signatures = new WeakMap();

  function changed(node, data) {
    const signature = JSON.stringify(data);
    if (signatures.get(node) === signature) return false;
    signatures.set(node, signature);
    return true;
  }

  // ---- formatting ----------------------------------------------------------------------------------

  const RELATIVE = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
  const UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600],
    ["minute", 60]];

  function relativeTime(iso) {
    if (!iso) return "never";
    const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
    if (Number.isNaN(seconds)) return "unknown";
    const size = Math.abs(seconds);
    if (size < 45) return "just now";
    for (const [unit, length] of UNITS) {
      if (size >= length || unit === "minute") return RELATIVE.format(Math.round(seconds / length) || -1, unit);
    }
    return "just now";
  }

  function formatDateTime(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }

  /** A <time> that keeps saying how long ago it was (see tickTimes). */
  function timeAgo(iso, prefix, testid) {
    const node = el("time", {
      class: "reltime",
      datetime: iso || undefined,
      title: iso ? formatDateTime(iso) : undefined,
      testid: testid,
      data: { time: iso || "", prefix: prefix || "" },
    });
    node.textContent = (prefix || "") + relativeTime(iso);
    return node;
  }

  function tickTimes() {
    for (const node of document.querySelectorAll("time.reltime")) {
      node.textContent = node.dataset.prefix + relativeTime(node.dataset.time);
    }
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 1) return "<1 s"; // a sync's bookkeeping, not a measurement: milliseconds would read as "0 ms"
    if (seconds < 60) return seconds.toFixed(1) + " s";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min " + Math.round(seconds % 60) + " s";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function formatInterval(seconds) {
    if (!seconds) return "—";
    if (seconds % 3600 === 0) return plural(seconds / 3600, "hour");
    if (seconds % 60 === 0) return seconds === 60 ? "minute" : seconds / 60 + " minutes";
    return seconds + " s";
  }

  function authorName(author) {
    return String(author || "").replace(/\s*<[^>]*>\s*$/, "") || "unknown author";
  }

  // ---- links ---------------------------------------------------------------------------------------

  function detailUrl(name) {
    return CONFIG.listUrl.replace(/\/?$/, "/") + "repositories/" + encodeURIComponent(name);
  }

  /** An Airflow UI path from the API ("/dags/x") as a link for the top window (we live in an iframe). */
  function airflowHref(path) {
    if (typeof path !== "string" || !path.startsWith("/") || path.startsWith("//")) return null;
    return CONFIG.airflowBase + path;
  }

  function airflowLink(path, label, testid) {
    const href = airflowHref(path);
    if (!href) return el("span", { class: "muted", text: label });
    return el("a", { href: href, target: "_top", testid: testid }, [label]);
  }

  /** The repository URL; a link when it is a web URL (credentials are never in it: the API redacts them). */
  function repoUrl(url, className, testid) {
    if (/^https?:\/\//i.test(url || "")) {
      return el("a", { class: className, href: url, target: "_blank", rel: "noopener noreferrer", testid: testid, title: url, text: url });
    }
    return el("span", { class: className, testid: testid, title: url, text: url || "" });
  }

  /** Plain left clicks on target=_top/_blank links go through openInTop; modified clicks stay the browser's. */
  function followLinksFromTop(event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest && event.target.closest("a[target=_top], a[target=_blank]");
    if (!link || window.top === window) return;
    event.preventDefault();
    openInTop(link.href, link.target === "_blank");
  }

  // ---- notices -------------------------------------------------------------------------------------

  let noticeTimer = null;

  /** Show one notice (the newest replaces the previous one); errors stay until dismissed. */
  function notify(message, kind, action) {
    const area = $("notice-area");
    const variant = kind || "info";
    const notice = el("div", { class: "notice kind-" + variant, testid: "notice", role: variant === "error" ? "alert" : "status", data: { kind: variant } }, [
      el("div", { class: "notice-text", text: message }),
      action ? button(action.label, { small: true, onclick: action.run }) : null,
      el("button", { type: "button", class: "icon-btn", "aria-label": "Dismiss", onclick: function () { notice.remove(); } }, ["×"]),
    ]);
    clearTimeout(noticeTimer);
    area.replaceChildren(notice);
    if (variant !== "error") {
      noticeTimer = setTimeout(function () { notice.remove(); }, NOTICE_MS);
    }
  }

  function sessionExpired() {
    poller.stop();
    notify("Your Airflow session has ended. Sign in again to continue.", "error", {
      label: "Sign in",
      run: function () {
        let here = window.location.href;
        try {
          here = window.top.location.href; // reloading the Airflow UI sends it to its login page
        } catch (err) {
          /* cross-origin parent: reload this page, whose view redirects to the login page */
        }
        openInTop(here, false);
      },
    });
  }

  function reportError(err) {
    if (err && err.status === 401) return sessionExpired();
    notify((err && err.message) || String(err), "error");
  }

  function flashLater(message) {
    try {
      sessionStorage.setItem(FLASH_KEY, message);
    } catch (err) {
      /* storage disabled: the notice is lost, the page still works */
    }
  }

  function showFlash() {
    try {
      const message = sessionStorage.getItem(FLASH_KEY);
      if (message) {
        sessionStorage.removeItem(FLASH_KEY);
        notify(message, "success");
      }
    } catch (err) {
      /* storage disabled */
    }
  }

  // ---- polling -------------------------------------------------------------------------------------

  /** Runs the page's `load` now and again: every 2 s while something syncs, every 15 s otherwise. */
  const poller = {
    timer: null,
    load: null,
    onError: null,
    running: false,
    again: false,
    stopped: false,

    start(load, onError) {
      this.load = load;
      this.onError = onError;
      document.addEventListener("visibilitychange", () => {
        if (!document.hidden) this.refresh();
      });
      this.refresh();
    },

    async refresh() {
      if (this.stopped) return;
      if (this.running) {
        this.again = true;
        return;
      }
      clearTimeout(this.timer);
      this.running = true;
      let fast = false;
      try {
        fast = await this.load();
      } catch (err) {
        if (err && err.status === 401) sessionExpired();
        else this.onError(err);
      } finally {
        this.running = false;
      }
      tickTimes();
      if (this.again) {
        this.again = false;
        return this.refresh();
      }
      this.schedule(fast);
    },

    schedule(fast) {
      clearTimeout(this.timer);
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        if (document.hidden) this.schedule(false);
        else this.refresh();
      }, fast ? FAST_POLL_MS : SLOW_POLL_MS);
    },

    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
    },
  };

  /** The first failure replaces the loading skeleton; later ones (a poll) only raise a notice once. */
  function loadErrorHandler(container, title) {
    let lastMessage = null;
    return function (err) {
      if (container.getAttribute("aria-busy") === "true") {
        container.setAttribute("aria-busy", "false");
        container.replaceChildren(stateBox({
          testid: "load-error", error: true, icon: "alert", title: title, text: err.message,
          action: button("Try again", { testid: "reload", onclick: function () { poller.refresh(); } }),
        }));
      } else if (err.message !== lastMessage) {
        notify(err.message, "error");
      }
      lastMessage = err.message;
    };
  }

  function stateBox(opts) {
    return el("div", { class: "state-box" + (opts.error ? " is-error" : ""), testid: opts.testid, role: opts.error ? "alert" : undefined }, [
      el("div", { class: "state-icon" }, [icon(opts.icon)]),
      el("h2", { class: "state-title", text: opts.title }),
      el("p", { class: "state-text", text: opts.text }),
      opts.action || null,
    ]);
  }

  // ---- status marks --------------------------------------------------------------------------------

  // Every status a badge may show, in the words (and capitals) the page uses; an unknown one is capitalised.
  const STATUS_WORDS = {
    synced: "Synced", failed: "Failed", syncing: "Syncing", pinned: "Pinned", pending: "Pending", disabled: "Disabled",
    queued: "Queued", running: "Running", success: "Success", unchanged: "Unchanged", rejected: "Rejected",
    live: "Live", validated: "Validated", retired: "Retired", testing: "Testing",
    soaking: "Soaking", promoted: "Promoted", blocked: "Blocked", superseded: "Superseded",
    passed: "Passed", published: "Published", opened: "Opened", pushed: "Pushed", refused: "Refused", validating: "Validating",
    failure: "Failure", error: "Error", paused: "Paused", active: "Active",
  };

  function statusWord(status) {
    const text = String(status === null || status === undefined ? "" : status);
    return STATUS_WORDS[text] || (text.charAt(0).toUpperCase() + text.slice(1).replace(/_/g, " "));
  }

  function statusBadge(status, testid, word) {
    return el("span", { class: "status-badge status-" + token(status), testid: testid || "status", data: { status: status } }, [
      el("span", { class: "status-mark", "aria-hidden": "true" }),
      word || statusWord(status),
    ]);
  }

  // A repository's health (docs/operations.md): ok, stale, failing or paused, with the reason and since when.
  const HEALTH = { ok: ["Healthy", "success"], stale: ["Stale", "warning"], failing: ["Failing", "failure"], paused: ["Paused", "disabled"] };

  function healthBadge(repo) {
    const health = repo.health;
    if (!health || !HEALTH[health.state]) return null;
    const reason = health.reason ? " (" + String(health.reason).replace(/_/g, " ") + ")" : "";
    return el("div", { class: "health-line", testid: "health", title: health.message, data: { health: health.state } }, [
      statusBadge(HEALTH[health.state][1], "health-badge", HEALTH[health.state][0] + reason),
      health.since ? timeAgo(health.since, "since ", "health-since") : null,
    ]);
  }

  function lastSyncTime(repo) {
    const run = repo.last_sync;
    return run ? run.ended_at || run.started_at : null;
  }

  function dagCount(repo) {
    const count = repo.dag_count || 0;
    return el("span", { testid: "dag-count" }, [el("strong", { text: String(count) }), count === 1 ? " active DAG" : " active DAGs"]);
  }

  function liveCommit(repo) {
    const live = repo.live;
    if (!live) return el("span", { class: "muted", testid: "live-commit", text: "Nothing published yet" });
    return el("span", { testid: "live-commit", title: live.commit + (live.message ? "\n" + live.message : "") }, [
      el("span", { class: "commit-sha", text: live.short_commit }),
      " ",
      live.message || "",
    ]);
  }

  /** The failed / pinned / syncing explanation shown on a card and at the top of the detail page. */
  function statusAlert(repo) {
    if (repo.status === "failed") {
      const actions = CONFIG.canWrite
        ? el("div", { class: "alert-actions" }, [
          button("Retry", { small: true, testid: "retry", icon: "sync", onclick: function (event) { syncNow(repo.name, true, event.currentTarget); } }),
          button("Fix", { small: true, testid: "fix", icon: "settings", onclick: function () { openRepoForm(repo, fieldForError(repo)); } }),
        ])
        : null;
      return el("div", { class: "alert", role: "alert" }, [
        el("div", { class: "alert-text" }, [
          el("span", { class: "alert-title", text: "Last sync failed" }),
          el("span", { class: "alert-message", testid: "error", text: repo.status_message || "Sync failed" }),
          el("span", { class: "alert-sub", text: repo.live ? "Release " + repo.live.short_commit + " stays live." : "Nothing is published yet." }),
        ]),
        actions,
      ]);
    }
    if (repo.status === "pinned") {
      const live = repo.live ? repo.live.short_commit : "#" + repo.pinned_release_id;
      return el("div", { class: "alert alert-info" }, [
        el("div", { class: "alert-text" }, [
          el("span", { class: "alert-title", text: "Pinned" }),
          el("span", { class: "alert-message", testid: "pinned-message", text: "Stays on " + live + "; new commits on " + repo.ref + " are not deployed." }),
        ]),
        CONFIG.canWrite ? el("div", { class: "alert-actions" }, [button("Unpin", { small: true, testid: "unpin", icon: "pin", onclick: function (event) { unpin(repo.name, event.currentTarget); } })]) : null,
      ]);
    }
    if (repo.status === "syncing") {
      const run = repo.last_sync || {};
      const words = run.status === "running" ? "Sync running in Airflow" : "Sync queued in Airflow";
      return el("p", { class: "card-note" }, [words + " · ", airflowLink(run.links && run.links.airflow_run, "View run", "syncing-run")]);
    }
    if (repo.status === "disabled") {
      return el("p", { class: "card-note", text: "Disabled: not synced on schedule. Sync Now still fetches it once." });
    }
    if (repo.status === "pending") {
      return el("p", { class: "card-note", text: "Not published yet. Sync Now fetches, validates and publishes it." });
    }
    return null;
  }

  function fieldForError(repo) {
    const code = repo.last_sync && repo.last_sync.error_code;
    return { authentication_failed: "conn_id", ref_not_found: "ref" }[code] || "url";
  }

  // The newest copy of each repository seen, so a button rendered before a change acts on current data.
  const latest = new Map();

  function remember(repos) {
    for (const repo of repos) latest.set(repo.name, repo);
  }

  function freshest(repo) {
    return repo ? latest.get(repo.name) || repo : null;
  }

  // ---- actions -------------------------------------------------------------------------------------

  async function syncNow(name, force, target) {
    await withBusy(target, async function () {
      try {
        const run = await api("POST", repoPath(name, "sync"), { force: Boolean(force) });
        const href = airflowHref(run.links && run.links.airflow_run);
        notify("Sync of " + name + " started in Airflow.", "success", href ? {
          label: "View run",
          run: function () { openInTop(href, false); },
        } : null);
      } catch (err) {
        reportError(err);
      }
    });
    poller.refresh();
  }

  async function unpin(name, target) {
    await withBusy(target, async function () {
      try {
        const repo = await api("POST", repoPath(name, "unpin"));
        notify(name + " follows " + repo.ref + " again from its next check.", "success");
      } catch (err) {
        reportError(err);
      }
    });
    poller.refresh();
  }

  // The outcome stays in the overview (detail.webhook) rather than in a notice: the payload URL and a missing scope
  // are read, and copied, at leisure. While the host answers, the button is disabled and the overview says so.
  async function registerWebhook(name) {
    if (detail.webhook && detail.webhook.working) return;
    detail.webhook = { working: true };
    renderOverview(detail.repo);
    try {
      detail.webhook = { answer: await api("POST", repoPath(name, "webhook/registration"), {}) };
    } catch (err) {
      detail.webhook = err.status === 401 ? null : { error: err };
      if (err.status === 401) sessionExpired();
    }
    renderOverview(detail.repo);
  }

  async function pin(name, release, target) {
    await withBusy(target, async function () {
      try {
        await api("POST", repoPath(name, "pin"), release ? { release: release.id } : {});
        notify(name + " is pinned" + (release ? " to " + release.short_commit : "") + ": new commits are not deployed.", "success");
      } catch (err) {
        reportError(err);
      }
    });
    poller.refresh();
  }

  async function removeRepo(staleRepo) {
    const repo = freshest(staleRepo);
    const answer = await confirmDialog({
      title: "Remove " + repo.name + "?",
      message: "dagops stops syncing " + repo.url + " and forgets its history. Unless you keep them, the DAGs it " +
        "published to the \u201c" + repo.namespace + "\u201d namespace disappear from Airflow.",
      ok: "Remove repository",
      danger: true,
      keepDags: true,
    });
    if (!answer) return;
    try {
      const result = await api("DELETE", repoPath(repo.name) + "?keep_dags=" + answer.keepDags);
      const message = (result && result.message) || repo.name + " was removed.";
      if (CONFIG.page === "detail") {
        flashLater(message);
        window.location.assign(CONFIG.listUrl);
        return;
      }
      notify(message, "success");
    } catch (err) {
      reportError(err);
    }
    poller.refresh();
  }

  async function rollback(staleRepo, release) {
    // The one rule for pins (releases/pins.py): a pinned repository stays pinned, and its pin moves to this release.
    const repo = detail.repo && detail.repo.name === staleRepo.name ? detail.repo : freshest(staleRepo);
    const pinned = Boolean(repo.pinned_release_id);
    const answer = await confirmDialog({
      title: "Roll back " + repo.name + " to " + release.short_commit + "?",
      message: "The \u201c" + repo.namespace + "\u201d namespace points at release #" + release.id + " (" +
        release.short_commit + (release.message ? " \u201c" + release.message + "\u201d" : "") + ") at once. " +
        (pinned
          ? repo.name + " is pinned: the pin moves to this release, and new commits on " + repo.ref + " stay undeployed until you unpin."
          : "Without a pin, the next new commit on " + repo.ref + " is deployed as usual."),
      ok: "Roll back",
      pin: !pinned,
    });
    if (!answer) return;
    try {
      const after = await api("POST", repoPath(repo.name, "rollback"), { release: release.id, pin: answer.pin });
      notify("Rolled back " + repo.name + " to " + release.short_commit + (after.pinned_release_id ? "; pinned to it." : "."), "success");
      detail.userPickedRelease = false;
    } catch (err) {
      reportError(err);
    }
    poller.refresh();
  }

  // ---- confirm dialog ------------------------------------------------------------------------------

  /** Ask in the page's own dialog; resolves {keepDags, pin} on OK, null on Cancel or Escape. */
  function confirmDialog(opts) {
    const dialog = $("confirm-dialog");
    const ok = $("confirm-ok");
    const cancel = $("confirm-cancel");
    $("confirm-title").textContent = opts.title;
    $("confirm-message").textContent = opts.message;
    ok.textContent = opts.ok;
    ok.className = "btn " + (opts.danger ? "btn-danger" : "btn-primary");
    $("confirm-keep-dags-row").hidden = !opts.keepDags;
    $("confirm-pin-row").hidden = !opts.pin;
    $("confirm-keep-dags").checked = false;
    $("confirm-pin").checked = false;
    return new Promise(function (resolve) {
      let done = false;
      function finish(answer) {
        if (done) return;
        done = true;
        ok.removeEventListener("click", onOk);
        cancel.removeEventListener("click", onCancel);
        dialog.removeEventListener("close", onCancel);
        if (dialog.open) dialog.close();
        resolve(answer);
      }
      function onOk() {
        finish({ keepDags: $("confirm-keep-dags").checked, pin: $("confirm-pin").checked });
      }
      function onCancel() {
        finish(null);
      }
      ok.addEventListener("click", onOk);
      cancel.addEventListener("click", onCancel);
      dialog.addEventListener("close", onCancel); // Escape
      dialog.showModal();
      cancel.focus(); // the safe choice is the default one
    });
  }

  // ---- every other repository option (derived from the API's own description) ---------------------------

  // The API describes each repository option once (repositories/options.py): its OpenAPI document's
  // RepositoryCreate and RepositoryUpdate body schemas carry every option with its type and help sentence.
  // The form lays out the fields below by hand; each other option of the body schema gets a generated field
  // in "Advanced options", so a new option shows up here without a change to the page.
  const HAND_FIELDS = ["name", "namespace", "url", "ref", "priority", "conn_id", "subdir", "poll_interval", "enabled", "verify"];
  // Nicer words for some labels; any other option is labelled from its name (webhook_conn_id: "Webhook conn id").
  const OPTION_LABELS = {
    on_conflict: "On a dag_id conflict", isolated_env: "Isolated environment", webhook_conn_id: "Webhook connection",
    access_control: "Access control", promotion: "Promotion",
  };
  let optionSchemas = null; // {add, edit, all} once the OpenAPI document was read
  let optionSchemasLoading = null;

  /** The options of the create and update bodies, read once from the API's OpenAPI document. */
  function loadOptionSchemas() {
    if (optionSchemas) return Promise.resolve(optionSchemas);
    if (!optionSchemasLoading) {
      optionSchemasLoading = api("GET", "openapi.json").then(function (doc) {
        const schemas = (doc && doc.components && doc.components.schemas) || {};
        const properties = function (name) { return (schemas[name] && schemas[name].properties) || {}; };
        const create = properties("RepositoryCreate");
        const update = properties("RepositoryUpdate");
        const all = Object.keys(create).filter(function (key) { return key !== "name" && key !== "verify"; });
        optionSchemas = {
          create: create,
          update: update,
          all: all, // every option, in the API's order
          generated: all.filter(function (key) { return !HAND_FIELDS.includes(key); }),
        };
        return optionSchemas;
      }).finally(function () {
        optionSchemasLoading = null; // a failure is tried again the next time it is needed
      });
    }
    return optionSchemasLoading;
  }

  function optionLabel(name) {
    if (OPTION_LABELS[name]) return OPTION_LABELS[name];
    const words = name.replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function schemaTypes(schema) {
    return [].concat(schema.type || []);
  }

  function isNullable(schema) {
    return schemaTypes(schema).includes("null") || (Array.isArray(schema.enum) && schema.enum.includes(null));
  }

  /** How an option is edited: boolean (checkbox), enum (select), integer / number (number input),
   *  string (text input), or json (a textarea for objects, arrays and anything else). */
  function optionKind(schema) {
    if (Array.isArray(schema.enum) && schema.enum.some(function (value) { return value !== null; })) return "enum";
    const types = schemaTypes(schema).filter(function (type) { return type !== "null"; });
    if (types.length !== 1) return "json";
    return { boolean: "boolean", integer: "integer", number: "number", string: "string" }[types[0]] || "json";
  }

  /** A made-up value of the schema's shape, for a JSON field's placeholder. */
  function schemaSample(schema, depth) {
    if (!schema || depth > 4) return null;
    if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
    if (schema.default !== undefined && schema.default !== null) return schema.default;
    if (Array.isArray(schema.enum)) return schema.enum.find(function (value) { return value !== null; });
    const types = schemaTypes(schema).filter(function (type) { return type !== "null"; });
    const type = types[0];
    if (type === "object") {
      const sample = {};
      for (const [key, sub] of Object.entries(schema.properties || {})) sample[key] = schemaSample(sub, depth + 1);
      if (!schema.properties && schema.additionalProperties && typeof schema.additionalProperties === "object") {
        sample.key = schemaSample(schema.additionalProperties, depth + 1);
      }
      return sample;
    }
    if (type === "array") {
      const item = schemaSample(schema.items || {}, depth + 1);
      return Array.from({ length: Math.max(1, schema.minItems || 1) }, function () { return item; });
    }
    if (type === "integer" || type === "number") return schema.minimum || 0;
    if (type === "boolean") return false;
    return "\u2026";
  }

  /** JSON with object keys in order, so equal values compare equal. */
  function canonical(value) {
    if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
    if (value && typeof value === "object") {
      return "{" + Object.keys(value).sort().map(function (key) { return JSON.stringify(key) + ":" + canonical(value[key]); }).join(",") + "}";
    }
    return JSON.stringify(value === undefined ? null : value);
  }

  /** What "nothing set" looks like for every kind: null (an empty text, {} and [] included). */
  function normalOption(value) {
    if (value === undefined || value === "") return null;
    if (value && typeof value === "object" && !Array.isArray(value) && !Object.keys(value).length) return null;
    if (Array.isArray(value) && !value.length) return null;
    return value;
  }

  /** One generated field: {name, schema, kind, input, fixed}. The control's name is the option's, so the
   *  API's field errors (details.errors[].field) mark it like the hand-made ones. */
  function optionField(name, schema, repo, fixed) {
    const kind = optionKind(schema);
    const id = "f-opt-" + token(name);
    const hintId = id + "-hint";
    const help = (schema.description || "") + (fixed ? " Fixed once registered." : "");
    const hint = help ? el("p", { class: "hint", id: hintId, text: help }) : null;
    const described = hint ? hintId : undefined;
    const current = repo ? repo[name] : schema.default;
    const option = { name: name, schema: schema, kind: kind, input: null, fixed: fixed };
    let wrapper;
    if (kind === "boolean") {
      const input = el("input", { type: "checkbox", id: id, name: name, "aria-describedby": described, disabled: fixed });
      input.checked = Boolean(current);
      option.input = input;
      wrapper = el("div", { class: "field span-2 option-check" }, [
        el("label", { class: "check", for: id }, [input, el("span", { text: optionLabel(name) })]),
        hint,
      ]);
    } else {
      let input;
      if (kind === "enum") {
        input = el("select", { id: id, name: name, "aria-describedby": described, disabled: fixed });
        if (isNullable(schema)) input.append(el("option", { value: "", text: "Default" }));
        for (const value of schema.enum) {
          if (value !== null) input.append(el("option", { value: JSON.stringify(value), text: String(value) }));
        }
        input.value = current === null || current === undefined ? (isNullable(schema) ? "" : JSON.stringify(schema.enum[0])) : JSON.stringify(current);
      } else if (kind === "integer" || kind === "number") {
        input = el("input", {
          id: id, name: name, type: "number", step: kind === "integer" ? "1" : "any", min: schema.minimum, max: schema.maximum,
          placeholder: isNullable(schema) ? "default" : undefined, "aria-describedby": described, disabled: fixed,
        });
        input.value = current === null || current === undefined ? "" : String(current);
      } else if (kind === "string") {
        input = el("input", {
          id: id, name: name, autocomplete: "off", spellcheck: "false", maxlength: schema.maxLength,
          placeholder: isNullable(schema) ? "none" : undefined, "aria-describedby": described, disabled: fixed,
        });
        input.value = current === null || current === undefined ? "" : String(current);
      } else {
        const sample = schemaSample(schema, 0);
        input = el("textarea", {
          id: id, name: name, class: "json-input", rows: "3", spellcheck: "false", autocomplete: "off",
          placeholder: sample === null ? "JSON" : "e.g. " + JSON.stringify(sample), "aria-describedby": described, disabled: fixed,
        });
        input.value = normalOption(current) === null ? "" : JSON.stringify(current, null, 2);
        input.addEventListener("input", function () { setOptionError(input, null); });
        input.addEventListener("blur", function () { setOptionError(input, readOption(option).error); });
      }
      option.input = input;
      const label = el("label", { for: id }, [optionLabel(name), " ", el("code", { class: "option-key", text: name })]);
      wrapper = el("div", { class: "field" + (kind === "json" ? " span-2" : "") }, [label, input, hint]);
    }
    wrapper.dataset.testid = "option-" + name;
    return { node: wrapper, option: option };
  }

  /** The field's value as the API takes it, or {error} when it cannot be one. */
  function readOption(option) {
    const input = option.input;
    if (option.kind === "boolean") return { value: input.checked };
    if (option.kind === "enum") return { value: input.value === "" ? null : JSON.parse(input.value) };
    const text = (input.value || "").trim();
    if (text === "") return { value: null };
    if (option.kind === "string") return { value: text };
    if (option.kind === "integer" || option.kind === "number") {
      const number = Number(text);
      if (!Number.isFinite(number) || (option.kind === "integer" && !Number.isInteger(number))) {
        return { error: optionLabel(option.name) + " must be a " + (option.kind === "integer" ? "whole " : "") + "number." };
      }
      return { value: number };
    }
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return { error: "Not valid JSON: " + err.message + ". Write it like " + option.input.placeholder.replace(/^e\.g\. /, "") + ", or leave it empty." };
    }
    const types = schemaTypes(option.schema);
    const actual = parsed === null ? "null" : Array.isArray(parsed) ? "array" : typeof parsed;
    const fits = !types.length || types.some(function (type) {
      return type === actual || (type === "integer" && actual === "number" && Number.isInteger(parsed));
    });
    if (!fits) {
      const wanted = types.filter(function (type) { return type !== "null"; }).join(" or ");
      return { error: "Must be a JSON " + wanted + ", not " + (actual === "object" ? "an object" : actual === "array" ? "an array" : "a " + actual) + "." };
    }
    return { value: parsed };
  }

  /** Show (or, with null, clear) a message right under a generated field. */
  function setOptionError(input, message) {
    const field = input.closest(".field");
    const errorId = input.id + "-error";
    const existing = field && field.querySelector(".field-error");
    if (existing) existing.remove();
    const describedBy = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (id) { return id && id !== errorId; });
    if (!message) {
      input.removeAttribute("aria-invalid");
      if (describedBy.length) input.setAttribute("aria-describedby", describedBy.join(" "));
      else input.removeAttribute("aria-describedby");
      return;
    }
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", describedBy.concat(errorId).join(" "));
    if (field) field.append(el("p", { class: "field-error", id: errorId, role: "alert", testid: "option-error", text: message }));
  }

  /** Build the generated fields for the form being opened (add: the create body's options; edit: the update
   *  body's, and the create-only ones shown fixed). */
  async function renderOptionFields(repo, generation) {
    const slot = $("option-fields");
    form.options = [];
    if (!optionSchemas) slot.replaceChildren(el("p", { class: "hint span-2", text: "Loading the other options\u2026" }));
    let described;
    try {
      described = optionSchemas || await loadOptionSchemas();
    } catch (err) {
      if (form.generation === generation) {
        slot.replaceChildren(el("div", { class: "field span-2" }, [el("p", { class: "field-error", role: "alert", text:
          "Could not load the other repository options (" + err.message + "). The dagops CLI and dagops.yaml offer them all." })]));
      }
      return;
    }
    if (form.generation !== generation) return; // the form was opened again meanwhile
    const nodes = [];
    // Short fields side by side first, then checkboxes, then the JSON ones (each kind in the API's order).
    const rank = { boolean: 1, json: 2 };
    const names = described.generated.slice().sort(function (a, b) {
      return (rank[optionKind(described.create[a])] || 0) - (rank[optionKind(described.create[b])] || 0);
    });
    for (const name of names) {
      const fixed = Boolean(repo) && !(name in described.update);
      const built = optionField(name, fixed ? described.create[name] : (repo ? described.update[name] : described.create[name]), repo, fixed);
      nodes.push(built.node);
      form.options.push(built.option);
    }
    slot.replaceChildren.apply(slot, nodes);
    // A repository that uses one of these options opens "Advanced options", as for a subdirectory.
    const used = repo && form.options.some(function (option) {
      const value = normalOption(repo[option.name]);
      return option.kind !== "enum" && value !== null && value !== false;
    });
    if (used) $("repo-form").querySelector("details.advanced").open = true;
  }

  /** The generated options' values: {values: {name: value}, errors: [option]}; errors are shown inline. */
  function readOptionFields() {
    const values = {};
    const invalid = [];
    for (const option of form.options || []) {
      if (option.fixed) continue;
      const read = readOption(option);
      setOptionError(option.input, read.error || null);
      if (read.error) invalid.push(option);
      else values[option.name] = read.value;
    }
    return { values: values, invalid: invalid };
  }

  // ---- add / settings form -------------------------------------------------------------------------

  const form = { mode: "add", repo: null, options: [], generation: 0 };

  function formField(name) {
    return $("repo-form").elements.namedItem(name);
  }

  async function openRepoForm(staleRepo, focusName) {
    const repo = freshest(staleRepo);
    const formEl = $("repo-form");
    formEl.reset();
    clearFormErrors();
    form.mode = repo ? "edit" : "add";
    form.repo = repo || null;
    $("repo-form-title").textContent = repo ? "Settings \u00b7 " + repo.name : "Add New Repository";
    formEl.querySelector("[data-testid=save]").textContent = repo ? "Save changes" : "Add repository";
    const values = repo
      ? { name: repo.name, namespace: repo.namespace, url: repo.url, ref: repo.ref, priority: repo.priority, subdir: repo.subdir, poll_interval: repo.poll_interval }
      : { ref: "main", priority: 100 };
    for (const name of ["name", "namespace", "url", "ref", "priority", "subdir", "poll_interval"]) {
      formField(name).value = values[name] === null || values[name] === undefined ? "" : String(values[name]);
    }
    formField("enabled").checked = repo ? Boolean(repo.enabled) : true;
    formField("name").readOnly = Boolean(repo);
    formField("namespace").readOnly = Boolean(repo);
    for (const hint of formEl.querySelectorAll("[data-mode]")) hint.hidden = hint.dataset.mode !== form.mode;
    formEl.querySelector("details.advanced").open = Boolean(repo && (repo.subdir || !repo.enabled));
    showFormContext(repo && repo.status === "failed" ? "Last sync failed: " + (repo.status_message || "unknown error") : "");
    $("conn-new-slot").replaceChildren(); // no leftover "New connection" form or key from the last time
    renderConnectionField(null, repo ? repo.conn_id : null);
    form.generation += 1;
    const optionsShown = renderOptionFields(repo || null, form.generation); // at once when the schemas are known
    $("repo-dialog").showModal();
    const focus = formField(focusName || (repo ? "url" : "name"));
    if (focus && focus.focus) focus.focus();
    const connections = await loadConnections();
    if ($("repo-dialog").open && form.repo === (repo || null)) {
      const current = formField("conn_id") ? formField("conn_id").value : repo && repo.conn_id;
      renderConnectionField(connections, current);
      if (focusName === "conn_id") formField("conn_id").focus();
    }
    await optionsShown;
  }

  /** Why the form was opened (Fix on a failed repository), above the fields. */
  function showFormContext(text) {
    const context = $("form-context");
    if (!context) return;
    context.textContent = text;
    context.hidden = !text;
  }

  async function loadConnections() {
    try {
      const data = await api("GET", "connections");
      return { items: data.items || [], error: null };
    } catch (err) {
      return { items: [], error: err };
    }
  }

  /** A <select> of Airflow's git connections, or a text input when there are none (or we may not list them). */
  function renderConnectionField(connections, current) {
    const slot = $("conn-slot");
    const hint = $("conn-hint");
    let control;
    if (connections === null) {
      control = el("select", { id: "f-conn", name: "conn_id", disabled: true }, [el("option", { value: current || "", text: "Loading connections\u2026" })]);
    } else if (connections.items.length) {
      control = el("select", { id: "f-conn", name: "conn_id" }, [el("option", { value: "", text: "None (public repository)" })]);
      for (const conn of connections.items) {
        const label = conn.conn_id + (conn.host ? " \u00b7 " + conn.host : "") + (conn.description ? " \u2014 " + conn.description : "");
        control.append(el("option", { value: conn.conn_id, text: label }));
      }
      if (current && !connections.items.some(function (conn) { return conn.conn_id === current; })) {
        control.append(el("option", { value: current, text: current + " (not a git connection)" }));
      }
      control.value = current || "";
    } else {
      control = el("input", { id: "f-conn", name: "conn_id", autocomplete: "off", spellcheck: "false", placeholder: "none: a public repository" });
      control.value = current || "";
    }
    const row = [control];
    if (CONFIG.canWrite) {
      row.push(button("New connection", {
        icon: "plus", testid: "new-connection", title: "Create an Airflow connection of type git: an HTTPS token or a generated SSH deploy key",
        onclick: function () { openConnectionForm(); },
      }));
    }
    slot.replaceChildren(el("div", { class: "conn-row" }, row));
    if (connections && connections.error) {
      hint.textContent = connections.error.status === 403
        ? "Your role may not list Airflow connections: type the id of a git connection, or leave it empty."
        : "Could not list Airflow connections (" + connections.error.message + "): type a connection id, or leave it empty.";
    } else if (connections && !connections.items.length) {
      hint.textContent = "No Airflow connection of type git exists yet. Type a connection id, or leave it empty for a public repository.";
    } else {
      hint.textContent = "An Airflow connection of type git holds the credentials; none for a public repository.";
    }
  }

  // ---- "New connection" (inside the add / settings form) ---------------------------------------------

  /** The inline form that creates an Airflow connection of type git (POST connections). It is built here,
   *  not parsed, so it can sit inside the repository form: its inputs belong to it (their nearest form),
   *  and its submit event is stopped before it reaches the repository form. */
  function openConnectionForm() {
    const slot = $("conn-new-slot");
    const open = slot.querySelector("[data-testid=connection-form]");
    if (open) {
      open.elements.namedItem("conn_id").focus();
      return;
    }
    const kindChoice = function (value, title, text, checked) {
      return el("label", { class: "choice" }, [
        el("input", { type: "radio", name: "kind", value: value, checked: checked }),
        el("span", { class: "choice-text" }, [el("strong", { text: title }), el("span", { class: "choice-sub", text: text })]),
      ]);
    };
    const connForm = el("form", { class: "conn-form", testid: "connection-form", novalidate: true, "aria-labelledby": "conn-form-title", onsubmit: submitConnectionForm }, [
      el("div", { class: "conn-form-header" }, [
        el("h3", { id: "conn-form-title", text: "New Git connection" }),
        el("button", { type: "button", class: "icon-btn", "aria-label": "Close", onclick: closeConnectionForm }, ["×"]),
      ]),
      el("div", { class: "form-error", testid: "connection-error", role: "alert", hidden: true }),
      el("div", { class: "form-grid" }, [
        el("div", { class: "field span-2" }, [
          el("label", { for: "c-conn-id", text: "Connection id" }),
          el("input", { id: "c-conn-id", name: "conn_id", required: true, autocomplete: "off", spellcheck: "false", maxlength: "250", placeholder: "git_analytics" }),
          el("p", { class: "hint", text: "Letters, digits, _ . and -. It becomes an Airflow connection of type git (Admin → Connections)." }),
        ]),
        el("fieldset", { class: "field span-2 choices" }, [
          el("legend", { text: "Kind" }),
          kindChoice("token", "HTTPS token", "A personal access, project or deploy token with read access.", true),
          kindChoice("ssh_key", "SSH deploy key (generated)", "dagops makes an ed25519 key pair; you add its public half to the Git host.", false),
        ]),
        el("div", { class: "field", data: { kind: "token" } }, [
          el("label", { for: "c-login", text: "Login" }),
          el("input", { id: "c-login", name: "login", autocomplete: "off", spellcheck: "false", placeholder: "x-access-token" }),
        ]),
        el("div", { class: "field", data: { kind: "token" } }, [
          el("label", { for: "c-host" }, ["Host ", el("span", { class: "optional", text: "optional" })]),
          el("input", { id: "c-host", name: "host", autocomplete: "off", spellcheck: "false", placeholder: "github.com" }),
        ]),
        el("div", { class: "field span-2", data: { kind: "token" } }, [
          el("label", { for: "c-token", text: "Token" }),
          el("input", { id: "c-token", name: "token", type: "password", autocomplete: "new-password", spellcheck: "false" }),
          el("p", { class: "hint", text: "Stored in the connection's password. dagops never shows it again." }),
        ]),
        el("p", { class: "hint span-2", data: { kind: "ssh_key" }, hidden: true, text:
          "The private key stays in the Airflow connection; only the public key is shown, to add as a read-only deploy key." }),
      ]),
      el("div", { class: "conn-form-footer" }, [
        el("button", { type: "button", class: "btn btn-sm", onclick: closeConnectionForm, text: "Cancel" }),
        el("button", { type: "submit", class: "btn btn-sm btn-primary", testid: "connection-save", text: "Create connection" }),
      ]),
    ]);
    connForm.addEventListener("change", function (event) {
      if (event.target.name === "kind") showConnectionKind(connForm);
    });
    slot.replaceChildren(connForm);
    showConnectionKind(connForm);
    connForm.elements.namedItem("conn_id").focus();
  }

  function connectionKind(connForm) {
    const checked = connForm.querySelector("input[name=kind]:checked");
    return checked ? checked.value : "token";
  }

  function showConnectionKind(connForm) {
    const kind = connectionKind(connForm);
    for (const node of connForm.querySelectorAll("[data-kind]")) node.hidden = node.dataset.kind !== kind;
  }

  function closeConnectionForm() {
    $("conn-new-slot").replaceChildren(); // the token field (and whatever was typed in it) leaves the DOM
    const picker = formField("conn_id");
    if (picker && picker.focus) picker.focus();
  }

  async function submitConnectionForm(event) {
    event.preventDefault();
    event.stopPropagation(); // never the repository form's submit
    const connForm = event.currentTarget;
    const errorBox = connForm.querySelector("[data-testid=connection-error]");
    errorBox.hidden = true;
    errorBox.replaceChildren();
    const value = function (name) { return (connForm.elements.namedItem(name).value || "").trim(); };
    const kind = connectionKind(connForm);
    const body = { conn_id: value("conn_id"), kind: kind };
    if (kind === "token") {
      body.login = value("login") || null;
      body.host = value("host") || null;
      body.token = connForm.elements.namedItem("token").value || null;
    }
    // The token goes into the request and nowhere else: cleared from the page before the call is made.
    connForm.elements.namedItem("token").value = "";
    const save = connForm.querySelector("[data-testid=connection-save]");
    let created;
    try {
      created = await withBusy(save, function () { return api("POST", "connections", body); });
    } catch (err) {
      if (err.status === 401) return sessionExpired();
      const lines = [el("strong", { text: err.status === 403 ? "Not allowed: " + err.message : err.message })];
      const fieldErrors = (err.details && err.details.errors) || [];
      if (fieldErrors.length) {
        lines.push(el("ul", {}, fieldErrors.map(function (item) { return el("li", { text: (item.field ? item.field + ": " : "") + item.message }); })));
      }
      if (kind === "token" && err.status !== 403) lines.push(el("div", { class: "cell-sub", text: "The token field was cleared: enter the token again." }));
      errorBox.replaceChildren.apply(errorBox, lines);
      errorBox.hidden = false;
      return;
    } finally {
      body.token = null;
    }
    const slot = $("conn-new-slot");
    slot.replaceChildren(created.public_key ? newKeyBox(created) : el("div", { class: "conn-created", role: "status" }, [
      icon("check"), "Connection " + created.conn_id + " created and selected.",
    ]));
    renderConnectionField(await loadConnections(), created.conn_id);
  }

  function newKeyBox(created) {
    return el("div", { class: "key-box", testid: "new-connection-key", role: "status" }, [
      el("div", { class: "key-box-title" }, [icon("key"), "Add this as a read-only deploy key in your Git host"]),
      el("p", { class: "hint", text:
        "GitHub and Gitea: repository Settings → Deploy keys; GitLab: Settings → Repository → Deploy keys. " +
        "Leave write access off. Connection " + created.conn_id + " is selected: add the key before saving, so the access check passes." }),
      publicKeyField(created.public_key, "public-key"),
    ]);
  }

  /** A read-only, copyable public key (never anything secret: the API answers public halves only). */
  function publicKeyField(publicKey, testid) {
    const field = el("textarea", { class: "key-text", testid: testid, readonly: true, rows: "2", spellcheck: "false", "aria-label": "Public key", onfocus: function (event) { event.target.select(); } });
    field.value = publicKey;
    const copy = button("Copy", { small: true, icon: "copy", testid: testid + "-copy", onclick: function () { copyText(field, copy); } });
    return el("div", { class: "key-row" }, [field, copy]);
  }

  async function copyText(field, target) {
    let copied = false;
    try {
      await navigator.clipboard.writeText(field.value);
      copied = true;
    } catch (err) {
      // The Airflow UI's iframe may not grant clipboard access: copy the selection the old way.
      field.focus();
      field.select();
      try {
        copied = document.execCommand("copy");
      } catch (ignored) {
        copied = false;
      }
    }
    const label = target.lastChild;
    label.textContent = copied ? "Copied" : "Press Ctrl+C";
    setTimeout(function () { label.textContent = "Copy"; }, 1800);
  }

  function readForm() {
    const text = function (name) { return (formField(name).value || "").trim(); };
    const number = function (name) { return text(name) === "" ? null : Number(text(name)); };
    return {
      name: text("name"),
      namespace: text("namespace"),
      url: text("url"),
      ref: text("ref"),
      priority: number("priority"),
      conn_id: formField("conn_id") ? text("conn_id") || null : null,
      subdir: text("subdir") || null,
      poll_interval: number("poll_interval"),
      enabled: formField("enabled").checked,
      verify: formField("verify").checked,
    };
  }

  /** The generated options a new repository is registered with: the checkboxes as shown, the rest when set. */
  function addOptions(body, options) {
    for (const option of form.options) {
      if (!(option.name in options)) continue;
      const value = options[option.name];
      if (option.kind === "boolean" || normalOption(value) !== null) body[option.name] = value;
    }
    return body;
  }

  /** Only the generated options whose value changed (null, "", {} and [] all mean "none"). */
  function changedOptions(body, options, repo) {
    for (const option of form.options) {
      if (!(option.name in options)) continue;
      if (canonical(normalOption(options[option.name])) !== canonical(normalOption(repo[option.name]))) {
        body[option.name] = options[option.name];
      }
    }
    return body;
  }

  function createBody(values) {
    const body = { name: values.name, url: values.url, ref: values.ref || "main", conn_id: values.conn_id, enabled: values.enabled, verify: values.verify };
    if (values.namespace) body.namespace = values.namespace;
    if (values.priority !== null) body.priority = values.priority;
    if (values.subdir) body.subdir = values.subdir;
    if (values.poll_interval !== null) body.poll_interval = values.poll_interval;
    return body;
  }

  /** Only what changed: the API redacts URLs, so an untouched URL must not be sent back. */
  function updateBody(values, repo, options) {
    const body = {};
    for (const key of ["url", "ref", "priority", "conn_id", "subdir", "poll_interval", "enabled"]) {
      const before = repo[key] === undefined || repo[key] === "" ? null : repo[key];
      if (values[key] !== before && !(key === "poll_interval" && values[key] === null)) body[key] = values[key];
    }
    changedOptions(body, options, repo);
    if (Object.keys(body).length) body.verify = values.verify;
    return body;
  }

  async function submitRepoForm(event) {
    if (event.target !== $("repo-form")) return; // the "New connection" form handles its own
    event.preventDefault();
    clearFormErrors();
    const values = readForm();
    const options = readOptionFields();
    if (options.invalid.length) { // shown under each field; nothing is sent
      const first = options.invalid[0].input;
      const details = first.closest("details");
      if (details) details.open = true;
      const box = $("repo-form").querySelector("[data-testid=form-error]");
      box.replaceChildren(el("strong", { text: "Fix " + options.invalid.map(function (option) { return optionLabel(option.name); }).join(", ") + " first: nothing was saved." }));
      box.hidden = false;
      first.focus();
      return;
    }
    const save = $("repo-form").querySelector("[data-testid=save]");
    let sent = {};
    await withBusy(save, async function () {
      try {
        let message;
        if (form.mode === "add") {
          sent = addOptions(createBody(values), options.values);
          const repo = await api("POST", "repositories", sent);
          message = repo.name + " was added. Sync Now fetches, validates and publishes its DAGs.";
        } else {
          const body = updateBody(values, form.repo, options.values);
          sent = body;
          if (!Object.keys(body).length) {
            $("repo-dialog").close();
            return notify("Nothing changed.", "info");
          }
          const repo = await api("PATCH", repoPath(form.repo.name), body);
          remember([repo]);
          message = "Settings of " + repo.name + " saved.";
        }
        await poller.refresh(); // the page shows the change by the time the dialog closes
        $("repo-dialog").close();
        notify(message, "success");
      } catch (err) {
        if (err.status === 401) return sessionExpired();
        showFormError(err, sent);
      }
    });
  }

  // Which input a failed remote check points at.
  const FIELD_OF_CODE = {
    authentication_failed: "conn_id", ref_not_found: "ref", remote_unreachable: "url", git_timeout: "url",
    git_error: "url", conflict: "name",
  };

  function showFormError(err, sent) {
    const box = $("repo-form").querySelector("[data-testid=form-error]");
    const fieldErrors = (err.details && err.details.errors) || [];
    box.replaceChildren(el("strong", { text: err.status === 403 ? "Not allowed: " + err.message : err.message }));
    const others = fieldErrors.filter(function (item) { return item.message !== err.message; });
    if (others.length) {
      box.append(el("ul", {}, others.map(function (item) {
        return el("li", { text: (item.field ? item.field + ": " : "") + item.message });
      })));
    }
    box.hidden = false;
    for (const item of fieldErrors) markField(String(item.field || "").split(".")[0], item.message);
    if (FIELD_OF_CODE[err.code]) markField(FIELD_OF_CODE[err.code], null);
    if (err.status === 403) { // e.g. "only Airflow admins may set isolated_env": outline what it names
      for (const key of Object.keys(sent || {})) {
        if (key !== "verify" && new RegExp("\\b" + key + "\\b").test(err.message)) markField(key, null);
      }
    }
    box.scrollIntoView({ block: "nearest" });
  }

  /** Outline one input and, with a message, say what is wrong right under it. */
  function markField(name, message) {
    const input = formField(name);
    if (!input || !input.setAttribute) return;
    input.setAttribute("aria-invalid", "true");
    const details = input.closest("details");
    if (details) details.open = true; // an option under "Advanced options" must be seen to be fixed
    const field = input.closest(".field");
    if (message && field && !field.querySelector(".field-error")) {
      field.append(el("p", { class: "field-error", text: message }));
    }
  }

  function clearFormErrors() {
    const formEl = $("repo-form");
    const box = formEl.querySelector("[data-testid=form-error]");
    box.hidden = true;
    box.replaceChildren();
    for (const input of formEl.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    for (const message of formEl.querySelectorAll(".field-error")) message.remove();
  }

  function initDialogs() {
    $("repo-form").addEventListener("submit", submitRepoForm);
    for (const closer of document.querySelectorAll("#repo-dialog [data-action=close]")) {
      closer.addEventListener("click", function () { $("repo-dialog").close(); });
    }
    for (const adder of document.querySelectorAll("[data-action=add]")) {
      adder.addEventListener("click", function () { openRepoForm(null); });
    }
    for (const discoverer of document.querySelectorAll("[data-action=discover]")) {
      discoverer.addEventListener("click", function (event) { discover(event.currentTarget); });
    }
  }

  // "Discover" (discovery.js): scan dagops.yaml's discovery: sources, then register or ignore what they propose.
  let discoveryMade = null;

  function discovery() {
    if (discoveryMade || !window.DagOpsDiscovery || !$("discover-dialog")) return discoveryMade;
    discoveryMade = window.DagOpsDiscovery({
      el: el, api: api, button: button, statusBadge: statusBadge, table: table, outcomeBox: outcomeBox, token: token,
      reportError: reportError, refresh: function () { poller.refresh(); },
      canWrite: CONFIG.canWrite, canUseConnections: CONFIG.canUseConnections,
    });
    return discoveryMade;
  }

  async function discover(target) {
    const kit = discovery();
    if (kit) await withBusy(target, kit.scan);
  }

  // ---- list page -----------------------------------------------------------------------------------

  async function loadList() {
    const data = await api("GET", "repositories?limit=200");
    latest.clear();
    remember(data.items);
    renderList(data.items, data.total);
    return data.items.some(function (repo) { return repo.status === "syncing"; });
  }

  function renderList(repos, total) {
    const grid = $("repo-list");
    grid.setAttribute("aria-busy", "false");
    renderSummary(repos, total);
    if (!repos.length) {
      if (!grid.querySelector("[data-testid=empty]")) grid.replaceChildren(emptyState());
      return;
    }
    const current = Array.from(grid.querySelectorAll(":scope > [data-testid=repo-card]"));
    const sameOrder = current.length === repos.length && current.every(function (card, i) { return card.dataset.name === repos[i].name; });
    if (!sameOrder) {
      grid.replaceChildren.apply(grid, repos.map(function (repo) {
        const card = repoCard(repo);
        changed(card, repo);
        return card;
      }));
      return;
    }
    repos.forEach(function (repo, i) {
      if (!changed(current[i], repo)) return;
      const card = repoCard(repo);
      changed(card, repo);
      current[i].replaceWith(card);
    });
  }

  function renderSummary(repos, total) {
    const summary = $("summary");
    if (!repos.length) {
      summary.hidden = true;
      return;
    }
    const counts = {};
    for (const repo of repos) counts[repo.status] = (counts[repo.status] || 0) + 1;
    const chips = [el("span", { class: "summary-chip" }, [el("strong", { text: String(total) }), total === 1 ? " repository" : " repositories"])];
    for (const status of ["synced", "syncing", "failed", "pinned", "pending", "disabled"]) {
      if (!counts[status]) continue;
      chips.push(el("span", { class: "summary-chip status-" + status }, [
        el("span", { class: "status-mark", "aria-hidden": "true" }),
        el("strong", { text: String(counts[status]) }),
        " " + STATUS_WORDS[status].toLowerCase(),
      ]));
    }
    summary.replaceChildren.apply(summary, chips);
    summary.hidden = false;
  }

  function emptyState() {
    return stateBox({
      testid: "empty",
      icon: "branch",
      title: "No repositories yet",
      text: CONFIG.canWrite
        ? "Add a Git repository: dagops validates its DAGs and publishes each good commit to this Airflow."
        : "No repository is registered yet. Someone allowed to edit DAGs can add one.",
      action: CONFIG.canWrite ? button("+ Add New Repository", { variant: "btn-primary", testid: "add-repo-empty", onclick: function () { openRepoForm(null); } }) : null,
    });
  }

  function fact(iconName, title, children) {
    return el("div", { class: "fact", title: title }, [icon(iconName), el("span", {}, children)]);
  }

  function repoCard(repo) {
    return el("article", { class: "card repo-card status-" + token(repo.status), testid: "repo-card", data: { name: repo.name, status: repo.status } }, [
      el("header", { class: "card-header" }, [
        el("div", { class: "card-title-wrap" }, [
          el("a", { class: "card-title", href: detailUrl(repo.name), testid: "open-details", text: repo.name }),
          repoUrl(repo.url, "card-url", "url"),
        ]),
        statusBadge(repo.status),
      ]),
      el("div", { class: "card-body" }, [
        el("div", { class: "facts" }, [
          // A long branch or namespace is cut short with an ellipsis; the title shows all of it.
          fact("branch", "Branch or tag: " + repo.ref, [el("span", { class: "chip", testid: "branch", title: repo.ref, text: repo.ref })]),
          fact("folder", "Namespace in the dags folder: " + repo.namespace, [el("span", { class: "chip", testid: "namespace", title: repo.namespace, text: repo.namespace })]),
          fact("clock", "Last sync", [timeAgo(lastSyncTime(repo), "Last sync: ", "last-sync")]),
          fact("dags", "DAGs in the live release", [dagCount(repo)]),
        ]),
        el("div", { class: "live-commit" }, [el("span", { class: "label", text: "Live" }), liveCommit(repo)]),
        healthBadge(repo),
        statusAlert(repo),
      ]),
      cardFooter(repo),
    ]);
  }

  function cardFooter(repo) {
    const items = [];
    if (CONFIG.canWrite) {
      const syncing = repo.status === "syncing";
      items.push(button(syncing ? "Syncing\u2026" : "Sync Now", {
        small: true, icon: "sync", testid: "sync-now", disabled: syncing,
        onclick: function (event) { syncNow(repo.name, false, event.currentTarget); },
      }));
      items.push(button("Settings", { small: true, icon: "settings", testid: "settings", onclick: function () { openRepoForm(repo); } }));
    } else {
      items.push(el("a", { class: "btn btn-sm", href: detailUrl(repo.name), text: "Details" }));
    }
    items.push(el("span", { class: "spacer" }));
    if (CONFIG.canDelete) {
      items.push(button("Remove", { small: true, variant: "btn-ghost-danger", icon: "trash", testid: "remove", onclick: function () { removeRepo(repo); } }));
    }
    return el("footer", { class: "card-footer" }, items);
  }

  // ---- detail page ---------------------------------------------------------------------------------

  const detail = {
    repo: null,
    syncLimit: 20,
    reportReleaseId: null,
    userPickedRelease: false,
    releases: [],
    findings: new Map(), // release id -> release with findings (its report no longer changes once tested)
    // Credentials: the deploy key of `keyFor` (a conn id), the last "Test access" verdict, a pending rotation.
    keyFor: undefined,
    deployKey: null, // {public_key} | {missing: message} | {error: message} | null while loading
    access: null,
    rotation: null, // {pending, access} while a key rotation waits for its deploy key
    webhook: null, // the last "Register webhook": {working} | {answer} | {error}; shown until the next press
  };

  // Promotion, release tests, files left out, proposals and events: repository_sections.js, given these helpers.
  let sectionsMade = null;

  function repositorySections() {
    if (sectionsMade || !window.DagOpsRepositorySections) return sectionsMade;
    sectionsMade = window.DagOpsRepositorySections({
      el: el, api: api, repoPath: repoPath, button: button, statusBadge: statusBadge, timeAgo: timeAgo, table: table,
      emptyRow: emptyRow, plural: plural, formatDuration: formatDuration, panel: panel, renderSection: renderSection,
      confirmDialog: confirmDialog, withBusy: withBusy, notify: notify, reportError: reportError,
      refresh: function () { poller.refresh(); }, canWrite: CONFIG.canWrite,
    });
    return sectionsMade;
  }

  async function loadDetail() {
    let repo;
    try {
      repo = await api("GET", repoPath(CONFIG.repository));
    } catch (err) {
      if (err.status === 404) {
        renderNotFound(err);
        poller.stop();
        return false;
      }
      throw err;
    }
    const results = await Promise.allSettled([
      api("GET", repoPath(repo.name, "syncs?limit=" + detail.syncLimit)),
      api("GET", repoPath(repo.name, "releases?limit=50")),
      api("GET", repoPath(repo.name, "dags")),
    ]);
    detail.repo = repo;
    remember([repo]);
    ensureDetailLayout();
    renderHeader(repo);
    renderOverview(repo);
    renderSection("syncs", results[0], renderSyncs);
    renderSection("releases", results[1], renderReleases);
    renderSection("dags", results[2], renderDags);
    if (results[1].status === "fulfilled") detail.releases = results[1].value.items;
    if (repositorySections()) await repositorySections().load(repo, detail.releases);
    await loadDeployKey(repo);
    renderCredentials();
    await renderReport();
    return repo.status === "syncing";
  }

  function renderNotFound(err) {
    $("repo-actions").replaceChildren();
    $("repo-status").replaceChildren();
    $("repo-subtitle").textContent = "";
    const body = $("repo-body");
    body.setAttribute("aria-busy", "false");
    body.replaceChildren(stateBox({
      testid: "not-found",
      icon: "search",
      title: "Repository not found",
      text: err.message,
      action: el("a", { class: "btn", href: CONFIG.listUrl, text: "Back to DAG Repositories" }),
    }));
  }

  function panel(id, title, extra) {
    return el("section", { class: "panel", id: "panel-" + id, "aria-labelledby": "title-" + id }, [
      el("header", { class: "panel-header" }, [
        el("h2", { id: "title-" + id }, [title, el("span", { class: "count", id: "count-" + id, hidden: true })]),
        extra || null,
      ]),
      el("div", { class: "panel-body flush", id: "section-" + id }),
    ]);
  }

  function ensureDetailLayout() {
    const body = $("repo-body");
    if (body.getAttribute("aria-busy") === "false") return;
    body.setAttribute("aria-busy", "false");
    const overview = el("section", { class: "panel", "aria-label": "Overview" }, [el("div", { class: "panel-body" }, [
      el("div", { id: "repo-alert", class: "overview-alert" }),
      el("dl", { class: "overview", id: "overview" }),
    ])]);
    const sections = repositorySections() ? repositorySections().panels() : { top: [], bottom: [] };
    body.replaceChildren(
      overview,
      ...sections.top,
      el("div", { class: "detail-grid" }, [
        panel("dags", "DAGs"),
        panel("report", "Validation report", el("label", {}, [
          el("span", { class: "muted", text: "Release " }),
          el("select", { class: "select", id: "report-release", testid: "report-release", onchange: function (event) {
            detail.userPickedRelease = true;
            detail.reportReleaseId = Number(event.target.value);
            renderReport();
          } }),
        ])),
      ]),
      panel("credentials", "Credentials"),
      panel("releases", "Releases"),
      ...sections.bottom,
      panel("syncs", "Sync history"),
    );
  }

  function setCount(id, count) {
    const node = $("count-" + id);
    node.textContent = String(count);
    node.hidden = count === null || count === undefined;
  }

  /** Render one section from a settled API call: its data, or the API's error in place. */
  function renderSection(id, result, render) {
    const container = $("section-" + id);
    if (result.status === "rejected") {
      if (result.reason && result.reason.status === 401) return sessionExpired();
      if (changed(container, { error: result.reason.message })) {
        container.replaceChildren(el("div", { class: "inline-state is-error", role: "alert", text: result.reason.message }));
      }
      return;
    }
    setCount(id, result.value.total);
    if (changed(container, result.value)) container.replaceChildren(render(result.value));
  }

  function renderHeader(repo) {
    $("repo-status").replaceChildren(statusBadge(repo.status, "repo-status"));
    const subtitle = $("repo-subtitle");
    if (changed(subtitle, [repo.url, repo.ref])) {
      subtitle.replaceChildren(repoUrl(repo.url, "mono"), el("span", { class: "muted", text: " \u00b7 " + repo.ref }));
    }
    const actions = $("repo-actions");
    if (!changed(actions, [repo.status, repo.live && repo.live.release_id, repo.pinned_release_id])) return;
    const items = [];
    if (CONFIG.canWrite) {
      const syncing = repo.status === "syncing";
      items.push(button(syncing ? "Syncing\u2026" : "Sync Now", {
        icon: "sync", testid: "sync-now", disabled: syncing, onclick: function (event) { syncNow(repo.name, false, event.currentTarget); },
      }));
      items.push(button("Settings", { icon: "settings", testid: "settings", onclick: function () { openRepoForm(detail.repo); } }));
      if (repo.pinned_release_id) {
        items.push(button("Unpin", { icon: "pin", testid: "unpin", onclick: function (event) { unpin(repo.name, event.currentTarget); } }));
      } else if (repo.live) {
        items.push(button("Pin", { icon: "pin", testid: "pin", title: "Stay on the live release; ignore new commits", onclick: function (event) { pin(repo.name, null, event.currentTarget); } }));
      }
    }
    if (CONFIG.canDelete) {
      items.push(button("Remove", { variant: "btn-ghost-danger", icon: "trash", testid: "remove", onclick: function () { removeRepo(detail.repo); } }));
    }
    actions.replaceChildren.apply(actions, items);
  }

  function renderOverview(repo) {
    const alert = $("repo-alert");
    if (changed(alert, [repo.status, repo.status_message, repo.live, repo.last_sync && repo.last_sync.links])) {
      const content = statusAlert(repo);
      alert.replaceChildren(content || "");
      alert.hidden = !content;
    }
    const overview = $("overview");
    if (!changed(overview, [repo, optionSchemas ? optionSchemas.all : null, detail.webhook])) return;
    const item = function (label, value, wide, testid) {
      return el("div", { class: wide ? "wide" : undefined }, [el("dt", { text: label }), el("dd", { testid: testid }, value)]);
    };
    const live = repo.live;
    const items = [
      item("Repository URL", [repoUrl(repo.url, "mono", "url")], true),
      item("Branch or tag", [el("span", { class: "chip", testid: "branch", text: repo.ref })]),
      item("Namespace", [el("span", { class: "chip", text: repo.namespace })]),
      item("Priority", [String(repo.priority)]),
      item("Git connection", [repo.conn_id ? el("span", { class: "chip", text: repo.conn_id }) : el("span", { class: "muted", text: "None (public)" })]),
      item("Live release", [
        el("div", {}, [liveCommit(repo)]),
        live ? el("div", { class: "cell-sub" }, [authorName(live.author), live.committed_at ? " \u00b7 " : "", live.committed_at ? timeAgo(live.committed_at) : ""]) : null,
      ], true),
      item("Active DAGs", [dagCount(repo)]),
      item("Last sync", [
        timeAgo(lastSyncTime(repo), "", "last-sync"),
        repo.last_sync ? " \u00b7 " + statusWord(repo.last_sync.status) : "",
      ]),
      item("Polling", [repo.enabled ? "Every " + formatInterval(repo.poll_interval) : "Disabled"]),
      item("Subdirectory", [repo.subdir ? el("span", { class: "chip", text: repo.subdir }) : el("span", { class: "muted", text: "Whole repository" })]),
      item("On a dag_id conflict", [onConflictText(repo.on_conflict)], false, "on-conflict"),
      item("Isolated environment", [repo.isolated_env ? "Yes: its own virtual environment" : el("span", { class: "muted", text: "No: Airflow's environment" })], false, "isolated-env"),
      item("Webhook connection", [
        repo.webhook_conn_id ? el("span", { class: "chip", text: repo.webhook_conn_id }) : el("span", { class: "muted", text: "None" }),
      ], false, "webhook-conn"),
      repo.conn_id && CONFIG.canUseConnections ? item("Webhook on the Git host", webhookControls(repo), true, "webhook") : null,
      item("Promotion", [promotionText(repo.promotion)], false, "promotion"),
      item("Access control", [accessControlText(repo.access_control)], false, "access-control"),
      ...otherOptions(repo).map(function (name) {
        return item(optionLabel(name), [optionValueText(repo[name])], false, "option-" + name);
      }),
    ];
    overview.replaceChildren.apply(overview, items.filter(Boolean));  // a null child would show as "null"
  }

  /** "Register webhook" and what the last press did: created or updated (with the payload URL, events, content
   *  type and the secret's connection, never the secret), or why not (a token without the scope names it). */
  function webhookControls(repo) {
    const state = detail.webhook || {};
    const press = button(state.working ? "Registering\u2026" : "Register webhook", {
      small: true, icon: "external", testid: "register-webhook", disabled: state.working,
      title: "Create or update dagops' webhook on the Git host, with the token of connection " + repo.conn_id,
      onclick: function () { registerWebhook(repo.name); },
    });
    if (state.working) press.classList.add("is-busy");
    return [el("div", { class: "webhook-controls" }, [el("div", {}, [press]), state.working || state.answer || state.error ? webhookOutcome(state) : null])];
  }

  function webhookOutcome(state) {
    if (state.working) {
      return outcomeBox(null, "webhook-result", "working", [el("strong", { text: "Asking the Git host\u2026" })], [
        el("div", { class: "access-message", text: "Creating dagops' webhook, or updating the one already there." }),
      ]);
    }
    if (state.error) {
      const err = state.error;
      const rows = [el("div", { class: "access-message", testid: "webhook-message", text: err.message })];
      if (err.code === "host_permission_denied") {
        rows.push(el("div", { class: "finding-hint", testid: "webhook-hint", text: "Nothing was created or changed on the Git host. Give the token of connection " + detail.repo.conn_id + " the scope named above, then press Register webhook again." }));
      }
      return outcomeBox(false, "webhook-result", token(err.code), [el("strong", { text: "Webhook not registered" })], rows);
    }
    const answer = state.answer;
    const hook = answer.hook || {};
    return outcomeBox(true, "webhook-result", token(answer.action), [
      el("strong", { text: "Webhook " + answer.action + " on " + answer.provider }),
      el("span", { class: "muted", text: answer.project + (hook.id !== undefined ? " \u00b7 hook " + hook.id : "") }),
    ], [
      el("div", { class: "access-message" }, ["Payload URL ", el("code", { class: "mono", testid: "webhook-url", text: answer.url })]),
      el("div", { class: "cell-sub", testid: "webhook-events", text: "Events " + (answer.events || []).join(", ") + " \u00b7 content type " + answer.content_type + " \u00b7 secret set (connection " + answer.secret_conn_id + ")" }),
    ].concat((answer.warnings || []).map(function (warning) {
      return el("div", { class: "finding-hint", testid: "webhook-warning", text: warning });
    })));
  }

  // The options the overview shows in its own words; any other option (a new one) is shown as it is.
  const OVERVIEW_OPTIONS = ["url", "ref", "namespace", "priority", "conn_id", "enabled", "poll_interval", "subdir",
    "on_conflict", "isolated_env", "webhook_conn_id", "promotion", "access_control"];

  function otherOptions(repo) {
    if (!optionSchemas) return [];
    return optionSchemas.all.filter(function (name) { return !OVERVIEW_OPTIONS.includes(name) && name in repo; });
  }

  function optionValueText(value) {
    if (value === null || value === undefined || value === "") return el("span", { class: "muted", text: "Not set" });
    if (typeof value === "boolean") return value ? "Yes" : "No";
    if (typeof value === "object") return el("code", { class: "mono", text: JSON.stringify(value) });
    return el("span", { class: "chip", text: String(value) });
  }

  function onConflictText(value) {
    const words = { skip_files: "publish without the conflicting files", block: "do not publish the release" };
    if (!value) return el("span", { class: "muted", text: "Default" });
    return el("div", {}, [el("span", { class: "chip", text: value }), words[value] ? el("div", { class: "cell-sub", text: words[value] }) : null]);
  }

  function promotionText(promotion) {
    if (!promotion || !Array.isArray(promotion.stages) || !promotion.stages.length) {
      return el("span", { class: "muted", text: "None: a new release goes straight to live" });
    }
    const parts = [];
    promotion.stages.forEach(function (stage, i) {
      if (i) parts.push(el("span", { class: "stage-arrow", text: "\u2192" }));
      parts.push(el("span", { class: "chip", text: stage }));
    });
    const soak = promotion.soak_runs === 0 ? "promoted by hand only" : "promoted after " + plural(promotion.soak_runs, "successful run");
    return el("div", { class: "stages" }, [
      el("div", { class: "stage-list" }, parts),
      promotion.soak_runs === undefined ? null : el("div", { class: "cell-sub", text: soak }),
    ]);
  }

  function accessControlText(access) {
    const roles = access ? Object.keys(access) : [];
    if (!roles.length) return el("span", { class: "muted", text: "Airflow's defaults" });
    return el("ul", { class: "role-list" }, roles.map(function (role) {
      return el("li", {}, [el("span", { class: "chip", text: role }), " " + [].concat(access[role]).join(", ")]);
    }));
  }

  function table(columns, rows) {
    return el("div", { class: "table-wrap" }, [el("table", { class: "data" }, [
      el("thead", {}, [el("tr", {}, columns.map(function (column) { return el("th", { scope: "col", text: column }); }))]),
      el("tbody", {}, rows),
    ])]);
  }

  function emptyRow(text) {
    return el("div", { class: "inline-state", text: text });
  }

  function renderDags(page) {
    if (!page.items.length) return emptyRow("No DAGs are live for this repository yet.");
    return table(["DAG", "File", "Import errors"], page.items.map(function (dag) {
      const errors = dag.import_errors || [];
      return el("tr", { testid: "dag-row", data: { dagId: dag.dag_id, importErrors: String(errors.length) } }, [
        el("td", { class: "cell-main" }, [airflowLink(dag.airflow_url, dag.dag_id, "dag-link")]),
        el("td", { class: "mono muted", text: dag.file || "" }),
        el("td", {}, errors.length ? errors.map(importError) : [el("span", { class: "muted", text: "None" })]),
      ]);
    }));
  }

  function importError(error) {
    const firstLine = String(error.stack_trace || "").trim().split("\n").pop();
    return el("details", { class: "more", testid: "import-error" }, [
      el("summary", {}, [el("span", { class: "error-text", text: firstLine || "Import error" })]),
      el("div", { class: "cell-sub" }, [error.filename || "", error.timestamp ? " \u00b7 " : "", error.timestamp ? timeAgo(error.timestamp) : ""]),
      el("pre", { class: "trace", text: error.stack_trace || "" }),
    ]);
  }

  function renderSyncs(page) {
    if (!page.items.length) return emptyRow("No sync yet. Sync Now starts the first one.");
    const rows = page.items.map(function (run) {
      const details = [];
      if (run.status_message || run.error) {
        details.push(el("div", { class: "error-text", text: run.status_message || run.error }));
        if (run.error && run.error !== run.status_message) {
          details.push(el("details", { class: "more" }, [el("summary", { text: "Full error" }), el("pre", { class: "trace", text: run.error })]));
        }
      }
      return el("tr", { testid: "sync-row", data: { syncId: String(run.id), status: run.status } }, [
        el("td", {}, [statusBadge(run.status, "sync-status")]),
        el("td", { class: "nowrap", text: run.trigger || "" }),
        el("td", { class: "nowrap" }, [run.started_at ? timeAgo(run.started_at) : el("span", { class: "muted", text: "not started" })]),
        el("td", { class: "nowrap", testid: "duration", text: formatDuration(run.duration_seconds) }),
        el("td", { class: "nowrap" }, [run.commit ? el("span", { class: "commit-sha", title: run.commit, text: run.commit.slice(0, 7) }) : el("span", { class: "muted", text: "—" })]),
        el("td", {}, details.length ? details : [el("span", { class: "muted", text: "—" })]),
        el("td", { class: "actions" }, [run.links && run.links.airflow_run ? airflowLink(run.links.airflow_run, "Airflow run \u2197", "airflow-run") : null]),
      ]);
    });
    const content = el("div", {}, [table(["Status", "Trigger", "Started", "Duration", "Commit", "Details", ""], rows)]);
    if (page.total > page.items.length) {
      content.append(el("div", { class: "panel-footer" }, [button("Show more", { small: true, testid: "more-syncs", onclick: function () {
        detail.syncLimit += 20;
        poller.refresh();
      } })]));
    }
    return content;
  }

  function validationSummary(validation) {
    if (!validation) return el("span", { class: "muted", text: "—" });
    const parts = [plural(validation.errors || 0, "error"), plural(validation.warnings || 0, "warning")];
    return el("span", { class: validation.passed ? "" : "error-text" }, [(validation.passed ? "Passed" : "Failed") + " \u00b7 " + parts.join(", ")]);
  }

  function renderReleases(page) {
    if (!page.items.length) return emptyRow("No release yet. A release is recorded for every commit a sync validates.");
    const repo = detail.repo;
    return table(["Release", "Commit", "Validation", "Created", ""], page.items.map(function (release) {
      const actions = [];
      if (CONFIG.canWrite && (release.status === "validated" || release.status === "retired")) {
        actions.push(button("Rollback", { small: true, icon: "rollback", testid: "rollback", onclick: function () { rollback(repo, release); } }));
      }
      actions.push(button("Report", { small: true, testid: "view-report", onclick: function () {
        detail.userPickedRelease = true;
        detail.reportReleaseId = release.id;
        renderReport();
        $("panel-report").scrollIntoView({ behavior: "smooth", block: "start" });
      } }));
      return el("tr", { testid: "release-row", data: { releaseId: String(release.id), status: release.status } }, [
        el("td", { class: "nowrap" }, [
          el("span", { class: "cell-main", text: "#" + release.id + " " }),
          statusBadge(release.status, "release-status"),
          release.pinned ? el("span", { class: "tag", testid: "release-pinned", text: "Pinned" }) : null,
        ]),
        el("td", {}, [
          el("div", {}, [el("span", { class: "commit-sha", title: release.commit, text: release.short_commit }), " ", release.message || ""]),
          el("div", { class: "cell-sub" }, [authorName(release.author), release.on_disk === false ? " \u00b7 pruned (re-exported on rollback)" : ""]),
        ]),
        el("td", {}, [validationSummary(release.validation), runHealth(release.run_health)]),
        el("td", { class: "nowrap" }, [timeAgo(release.created_at)]),
        el("td", { class: "actions" }, actions),
      ]);
    }));
  }

  /** A release's DAG runs against the previous live release's (GET .../releases: run_health; docs/operations.md). */
  function runHealth(health) {
    if (!health || !health.runs) return null;
    const pct = function (rate) { return Math.round(rate * 100) + "%"; };
    let text = health.runs + " run" + (health.runs === 1 ? "" : "s") + ", " + pct(health.success_rate) + " succeeded";
    if (health.previous && health.previous.runs) text += " (previous " + pct(health.previous.success_rate) + ")";
    if (health.mean_duration_seconds !== null) text += " \u00b7 mean " + Math.round(health.mean_duration_seconds) + " s";
    const worse = health.success_rate_change !== null && health.success_rate_change < 0;
    return el("div", { class: "cell-sub" + (worse ? " error-text" : ""), testid: "release-run-health", text: text });
  }

  // ---- credentials (detail page) -------------------------------------------------------------------

  const ACCESS_TITLES = {
    ok: "Access works", authentication_failed: "Authentication failed", repository_not_found: "Repository not found",
    host_unreachable: "Host unreachable", host_key_mismatch: "Host key mismatch", ref_not_found: "Branch or tag not found",
    timeout: "Timed out", key_unusable: "Key unusable", connection_error: "Connection problem",
    transport_not_allowed: "Transport not allowed", error: "Access check failed",
  };

  /** The public key of the repository's connection, fetched again only when the connection changes. */
  async function loadDeployKey(repo) {
    const connId = repo.conn_id || null;
    if (detail.keyFor === connId) return;
    detail.keyFor = connId;
    detail.deployKey = null;
    if (!connId) return;
    try {
      const data = await api("GET", repoPath(repo.name, "credentials/deploy-key"));
      detail.deployKey = { public_key: data.public_key };
    } catch (err) {
      if (err.status === 401) throw err;
      detail.deployKey = err.status === 404 ? { missing: err.message } : { error: err.message };
      if (err.status !== 404) detail.keyFor = undefined; // try again on the next poll
    }
  }

  function renderCredentials() {
    const container = $("section-credentials");
    const repo = detail.repo;
    const state = [repo.name, repo.conn_id, detail.deployKey, detail.access, detail.rotation, CONFIG.canWrite];
    if (!changed(container, state)) return;
    const rows = [];
    const connection = repo.conn_id
      ? el("span", { class: "chip", testid: "credentials-conn", text: repo.conn_id })
      : el("span", { class: "muted", testid: "credentials-conn", text: "none: public repository" });
    rows.push(el("div", { class: "cred-row" }, [
      el("div", { class: "cred-label", text: "Connection" }),
      el("div", { class: "cred-value" }, [connection, repo.conn_id ? el("span", { class: "muted", text: " · an Airflow connection of type git" }) : null]),
      el("div", { class: "cred-actions" }, [button("Test access", {
        small: true, icon: "shield", testid: "test-access", disabled: !CONFIG.canWrite,
        title: CONFIG.canWrite ? "git ls-remote of " + repo.ref + " with this connection" : "Testing access needs permission to edit DAGs",
        onclick: function (event) { testAccess(event.currentTarget); },
      })]),
    ]));
    if (detail.access) rows.push(accessResult(detail.access, "access-result"));
    if (repo.conn_id) rows.push(deployKeyRow());
    if (detail.rotation) rows.push(rotationBox(detail.rotation));
    container.replaceChildren(el("div", { class: "panel-body cred" }, rows));
  }

  function deployKeyRow() {
    const key = detail.deployKey;
    let value;
    let actions = null;
    if (!key) {
      value = el("span", { class: "muted", text: "Loading…" });
    } else if (key.public_key) {
      value = el("div", { testid: "deploy-key" }, [
        publicKeyField(key.public_key, "deploy-key-text"),
        el("p", { class: "hint", text: "Add it to the Git host as a read-only deploy key. dagops derives it from the connection's private key, which it never shows." }),
      ]);
      if (CONFIG.canWrite && !detail.rotation) {
        actions = button("Rotate key", { small: true, icon: "rollback", testid: "rotate-key", title: "Make a new key pair; switch once the new key works", onclick: function (event) { startRotation(event.currentTarget); } });
      }
    } else if (key.missing) {
      value = el("span", { class: "muted", testid: "no-deploy-key", text: /holds no SSH key/.test(key.missing)
        ? "None: a token connection (or a GitHub App), no SSH key to add."
        : key.missing });
    } else {
      value = el("span", { class: "error-text", text: key.error });
    }
    return el("div", { class: "cred-row" }, [
      el("div", { class: "cred-label", text: "Deploy key" }),
      el("div", { class: "cred-value" }, [value]),
      el("div", { class: "cred-actions" }, [actions]),
    ]);
  }

  /** A "Test access" verdict: data-kind is the API's kind (ok, authentication_failed, ...). */
  function accessResult(result, testid) {
    const kind = token(result.kind);
    const meta = [formatDuration(result.latency)];
    if (result.conn_id) meta.push("connection " + result.conn_id);
    if (result.ref) meta.push(result.ref);
    if (result.transport) meta.push(result.transport);
    return outcomeBox(result.ok, testid, kind, [
      el("strong", { text: ACCESS_TITLES[result.kind] || String(result.kind) }),
      result.ok && result.commit ? el("span", { class: "commit-sha", title: result.commit, text: result.commit.slice(0, 7) }) : null,
    ], [
      el("div", { class: "access-message", testid: "access-message", text: result.message || "" }),
      result.hint ? el("div", { class: "finding-hint", testid: "access-hint", text: result.hint }) : null,
      el("div", { class: "cell-sub", testid: "access-latency" }, [meta.join(" · "), result.checkedAt ? " · " : "", result.checkedAt ? timeAgo(result.checkedAt) : ""]),
    ]);
  }

  /** A verdict box (Test access, Register webhook): ok true / false, or null while it is being asked. */
  function outcomeBox(ok, testid, kind, title, rows) {
    const tone = ok === null ? "is-working" : ok ? "is-ok" : "is-failed";
    return el("div", { class: "access-result " + tone, testid: testid, role: "status", data: { kind: kind } }, [
      icon(ok === null ? "clock" : ok ? "check" : "cross"),
      el("div", { class: "access-text" }, [el("div", { class: "access-title" }, title)].concat(rows)),
    ]);
  }

  async function testAccess(target) {
    const name = detail.repo.name;
    await withBusy(target, async function () {
      try {
        const result = await api("POST", repoPath(name, "credentials/test"), {});
        detail.access = Object.assign({}, result, { checkedAt: new Date().toISOString() });
      } catch (err) {
        reportError(err);
      }
    });
    renderCredentials();
  }

  async function startRotation(target) {
    const name = detail.repo.name;
    await withBusy(target, async function () {
      try {
        const pending = await api("POST", repoPath(name, "credentials/rotate"), {});
        detail.rotation = { pending: pending, access: null, failure: null };
      } catch (err) {
        reportError(err);
      }
    });
    renderCredentials();
  }

  function rotationBox(rotation) {
    const pending = rotation.pending;
    return el("div", { class: "key-box rotation", testid: "rotation", data: { rotationId: pending.rotation_id } }, [
      el("div", { class: "key-box-title" }, [icon("key"), "New key for " + pending.replaces + ": add it as a read-only deploy key" + (pending.host ? " at " + pending.host : "")]),
      el("p", { class: "hint", text: pending.instructions || "" }),
      publicKeyField(pending.public_key || "", "rotation-key"),
      el("p", { class: "hint", text: "Until the new key works, " + detail.repo.name + " keeps using " + pending.replaces +
        ". Once it works, it switches to " + pending.conn_id + " and the old connection is removed." }),
      rotation.failure ? el("div", { class: "form-error", role: "alert", text: rotation.failure }) : null,
      rotation.access ? accessResult(rotation.access, "rotation-access") : null,
      el("div", { class: "rotation-actions" }, [
        button("Cancel rotation", { small: true, testid: "rotate-abort", onclick: function (event) { abortRotation(event.currentTarget); } }),
        button("I added it", { small: true, variant: "btn-primary", testid: "rotate-confirm", onclick: function (event) { confirmRotation(event.currentTarget); } }),
      ]),
    ]);
  }

  async function confirmRotation(target) {
    const rotation = detail.rotation;
    const name = detail.repo.name;
    const label = target.lastChild;
    label.textContent = "Checking access (up to 20 s)…";
    await withBusy(target, async function () {
      try {
        const outcome = await api("POST", repoPath(name, "credentials/rotate/confirm"), { rotation_id: rotation.pending.rotation_id, wait: 20 });
        detail.rotation = null;
        detail.access = outcome.access ? Object.assign({}, outcome.access, { checkedAt: new Date().toISOString() }) : null;
        const removed = outcome.old_conn_removed ? " and the old connection " + outcome.old_conn_id + " was removed" : "";
        notify(name + " now uses " + outcome.conn_id + removed + ". Remove the old deploy key from the Git host." + (outcome.note ? " " + outcome.note : ""), "success");
      } catch (err) {
        if (err.status === 401) return sessionExpired();
        if (err.code === "access_failed" && err.details && err.details.access) {
          detail.rotation = Object.assign({}, rotation, {
            failure: "Access with the new key does not work yet, so nothing changed. Add the key to the Git host (or fix what the check below says), then try again.",
            access: Object.assign({}, err.details.access, { checkedAt: new Date().toISOString() }),
          });
        } else {
          reportError(err);
        }
      }
    });
    label.textContent = "I added it";
    signatures.delete($("section-credentials"));
    poller.refresh();
  }

  async function abortRotation(target) {
    const rotation = detail.rotation;
    await withBusy(target, async function () {
      try {
        await api("POST", repoPath(detail.repo.name, "credentials/rotate/confirm"), { rotation_id: rotation.pending.rotation_id, abort: true });
        detail.rotation = null;
        notify("Rotation cancelled: the new connection was deleted, " + detail.repo.name + " keeps its key.", "info");
      } catch (err) {
        reportError(err);
      }
    });
    renderCredentials();
  }

  /** The report of the release the user picked, else of the failed sync, else of the live release. */
  function reportReleaseId() {
    if (detail.userPickedRelease && detail.reportReleaseId) return detail.reportReleaseId;
    const repo = detail.repo;
    const last = repo.last_sync;
    if (repo.status === "failed" && last && last.release_id) return last.release_id;
    if (repo.live) return repo.live.release_id;
    return detail.releases.length ? detail.releases[0].id : null;
  }

  async function renderReport() {
    const container = $("section-report");
    const picker = $("report-release");
    const id = reportReleaseId();
    detail.reportReleaseId = id;
    if (changed(picker, [detail.releases, id])) {
      picker.replaceChildren.apply(picker, detail.releases.map(function (release) {
        return el("option", { value: String(release.id), text: "#" + release.id + " \u00b7 " + release.short_commit + " \u00b7 " + statusWord(release.status) });
      }));
      picker.value = String(id);
      picker.hidden = !detail.releases.length;
    }
    for (const row of document.querySelectorAll("[data-testid=release-row]")) {
      row.classList.toggle("is-selected", Number(row.dataset.releaseId) === id);
    }
    if (!id) {
      if (changed(container, "none")) container.replaceChildren(emptyRow("Nothing validated yet. Sync the repository to see its report."));
      return;
    }
    let release = detail.findings.get(id);
    if (!release) {
      try {
        release = await api("GET", "releases/" + encodeURIComponent(id));
        // A release waiting for its tests (dagops_test) still gets findings: fetch it again next time.
        if (release.status !== "testing") detail.findings.set(id, release);
      } catch (err) {
        if (err.status === 401) return sessionExpired();
        container.replaceChildren(el("div", { class: "inline-state is-error", role: "alert", text: err.message }));
        signatures.delete(container);
        return;
      }
    }
    if (changed(container, ["report", id])) container.replaceChildren(report(release));
  }

  const SEVERITY_RANK = { error: 0, warning: 1, info: 2 };

  function report(release) {
    const findings = release.findings || [];
    const validation = release.validation || {};
    const files = groupByFile(findings);
    const head = el("div", { class: "report-summary", testid: "report-summary", data: { releaseId: String(release.id) } }, [
      validation.passed === false ? statusBadge("failed", "report-status", "Did not pass") : statusBadge("success", "report-status", "Passed"),
      el("span", { text:
        plural(validation.errors || 0, "error") + ", " + plural(validation.warnings || 0, "warning") + ", " +
        plural(validation.infos || 0, "note") + (files.length ? " in " + plural(files.length, "file") : "") }),
      el("span", { class: "muted" }, [" \u00b7 release #" + release.id + " ", el("span", { class: "commit-sha", text: release.short_commit })]),
    ]);
    if (!findings.length) {
      return el("div", { class: "panel-body" }, [head, el("p", { class: "muted", text: "No findings: every check passed cleanly." })]);
    }
    return el("div", { class: "panel-body" }, [head].concat(files.map(fileGroup)));
  }

  function groupByFile(findings) {
    const groups = new Map();
    for (const finding of findings) {
      const file = finding.file || "(repository)";
      if (!groups.has(file)) groups.set(file, []);
      groups.get(file).push(finding);
    }
    return Array.from(groups.entries()).sort(function (a, b) { return a[0].localeCompare(b[0]); }).map(function (entry) {
      entry[1].sort(function (a, b) {
        return (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3) || (a.line || 0) - (b.line || 0);
      });
      return { file: entry[0], findings: entry[1] };
    });
  }

  function fileGroup(group) {
    const errors = group.findings.filter(function (f) { return f.severity === "error"; }).length;
    return el("div", { class: "file-group", testid: "finding-file", data: { file: group.file } }, [
      el("div", { class: "file-group-header" }, [
        el("span", { text: group.file }),
        el("span", { class: errors ? "error-text" : "muted", text: errors ? plural(errors, "error") : plural(group.findings.length, "finding") }),
      ]),
    ].concat(group.findings.map(findingRow)));
  }

  function findingRow(finding) {
    const severity = token(finding.severity);
    return el("div", { class: "finding", testid: "finding", data: { severity: severity, rule: finding.rule || "" } }, [
      el("span", { class: "severity status-" + severity, text: finding.severity }),
      el("span", { class: "finding-line", text: finding.line ? "line " + finding.line : "—" }),
      el("div", { class: "finding-message" }, [finding.message || "", finding.rule ? el("span", { class: "finding-rule", text: finding.rule }) : null]),
      finding.hint ? el("div", { class: "finding-hint", text: finding.hint }) : null,
    ]);
  }

  // ---- check report page --------------------------------------------------------------------------

  const CHECK_WORDS = { success: "Passed", failure: "Failed", error: "Error", queued: "Queued", running: "Running" };
  const PROVIDERS = { github: "GitHub", gitlab: "GitLab", gitea: "Gitea", bitbucket: "Bitbucket" };

  async function loadCheck() {
    let check;
    try {
      check = await api("GET", "checks/" + encodeURIComponent(CONFIG.checkId));
    } catch (err) {
      if (err.status === 404) {
        renderCheckMissing(err);
        poller.stop();
        return false;
      }
      throw err;
    }
    renderCheck(check);
    return check.status === "queued" || check.status === "running";
  }

  function renderCheckMissing(err) {
    const body = $("check-body");
    body.setAttribute("aria-busy", "false");
    body.replaceChildren(stateBox({
      testid: "not-found", icon: "search", title: "Check not found", text: err.message,
      action: el("a", { class: "btn", href: CONFIG.listUrl, text: "Back to DAG Repositories" }),
    }));
  }

  function pullLabel(check) {
    return (check.provider === "gitlab" ? "Merge request !" : "Pull request #") + check.number;
  }

  function renderCheck(check) {
    const body = $("check-body");
    if (!changed(body, check)) return;
    body.setAttribute("aria-busy", "false");
    document.title = pullLabel(check) + " · " + check.repository + " · DAG Repositories";
    const crumb = $("check-crumb-repo");
    crumb.replaceChildren(el("a", { href: detailUrl(check.repository), text: check.repository }));
    crumb.hidden = false;
    $("check-crumb-sep").hidden = false;
    $("check-title").textContent = pullLabel(check) + " · " + check.repository;
    $("check-status").replaceChildren(statusBadge(check.status, "check-status", CHECK_WORDS[check.status]));
    $("check-subtitle").replaceChildren(
      el("span", { class: "muted", text: "Check #" + check.id + " of " }),
      el("span", { class: "commit-sha", testid: "head-sha", title: check.head_sha, text: String(check.head_sha || "").slice(0, 12) }),
      el("span", { class: "muted", text: (check.ref ? " (" + check.ref + ")" : "") + " · " + (PROVIDERS[check.provider] || check.provider || "") }),
    );
    const links = check.links || {};
    const actions = [el("a", { class: "btn", href: detailUrl(check.repository), testid: "check-repository" }, [icon("folder"), "Repository"])];
    if (airflowHref(links.airflow_run)) {
      actions.push(el("a", { class: "btn", href: airflowHref(links.airflow_run), target: "_top", testid: "check-airflow-run" }, [icon("external"), "Airflow run"]));
    }
    $("check-actions").replaceChildren.apply($("check-actions"), actions);
    body.replaceChildren(checkOverview(check), checkFindings(check));
  }

  function checkOverview(check) {
    const summary = check.summary || {};
    const item = function (label, value, wide) {
      return el("div", { class: wide ? "wide" : undefined }, [el("dt", { text: label }), el("dd", {}, value)]);
    };
    const counts = check.summary
      ? el("span", { testid: "check-summary" }, [
        el("strong", { class: summary.errors ? "error-text" : "", text: plural(summary.errors || 0, "error") }),
        ", " + plural(summary.warnings || 0, "warning") + ", " + plural(summary.infos || 0, "note") +
          (summary.files_with_errors ? " · errors in " + plural(summary.files_with_errors, "file") : "") +
          (summary.dags ? " · " + plural(summary.dags.length, "DAG") + " found" : ""),
      ])
      : el("span", { class: "muted", testid: "check-summary", text: check.status === "error" ? "No result" : "Not validated yet" });
    let alert = null;
    if (check.status === "error") {
      alert = el("div", { class: "alert", role: "alert" }, [el("div", { class: "alert-text" }, [
        el("span", { class: "alert-title", text: "The check could not run" }),
        el("span", { class: "alert-message", testid: "check-error", text: String(check.error || "unknown error").split("\n")[0] }),
        String(check.error || "").includes("\n") ? el("details", { class: "more" }, [el("summary", { text: "Full error" }), el("pre", { class: "trace", text: check.error })]) : null,
      ])]);
    } else if (check.status === "queued" || check.status === "running") {
      alert = el("p", { class: "card-note" }, [
        check.status === "running" ? "Validating the pull request head in Airflow · " : "Queued in Airflow · ",
        airflowLink((check.links || {}).airflow_run, "View run", "check-run"),
      ]);
    }
    const reported = check.report_error
      ? el("span", { class: "error-text", text: "Not reported: " + check.report_error })
      : el("span", { text: check.reported ? "Sent to " + (PROVIDERS[check.provider] || "the Git host") : "Not sent (yet)" });
    return el("section", { class: "panel", "aria-label": "Overview" }, [el("div", { class: "panel-body" }, [
      alert ? el("div", { class: "overview-alert" }, [alert]) : null,
      el("dl", { class: "overview" }, [
        check.status === "error" ? null : item("Result", [el("span", { testid: "check-description", text: check.description || CHECK_WORDS[check.status] || check.status })], true),
        item("Findings", [counts], true),
        item("Repository", [el("a", { href: detailUrl(check.repository), text: check.repository })]),
        item(check.provider === "gitlab" ? "Merge request" : "Pull request", [el("span", { testid: "check-number", text: (check.provider === "gitlab" ? "!" : "#") + check.number })]),
        item("Started", [check.created_at ? timeAgo(check.created_at) : "\u2014"]),
        item("Finished", [check.finished_at ? timeAgo(check.finished_at) : el("span", { class: "muted", text: "not yet" })]),
        item("Commit status", [reported]),
        item("Head commit", [el("span", { class: "commit-sha", title: check.head_sha, text: check.head_sha || "" })], true),
      ]),
    ])]);
  }

  function checkFindings(check) {
    const findings = check.findings || [];
    const files = groupByFile(findings);
    let content;
    if (check.status === "queued" || check.status === "running") content = emptyRow("The findings appear here when the check ends.");
    else if (!findings.length) content = emptyRow(check.status === "success" ? "No findings: every check passed cleanly." : "No findings.");
    else content = el("div", { class: "panel-body" }, files.map(fileGroup));
    return el("section", { class: "panel", "aria-labelledby": "title-findings" }, [
      el("header", { class: "panel-header" }, [el("h2", { id: "title-findings" }, ["Findings", findings.length ? el("span", { class: "count", text: String(findings.length) }) : null])]),
      el("div", { class: "panel-body flush", testid: "check-findings" }, [content]),
    ]);
  }

  // ---- start ---------------------------------------------------------------------------------------

  function start() {
    initDialogs();
    // The buttons were in the HTML before this script bound them: they take clicks from now on (dagops.css).
    document.documentElement.classList.remove("dagops-starting");
    if (CONFIG.page === "detail" || CONFIG.canWrite) {
      // The form's generated fields (and the detail page's other options) come from the API's description.
      loadOptionSchemas().then(function () {
        if (CONFIG.page === "detail" && detail.repo) renderOverview(detail.repo);
      }, function () { /* the form says so when it opens */ });
    }
    document.addEventListener("click", followLinksFromTop);
    showFlash();
    if (CONFIG.page === "detail") {
      poller.start(loadDetail, loadErrorHandler($("repo-body"), "Could not load this repository"));
    } else if (CONFIG.page === "check") {
      poller.start(loadCheck, loadErrorHandler($("check-body"), "Could not load this check"));
    } else {
      poller.start(loadList, loadErrorHandler($("repo-list"), "Could not load the repositories"));
    }
    setInterval(tickTimes, SLOW_POLL_MS);
  }

  start();
})();
