"""Command-line values that need no converting skip typer's pydantic step, so a read does not import pydantic.

typer (0.2x) converts each parameter's value through a pydantic `TypeAdapter` it builds on first use, and it
builds one even for values that come out unchanged: None (an option not given, and `--help` on every command), a
string for a `str` parameter, a parameter's own default. Importing pydantic and building the adapters is about a
fifth of a `dagops repos list` (BENCHMARKS.md (j)). For exactly those values the parameter converts with typer's
own pass-through converter instead, which returns them as they are, as the adapter would; every other value (a
number typed on the command line, a path, a choice, a value with a parser) goes through typer unchanged.

If typer's internals change shape, `install` does nothing: reads get slower, never wrong
(tests/cli/test_fast_reads.py notices pydantic coming back).
"""

from __future__ import annotations

from typing import Any

from typer import core as typer_core

_PARAMETER = getattr(typer_core, "_TyperParameter", None)


def install() -> None:
    """Wrap typer's `process_value` (once) so values that need no converting skip the pydantic adapter."""
    try:
        from typer._coercion import PassThroughRuntimeParam
    except ImportError:  # another typer: leave it alone
        return
    original = getattr(_PARAMETER, "process_value", None)
    if original is None or getattr(original, "dagops_fast", False):
        return

    def process_value(self, ctx, value: Any) -> Any:
        if getattr(self, "_runtime_param", False) is not None or not _unchanged_by_conversion(self, value):
            return original(self, ctx, value)
        descriptor = self.type_descriptor
        # Typer's own steps run as ever (required, callbacks, multiple values), with the pass-through converter
        # for this one value; the next value of this parameter gets typer's adapter again if it needs one.
        self._runtime_param = PassThroughRuntimeParam(
            parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
        )
        try:
            return original(self, ctx, value)
        finally:
            self._runtime_param = None

    process_value.dagops_fast = True  # type: ignore[attr-defined]
    _PARAMETER.process_value = process_value  # type: ignore[union-attr]


def _unchanged_by_conversion(parameter, value: Any) -> bool:
    """Would typer's adapter return `value` as it is? None always (no adapter sees it); a string for a plain `str`
    parameter; the parameter's own default, of its own type (a number's range is checked on typed values only)."""
    if value is None:
        return True
    descriptor = getattr(parameter, "type_descriptor", None)
    if descriptor is None or descriptor.parameter_info.parser is not None or descriptor.is_file:
        return False
    annotation = descriptor.annotation
    if annotation is str:
        return type(value) is str
    return annotation in (int, float, bool) and type(value) is annotation and value == parameter.default
