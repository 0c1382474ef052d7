"""A detect-secrets line filter: the lines none of the enabled plugins could report are skipped before they run.

detect-secrets runs each of its plugins (26 enabled here) on every line of every file, through its own
dependency-injection layer: on a 500-file DAG repository that loop was most of full validation's time (benchmark
(e)), though most lines of DAG code hold no string and no secret-sounding name. Its line filters run before the
plugins and end a line's scan early; this one says "nothing here" when no plugin's own trigger pattern is in the
line:
- a regex plugin (`RegexBasedDetector`) reports only matches of its `denylist` patterns;
- a high-entropy plugin only the quoted strings its `regex` matches (a file scan never asks for its eager,
  unquoted search), and base64's and hex's only those long enough to pass their entropy limits;
- the keyword plugin only lines holding one of its `DENYLIST` words (each of its patterns contains one,
  case-insensitively).
So the screen hides nothing a plugin would report: it only saves the calls that would have found nothing. A plugin
of any other kind (a newer detect-secrets) turns the screen off rather than guess. Registered by its import path
in the scan's settings (security.py), as detect-secrets' own filters are, and tried first: on the 500 files of
benchmark (e) the secret scan takes 0.56 s of CPU instead of 2.95 s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from detect_secrets.core.scan import get_filters
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.high_entropy_strings import (
    Base64HighEntropyString,
    HexHighEntropyString,
    HighEntropyStringsPlugin,
)
from detect_secrets.plugins.keyword import DENYLIST as KEYWORDS
from detect_secrets.plugins.keyword import KeywordDetector
from detect_secrets.settings import Settings, get_plugins

FILTER_PATH = f"{__name__}.holds_nothing_to_find"

# The screen built for the plugin list detect-secrets has now (its `get_plugins()` is cached until its settings
# change, so the list's identity says when to build again).
_built_for: list | None = None
_screen: tuple[re.Pattern[str], ...] | None = None
# A backreference (`\1`) names a group by its number, which a union would change: such patterns are searched apart.
_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")


def holds_nothing_to_find(line: str) -> bool:
    """detect-secrets' line filter: True skips the line. Its parameter's name is how detect-secrets calls it."""
    screen = _current_screen()
    return screen is not None and not any(pattern.search(line) for pattern in screen)


def run_first(configured: Settings) -> None:
    """Ask detect-secrets to try this filter before its own line filters (the allowlist pragma, indirect
    references: a few regexes each), which a screened-out line then skips too. A line is skipped when any filter
    says so, so their order changes what is found in no way, only what it costs."""
    if FILTER_PATH in configured.filters:
        configured.filters = {FILTER_PATH: configured.filters.pop(FILTER_PATH), **configured.filters}
        get_filters.cache_clear()


def _current_screen() -> tuple[re.Pattern[str], ...] | None:
    global _built_for, _screen
    plugins = get_plugins()
    if plugins is not _built_for:
        _screen, _built_for = screen_for(plugins), plugins
    return _screen


def screen_for(plugins: Iterable[Any]) -> tuple[re.Pattern[str], ...] | None:
    """Patterns, one of which matches wherever any of `plugins` could report (most joined in one union); None when
    one of the plugins is of a kind the screen does not know."""
    patterns: list[re.Pattern[str]] = []
    for plugin in plugins:
        triggers = _triggers(plugin)
        if triggers is None:
            return None
        patterns += triggers
    if not patterns:
        return None
    apart = [p for p in patterns if _BACKREFERENCE.search(p.pattern) or p.flags & ~_UNIONABLE_FLAGS]
    joined = [p for p in patterns if p not in apart]
    union = [re.compile("|".join(_scoped(p) for p in joined))] if joined else []
    return tuple(union + apart)


def _triggers(plugin: Any) -> list[re.Pattern[str]] | None:
    if isinstance(plugin, KeywordDetector):
        return [re.compile("|".join(KEYWORDS), re.IGNORECASE)]
    if type(plugin) in (Base64HighEntropyString, HexHighEntropyString):
        return [_long_enough_strings(plugin)]
    if isinstance(plugin, HighEntropyStringsPlugin):
        return [plugin.regex]
    if isinstance(plugin, RegexBasedDetector):
        return list(plugin.denylist)
    return None


def _long_enough_strings(plugin: HighEntropyStringsPlugin) -> re.Pattern[str]:
    """The plugin's own pattern (a quoted run of its characters), but only runs long enough to pass its entropy
    limit: the Shannon entropy of n characters is at most log2(n) (every one different; the hex plugin only lowers
    it, for digits), so a string shorter than 2**limit characters never passes `entropy > limit` (base64's 4.5: 22
    characters or fewer; hex's 3.0: 7 or fewer). A string of exactly 2**limit is kept: rounding could tip it over.
    Without the bound, every quoted word would pass the screen."""
    shortest = math.floor(2**plugin.entropy_limit)
    return re.compile("(['\"])([" + re.escape(plugin.charset) + "]{" + str(shortest) + ",})(\\1)")


def _scoped(pattern: re.Pattern[str]) -> str:
    """The pattern as one alternative of the union, its own flags scoped to it (`(?i:...)`). A verbose pattern's
    last comment would swallow the closing parenthesis: a newline ends it first."""
    flags = "".join(letter for flag, letter in _FLAG_LETTERS if pattern.flags & flag)
    end = "\n)" if pattern.flags & re.VERBOSE else ")"
    return f"(?{flags}:{pattern.pattern}{end}" if flags else f"(?:{pattern.pattern})"


# The flags a union can scope to one alternative; a pattern with any other (re.ASCII, say) is searched apart.
_FLAG_LETTERS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.VERBOSE, "x"))
_UNIONABLE_FLAGS = re.UNICODE | re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE
