/* Helpers shared by the dagops pages (DAG Repositories, Marketplace). Plain JavaScript, no build step.
 * Loaded before each page's own script; exposes one object, window.DagOpsCommon.
 * Data only ever reaches a page through textContent / text nodes (see `el`), never as HTML.
 */
(function () {
  "use strict";

  function meta(name) {
    const node = document.querySelector('meta[name="' + name + '"]');
    return node ? node.getAttribute("content") || "" : "";
  }

  class ApiError extends Error {
    constructor(message, status, code, details) {
      super(message);
      this.name = "ApiError";
      this.status = status;
      this.code = code;
      this.details = details || {};
    }
  }

  function $(id) {
    return document.getElementById(id);
  }

  /** Build an element. Props: class, text, testid, data{}, on<event>; anything else is an attribute.
   *  Children: nodes, or strings (added as text nodes, so never parsed as HTML). */
  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "testid") node.dataset.testid = value;
      else if (key === "data") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of [].concat(children === undefined ? [] : children)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  /** A CSS class fragment from API data (a status word): letters, digits, - and _ only. */
  function token(value) {
    return String(value || "unknown").replace(/[^a-z0-9_-]/gi, "");
  }

  function plural(count, word) {
    return count + " " + word + (count === 1 ? "" : "s");
  }

  /** Disable a button and show a spinner on it while `work` runs. */
  async function withBusy(target, work) {
    if (target) {
      target.disabled = true;
      target.classList.add("is-busy");
    }
    try {
      return await work();
    } finally {
      if (target) {
        target.disabled = false;
        target.classList.remove("is-busy");
      }
    }
  }

  /** Open a URL in the top window (or a new tab). Airflow shows this page in an iframe sandboxed without
   *  allow-top-navigation and allow-popups, so target=_top/_blank links and top.location do nothing there.
   *  The frame is same-origin, though: an anchor in the top document, which is not sandboxed, can be followed. */
  function openInTop(href, newTab) {
    let topDocument = null;
    try {
      topDocument = window.top !== window ? window.top.document : null;
    } catch (err) {
      topDocument = null; // a cross-origin parent: leave it to the browser
    }
    if (!topDocument) {
      if (newTab) window.open(href, "_blank", "noopener");
      else window.location.assign(href);
      return;
    }
    const proxy = topDocument.createElement("a");
    proxy.href = href;
    proxy.target = newTab ? "_blank" : "_self";
    proxy.rel = "noopener noreferrer";
    proxy.hidden = true;
    topDocument.body.append(proxy);
    proxy.click();
    proxy.remove();
  }

  /** A REST client for the API at `base`: answers the parsed JSON, or throws an ApiError carrying the
   *  API's message. Every call sends the X-DagOps-CSRF header (required on state-changing calls, harmless
   *  on reads: it only ever goes to our own origin). */
  function apiClient(base, csrf) {
    return async function api(method, path, body) {
      const headers = { Accept: "application/json", "X-DagOps-CSRF": csrf };
      const init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
      if (body !== undefined) {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      let response;
      try {
        response = await fetch(base + "/" + path, init);
      } catch (err) {
        throw new ApiError("Cannot reach the Airflow API server. Check the connection and try again.", 0, "network");
      }
      const data = await response.json().catch(function () {
        return null;
      });
      if (!response.ok) {
        const error = (data && data.error) || {};
        const fallback = ("The API answered " + response.status + " " + response.statusText).trim();
        throw new ApiError(error.message || fallback, response.status, error.code || "http_error", error.details);
      }
      return data;
    };
  }

  window.DagOpsCommon = {
    meta: meta,
    ApiError: ApiError,
    apiClient: apiClient,
    $: $,
    el: el,
    token: token,
    plural: plural,
    withBusy: withBusy,
    openInTop: openInTop,
  };
})();
