/* The repository page's sections beyond the basics (airflow-dagops): promotion stages, release tests, files
 * left out of Airflow, proposals and the event feed. What the CLI shows with `dagops promotion`, `dagops tests`,
 * `dagops repos show`, `dagops propose` and `dagops events`, read from the same REST API.
 *
 * Loaded before dagops.js, which owns the page (its polling, layout and helpers) and calls
 * `window.DagOpsRepositorySections(kit)` once with those helpers. Data reaches the page only through text
 * nodes (`kit.el`), never as HTML.
 */
(function () {
  "use strict";

  const EVENT_LIMIT = 30;

  window.DagOpsRepositorySections = function (kit) {
    const { el, api, repoPath, button, statusBadge, timeAgo, table, emptyRow, plural, formatDuration } = kit;

    /** The panels (kit.panel), for dagops.js to place: promotion near the top, the others below the releases. */
    function panels() {
      return {
        top: [kit.panel("promotion", "Promotion")],
        bottom: [
          el("div", { class: "detail-grid" }, [kit.panel("tests", "Release tests"), kit.panel("hidden", "Files left out of Airflow")]),
          el("div", { class: "detail-grid" }, [kit.panel("proposals", "Proposals"), kit.panel("events", "Events")]),
        ],
      };
    }

    /** Fetch what the sections need and render them; a failing call shows its error in its own section. */
    async function load(repo, releases) {
      const results = await Promise.allSettled([
        api("GET", repoPath(repo.name, "promotion")),
        api("GET", repoPath(repo.name, "proposals")),
        api("GET", repoPath(repo.name, "events?limit=" + EVENT_LIMIT)),
      ]);
      kit.renderSection("promotion", withTotal(results[0], null), function (data) { return renderPromotion(repo, data); });
      kit.renderSection("tests", settled(testedRelease(repo, releases)), renderTests);
      kit.renderSection("hidden", settled(hiddenFiles(repo, releases)), renderHidden);
      kit.renderSection("proposals", results[1], renderProposals);
      kit.renderSection("events", withTotal(results[2], (results[2].value || {}).total), function (data) { return renderEvents(data.events); });
    }

    function settled(value) {
      return { status: "fulfilled", value: value };
    }

    function withTotal(result, total) {
      if (result.status !== "fulfilled") return result;
      return settled(Object.assign({}, result.value, { total: total }));
    }

    // ---- promotion --------------------------------------------------------------------------------

    function renderPromotion(repo, data) {
      const stages = data.stages || [];
      if (!stages.length) {
        return emptyRow("No promotion stages: a new release goes straight to live. Set stages in Settings (e.g. staging, prod).");
      }
      const current = data.current;
      const flow = el("ol", { class: "stage-flow", testid: "stage-flow" }, stages.map(function (stage, i) {
        const here = current && current.stage === stage.stage;
        return el("li", { class: "stage" + (here ? " is-current" : ""), testid: "stage", data: { stage: stage.stage, releaseId: stage.release_id ? String(stage.release_id) : "" } }, [
          el("div", { class: "stage-name" }, [el("span", { text: stage.stage }), i === stages.length - 1 ? el("span", { class: "stage-prod", title: "The last stage is the live namespace", text: "Live" }) : null]),
          el("div", { class: "cell-sub mono", title: "Namespace in the dags folder", text: stage.namespace }),
          el("div", { class: "stage-release" }, stage.release_id
            ? [el("span", { class: "cell-main", text: "#" + stage.release_id + " " }), el("span", { class: "commit-sha", title: stage.commit || "", text: (stage.commit || "").slice(0, 7) })]
            : [el("span", { class: "muted", text: "Nothing live" })]),
        ]);
      }));
      const parts = [flow];
      if (current) parts.push(currentPromotion(repo, current));
      else parts.push(el("p", { class: "muted section-note", testid: "promotion-idle", text: "No release is waiting in a stage." }));
      if ((data.history || []).length) parts.push(promotionHistory(data.history));
      return el("div", { class: "panel-body" }, parts);
    }

    function currentPromotion(repo, current) {
      const soak = current.soak_runs ? current.successes + " of " + plural(current.soak_runs, "successful run") : "Promoted by hand only";
      const blocked = current.status === "blocked";
      const actions = kit.canWrite
        ? button(blocked ? "Promote anyway" : "Promote now", { small: true, testid: "promote", onclick: function (event) { promote(repo, blocked, event.currentTarget); } })
        : null;
      return el("div", { class: "promotion-current", testid: "promotion-current", data: { status: current.status } }, [
        el("div", { class: "promotion-head" }, [
          statusBadge(current.status, "promotion-status"),
          el("span", { class: "cell-main", text: "Release #" + current.release_id + " in " + current.stage }),
          el("span", { class: "muted", text: " \u00b7 " + soak }),
        ]),
        el("p", { class: "section-note", testid: "promotion-message", text: current.message || "" }),
        actions,
      ]);
    }

    function promotionHistory(history) {
      return el("details", { class: "more section-more" }, [
        el("summary", { text: "History (" + history.length + ")" }),
        table(["Release", "Stage", "Status", "Updated"], history.map(function (item) {
          return el("tr", { testid: "promotion-row" }, [
            el("td", { class: "nowrap" }, [el("span", { class: "cell-main", text: "#" + item.release_id + " " }), el("span", { class: "commit-sha", text: (item.commit || "").slice(0, 7) })]),
            el("td", { text: item.stage }),
            el("td", {}, [statusBadge(item.status, "promotion-row-status")]),
            el("td", { class: "nowrap" }, [timeAgo(item.updated_at)]),
          ]);
        })),
      ]);
    }

    async function promote(repo, force, target) {
      if (force) {
        const answer = await kit.confirmDialog({
          title: "Promote anyway?",
          message: "A DAG run failed in this stage. Promoting moves the release one stage on regardless.",
          ok: "Promote anyway",
          danger: true,
        });
        if (!answer) return;
      }
      await kit.withBusy(target, async function () {
        try {
          const record = await api("POST", repoPath(repo.name, "promote"), { force: force });
          kit.notify(record.message || "Promoted.", "success");
        } catch (err) {
          kit.reportError(err);
        }
      });
      kit.refresh();
    }

    // ---- release tests ----------------------------------------------------------------------------

    /** The live release's results, else the newest release that has some (what `dagops tests NAME` shows). */
    function testedRelease(repo, releases) {
      const live = repo.live ? releases.find(function (r) { return r.id === repo.live.release_id; }) : null;
      const release = live && live.tests ? live : releases.find(function (r) { return r.tests; });
      return { release: release || null, total: release ? (release.tests.modules || []).length : null };
    }

    function renderTests(data) {
      const release = data.release;
      if (!release) {
        return emptyRow("No test results yet. A repository whose .dagops.yaml says tests: required (or optional) runs its tests/ with every release.");
      }
      const tests = release.tests;
      const head = el("div", { class: "report-summary", testid: "tests-summary", data: { releaseId: String(release.id), outcome: tests.outcome } }, [
        statusBadge(tests.outcome === "passed" ? "passed" : "failed", "tests-outcome"),
        el("span", { text: (tests.passed || 0) + " passed, " + (tests.failed || 0) + " failed, " + plural(tests.errors || 0, "error") }),
        el("span", { class: "muted" }, ["\u00b7 " + formatDuration(tests.seconds) + " \u00b7 tests: " + (tests.mode || "required") + " \u00b7 release #" + release.id + " ", el("span", { class: "commit-sha", text: release.short_commit })]),
      ]);
      const modules = table(["Module", "Outcome", "Passed", "Failed", "Errors", "Time"], (tests.modules || []).map(function (module) {
        return el("tr", { testid: "test-module", data: { module: module.module, outcome: module.outcome } }, [
          el("td", { class: "mono", text: module.module }),
          el("td", {}, [statusBadge(module.outcome, "test-module-outcome")]),
          el("td", { text: String(module.passed || 0) }),
          el("td", { text: String(module.failed || 0) }),
          el("td", { text: String(module.errors || 0) }),
          el("td", { class: "nowrap", text: formatDuration(module.seconds) }),
        ]);
      }));
      const failures = (tests.failures || []).map(function (failure) {
        return el("div", { class: "test-failure", testid: "test-failure", data: { kind: failure.kind } }, [
          el("div", { class: "test-failure-head" }, [
            el("span", { class: "severity status-error", text: failure.kind === "error" ? "Error" : "Failed" }),
            el("span", { class: "mono wrap-anywhere", text: failure.test }),
          ]),
          el("pre", { class: "trace test-failure-message", text: failure.message || "no message" }),
        ]);
      });
      return el("div", {}, [el("div", { class: "panel-body" }, [head]), modules].concat(failures.length ? [el("div", { class: "panel-body" }, failures)] : []));
    }

    // ---- files left out -----------------------------------------------------------------------------

    /** Files of the live release Airflow does not see: another repository owns their dag_ids (by priority). */
    function hiddenFiles(repo, releases) {
      const live = repo.live ? releases.find(function (r) { return r.id === repo.live.release_id; }) : null;
      const files = live ? Object.entries(live.hidden_files || {}) : [];
      return { release: live || null, files: files, total: live ? files.length : null };
    }

    function renderHidden(data) {
      if (!data.release) return emptyRow("Nothing is live yet.");
      if (!data.files.length) return emptyRow("None: every file of the live release is in Airflow.");
      return table(["File", "Why"], data.files.sort(function (a, b) { return a[0].localeCompare(b[0]); }).map(function (entry) {
        return el("tr", { testid: "hidden-file", data: { file: entry[0] } }, [
          el("td", { class: "mono", text: entry[0] }),
          el("td", { class: "wrap-anywhere", testid: "hidden-why", text: entry[1] }),
        ]);
      }));
    }

    // ---- proposals ------------------------------------------------------------------------------------

    function renderProposals(page) {
      if (!page.items.length) {
        return emptyRow("No proposals yet. `dagops propose` (or POST /repositories/{name}/proposals) validates files and pushes them as a branch with a pull request.");
      }
      return table(["Proposal", "Status", "Branch"], page.items.map(function (proposal) {
        const problem = proposal.error || proposal.pr_error;
        return el("tr", { testid: "proposal-row", data: { proposalId: String(proposal.proposal_id), status: proposal.status } }, [
          el("td", {}, [
            el("div", { class: "cell-main wrap-anywhere", text: "#" + proposal.proposal_id + " " + proposal.title }),
            el("div", { class: "cell-sub" }, [plural((proposal.files || []).length, "file"), " \u00b7 by " + (proposal.actor || "unknown") + " \u00b7 ", timeAgo(proposal.created_at)]),
            problem ? el("div", { class: "cell-sub error-text", text: problem }) : null,
          ]),
          el("td", {}, [statusBadge(proposal.status, "proposal-status")]),
          el("td", {}, [
            proposal.branch ? el("span", { class: "chip", title: proposal.branch, text: proposal.branch }) : el("span", { class: "muted", text: "\u2014" }),
            proposal.pr_url && /^https?:\/\//i.test(proposal.pr_url)
              ? el("div", { class: "cell-sub" }, [el("a", { href: proposal.pr_url, target: "_blank", rel: "noopener noreferrer", testid: "proposal-pr", text: "Pull request \u2197" })])
              : null,
          ]),
        ]);
      }));
    }

    // ---- events -----------------------------------------------------------------------------------------

    function renderEvents(events) {
      if (!events.length) return emptyRow("Nothing has happened yet.");
      return el("ol", { class: "event-feed", testid: "event-feed" }, events.map(function (event) {
        return el("li", { class: "event", testid: "event", data: { kind: event.kind, outcome: event.outcome, eventId: String(event.id) } }, [
          el("div", { class: "event-head" }, [
            el("span", { class: "event-kind", text: kindWord(event.kind) }),
            statusBadge(event.outcome, "event-outcome"),
            el("span", { class: "spacer" }),
            timeAgo(event.created_at),
          ]),
          el("div", { class: "event-summary wrap-anywhere", testid: "event-summary", text: event.summary }),
          el("div", { class: "cell-sub", text: "by " + event.actor }),
        ]);
      }));
    }

    function kindWord(kind) {
      return { dag_run: "DAG run" }[kind] || String(kind).charAt(0).toUpperCase() + String(kind).slice(1);
    }

    return { panels: panels, load: load };
  };
})();
