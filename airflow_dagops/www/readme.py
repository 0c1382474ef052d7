"""A marketplace package's README as safe HTML, rendered on the server for the package page.

A README comes from a catalog, i.e. from whoever published the package: it is untrusted. markdown-it-py
renders CommonMark with raw HTML turned off, so `<script>` or `<img onerror=...>` in the Markdown come out as
escaped text, and links or images are kept only for http(s)/mailto or relative targets (no `javascript:`,
`data:`, `vbscript:`, `file:`). The page's Content-Security-Policy (no inline script, images only from our
origin) is the second line of defence.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markupsafe import Markup

from airflow_dagops.errors import DagOpsError
from airflow_dagops.marketplace import listing

SAFE_SCHEME = re.compile(r"^(https?|mailto):", re.IGNORECASE)
ANY_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
MAX_README = 200_000  # characters; a longer README is cut, not refused (it is only shown)


def _link_is_safe(url: str) -> bool:
    # Browsers ignore control characters and spaces in a scheme ("java\tscript:"); so do we, before judging it.
    compact = re.sub(r"[\x00-\x20]", "", url)
    if compact.startswith("//"):  # protocol-relative: another host, but an http(s) one
        return True
    return bool(SAFE_SCHEME.match(compact)) or not ANY_SCHEME.match(compact)


class _SafeLinksMarkdown(MarkdownIt):
    """markdown-it, judging every link with `_link_is_safe`."""

    def validateLink(self, url: str) -> bool:  # noqa: N802 - markdown-it's name
        return _link_is_safe(url)


def _renderer() -> MarkdownIt:
    md = _SafeLinksMarkdown("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")

    def link_open(renderer, tokens, idx, options, env):
        # A README's links leave Airflow: do not send it the page's address or a window handle.
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


_MARKDOWN = _renderer()


def render_readme(text: str | None) -> Markup:
    """HTML safe to embed as is (Markup), or an empty Markup when there is no README."""
    if not text or not text.strip():
        return Markup("")
    return Markup(_MARKDOWN.render(text[:MAX_README]))  # noqa: S704 - markdown-it escapes all raw HTML (html=False)


def package_readme(name: str) -> Markup:
    """The README of a catalog package, rendered; empty when the package is unknown (the page then shows the
    API's "not found" answer, the one source of truth for what exists)."""
    try:
        info = listing.package_info(name)
    except DagOpsError:
        return Markup("")
    return render_readme(info.get("readme"))
