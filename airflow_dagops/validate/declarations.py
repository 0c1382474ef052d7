"""Declarations: what a release says it needs, read from four places, as `DeclaredRequirement`s.

Declarations (all parsed with `packaging`, all kept as `DeclaredRequirement`s with their file and line, so a
per-namespace venv builder can later install exactly this list):
- PEP 723 inline script metadata in a DAG file: a `# /// script` ... `# ///` comment block whose TOML has a
  `dependencies` list (found with the PEP's reference regex);
- the docstring block DAG authors already write: a module docstring line `Dependencies:` followed by
  `- package==1.2.3` lines;
- `requirements.txt` at the release root (which is the repository's `subdir` when one is set): comments,
  line continuations, `-r other.txt` includes that stay inside the release, environment markers; pip options
  (`--index-url`, `-e`, ...) cannot be checked here and are reported as ignored (info);
- `pyproject.toml` `[project].dependencies` at the release root.

Every problem in a declaration is a finding with its file and line; nothing here checks the environment
(dependencies.py does).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from airflow_dagops.validate.files import resolves_inside
from airflow_dagops.validate.report import Finding

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the tomli backport; without it, TOML declarations are not read
    try:
        import tomli as tomllib
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]  # _load_toml checks `tomllib is None` before any use

log = logging.getLogger(__name__)

REQUIREMENTS_FILE = "requirements.txt"


PYPROJECT_FILE = "pyproject.toml"


# PEP 723's reference regular expression, verbatim.
PEP723_REGEX = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")


_PEP723_OPENING = re.compile(r"(?m)^# /// script$")


_DOCSTRING_HEADER = re.compile(r"^\s*dependencies:\s*$", re.IGNORECASE)


_DOCSTRING_ITEM = re.compile(r"^\s*[-*]\s+(?P<requirement>.+?)\s*$")


_INCLUDE_OPTION = re.compile(r"^(?:-r|--requirement)(?:\s*=\s*|\s+|(?=\S))(?P<path>\S+)$")


_COMMENT = re.compile(r"(^|\s+)#.*$")


_PER_REQUIREMENT_OPTION = re.compile(r"\s+--\S.*$")  # `pkg==1 --hash=sha256:...`: pip options after a requirement


_TOML_LINE = re.compile(r"at line (\d+)")


MAX_DECLARATION_FILE_BYTES = 1024 * 1024


MAX_INCLUDE_DEPTH = 10


@dataclass(frozen=True)
class DeclaredRequirement:
    """One requirement and where it was declared (`source`: pep723, docstring, requirements.txt, pyproject)."""

    requirement: Requirement
    file: str | None = None
    line: int | None = None
    source: str = ""

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    def location(self) -> str:
        if not self.file:
            return "a declaration"
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_dict(self) -> dict:
        return {"requirement": str(self.requirement), "file": self.file, "line": self.line, "source": self.source}

    @classmethod
    def from_dict(cls, data: Mapping) -> DeclaredRequirement:
        return cls(Requirement(data["requirement"]), data.get("file"), data.get("line"), data.get("source", ""))


def requirements_from_summary(summary: Mapping | None) -> list[DeclaredRequirement]:
    """The requirements a release's validation summary stored (entries that no longer parse are dropped)."""
    found = []
    for item in (summary or {}).get("requirements") or []:
        try:
            found.append(DeclaredRequirement.from_dict(item))
        except (InvalidRequirement, KeyError, TypeError):
            log.debug("dependencies: dropping an unreadable stored requirement %r", item)
    return found


@dataclass
class Declarations:
    requirements: list[DeclaredRequirement] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def read_declarations(root: Path, files: Iterable[str]) -> Declarations:
    """Every declaration in the release: DAG files' PEP 723 and docstring blocks, requirements.txt, pyproject.toml."""
    root = Path(root)
    real_root = os.path.realpath(root)  # once: each file is judged by where it resolves, against this
    result = Declarations()
    for relative in sorted(files):
        if relative.endswith(".py"):
            text = _read_text(root, relative, real_root)
            if text is not None:
                _merge(result, read_pep723(text, relative))
                _merge(result, read_docstring(text, relative))
    if (root / REQUIREMENTS_FILE).is_file():
        _merge(result, read_requirements_file(root, REQUIREMENTS_FILE))
    if (root / PYPROJECT_FILE).is_file():
        text = _read_text(root, PYPROJECT_FILE, real_root)
        if text is not None:
            _merge(result, read_pyproject(text, PYPROJECT_FILE))
    return result


def _merge(into: Declarations, part: Declarations) -> None:
    into.requirements += part.requirements
    into.findings += part.findings


def _read_text(root: Path, relative: str, real_root: str) -> str | None:
    """The file's text when it is a regular file inside the release, UTF-8 and not huge (other checks report those)."""
    path = os.path.join(root, relative)
    if not resolves_inside(path, real_root) or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as stream:
            if os.fstat(stream.fileno()).st_size > MAX_DECLARATION_FILE_BYTES:
                return None
            return stream.read()
    except (OSError, UnicodeDecodeError) as err:
        log.debug("dependencies: cannot read %s: %s", relative, err)
        return None


def _invalid(file: str, line: int | None, message: str, hint: str) -> Finding:
    return Finding(rule="dependency-invalid", severity="error", message=message, file=file, line=line, hint=hint)


def _parse_requirement(text: str, file: str, line: int | None, source: str, hint: str) -> Declarations:
    try:
        return Declarations(requirements=[DeclaredRequirement(Requirement(text), file, line, source)])
    except InvalidRequirement as err:
        return Declarations(
            findings=[_invalid(file, line, f"`{text}` is not a valid requirement: {_first_line(err)}", hint)]
        )


def _first_line(err: Exception) -> str:
    """packaging's messages add the input and a caret on more lines; a finding is one line."""
    return (str(err).splitlines() or [""])[0]


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


_PEP723_HINT = (
    'Write the block as PEP 723 describes: `# /// script`, then `# dependencies = ["pandas==2.2.3"]` '
    "(TOML, each line starting with `# `), then `# ///`."
)


def read_pep723(text: str, file: str) -> Declarations:
    """The `dependencies` of a `# /// script` block (PEP 723); a malformed block is a finding, never a crash."""
    if "# /// script" not in text:
        return Declarations()
    blocks = [m for m in PEP723_REGEX.finditer(text) if m.group("type") == "script"]
    opened = {m.start() for m in _PEP723_OPENING.finditer(text)}
    unclosed = sorted(opened - {m.start() for m in blocks})
    if unclosed:
        return Declarations(
            findings=[
                _invalid(file, _line_of(text, unclosed[0]), "a `# /// script` block is never closed", _PEP723_HINT)
            ]
        )
    if len(blocks) > 1:
        second = _line_of(text, blocks[1].start())
        return Declarations(findings=[_invalid(file, second, "more than one `# /// script` block", _PEP723_HINT)])
    if not blocks:
        return Declarations()
    return _read_pep723_block(blocks[0], text, file)


def _read_pep723_block(block: re.Match, text: str, file: str) -> Declarations:
    first = _line_of(text, block.start())  # the `# /// script` line
    lines = block.group("content").splitlines(keepends=True)
    content = "".join(line[2:] if line.startswith("# ") else line[1:] for line in lines)
    data, error = _load_toml(content, file, first)
    if error:
        return Declarations(findings=[error])
    dependencies = data.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        return Declarations(
            findings=[
                _invalid(
                    file, first, "`dependencies` in the `# /// script` block must be a list of strings", _PEP723_HINT
                )
            ]
        )
    result = Declarations()
    for dependency in dependencies:
        index = _index_of_quoted(lines, dependency)
        line = first if index is None else first + 1 + index
        _merge(result, _parse_requirement(dependency, file, line, "pep723", _PEP723_HINT))
    return result


def _load_toml(content: str, file: str, first_line: int) -> tuple[dict, Finding | None]:
    """(data, None) or ({}, a finding at the line TOML complained about). `first_line` is the line before line 1."""
    if tomllib is None:
        message = f"cannot read the TOML of {file} on this Python (install `tomli`)"
        return {}, Finding("dependency-invalid", "info", message, file=file, line=first_line or None)
    try:
        return tomllib.loads(content), None
    except tomllib.TOMLDecodeError as err:
        found = _TOML_LINE.search(str(err))
        line = first_line + int(found.group(1)) if found else first_line or None
        return {}, _invalid(file, line, f"not valid TOML: {err}", _PEP723_HINT if first_line else _PYPROJECT_HINT)


def _index_of_quoted(lines: list[str], value: str) -> int | None:
    """Index of the first line holding `value` as a TOML string, to point a finding at its own line."""
    for index, line in enumerate(lines):
        if f'"{value}"' in line or f"'{value}'" in line:
            return index
    return None


_DOCSTRING_HINT = (
    "List one requirement per line under `Dependencies:` in the module docstring, e.g. `  - pandas==2.2.3` "
    "(PEP 508 syntax, as in requirements.txt)."
)


def read_docstring(text: str, file: str) -> Declarations:
    """The `Dependencies:` list of a module docstring: `- name<spec>` lines right below the header line."""
    if "dependencies:" not in text.lower():
        return Declarations()
    docstring, first = _module_docstring(text)
    if docstring is None:
        return Declarations()
    lines = docstring.splitlines()
    header = next((i for i, line in enumerate(lines) if _DOCSTRING_HEADER.match(line)), None)
    if header is None:
        return Declarations()
    result = Declarations()
    for index in range(header + 1, len(lines)):
        line = lines[index]
        if not line.strip():
            if result.requirements or result.findings:
                break  # a blank line ends the list
            continue
        item = _DOCSTRING_ITEM.match(line)
        if item is None:
            break  # the next paragraph
        requirement = _COMMENT.sub("", item.group("requirement")).strip()
        _merge(result, _parse_requirement(requirement, file, first + index, "docstring", _DOCSTRING_HINT))
    return result


def _module_docstring(text: str) -> tuple[str | None, int]:
    """The module docstring's raw text and the line its text starts on (the opening quotes' line)."""
    import ast
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None, 0  # the syntax check reports it
    body = tree.body
    if not body or not isinstance(body[0], ast.Expr):
        return None, 0
    value = body[0].value
    if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
        return None, 0
    return value.value, value.lineno


_REQUIREMENTS_HINT = "Use one PEP 508 requirement per line (`pandas==2.2.3`); see pip's requirements file format."


def read_requirements_file(root: Path, relative: str) -> Declarations:
    """Requirements of a requirements file and its `-r` includes; an include may not leave the release."""
    result = Declarations()
    _read_requirements(Path(root), relative, result, seen=set(), depth=0)
    return result


def _read_requirements(root: Path, relative: str, result: Declarations, *, seen: set[str], depth: int) -> None:
    seen.add(relative)
    text = _read_text(root, relative, os.path.realpath(root))
    if text is None:
        return
    for line_number, line in _logical_lines(text):
        if line.startswith("-"):
            _read_option(root, relative, line_number, line, result, seen=seen, depth=depth)
        elif _is_path_or_url(line):
            result.findings.append(_ignored(relative, line_number, f"`{line}` (a path or URL) cannot be checked"))
        else:
            requirement = _PER_REQUIREMENT_OPTION.sub("", line).strip()
            _merge(
                result, _parse_requirement(requirement, relative, line_number, "requirements.txt", _REQUIREMENTS_HINT)
            )


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """(line number, text) without comments and blank lines; `\\` continuations joined onto their first line."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        line = _COMMENT.sub("", pending + raw).strip()
        pending = ""
        if line:
            yield start, line
    if pending.strip():
        yield start, _COMMENT.sub("", pending).strip()


def _read_option(root, relative, line_number, line, result: Declarations, *, seen, depth) -> None:
    include = _INCLUDE_OPTION.match(line)
    if include is None:
        result.findings.append(_ignored(relative, line_number, f"the pip option `{line}` is ignored by this check"))
        return
    target = os.path.normpath(os.path.join(os.path.dirname(relative), include.group("path")))
    path = root / target
    outside = target.startswith("..") or not resolves_inside(path, os.path.realpath(root))
    if os.path.isabs(include.group("path")) or outside:
        message = f"`{line}` includes a file outside the repository; it is not read"
        result.findings.append(_invalid(relative, line_number, message, "Include only files of the repository."))
        return
    if not path.is_file():
        message = f"`{line}`: {target} does not exist in the repository"
        result.findings.append(_invalid(relative, line_number, message, _REQUIREMENTS_HINT))
        return
    if target in seen or depth >= MAX_INCLUDE_DEPTH:
        return  # an include cycle: every file is read once
    _read_requirements(root, target, result, seen=seen, depth=depth + 1)


def _is_path_or_url(line: str) -> bool:
    return line.startswith((".", "/", "~")) or ("://" in line and " @ " not in line and "@" not in line.split("://")[0])


def _ignored(file: str, line: int, message: str) -> Finding:
    return Finding(
        rule="dependency-option-ignored",
        severity="info",
        message=message,
        file=file,
        line=line,
        hint="dagops checks named requirements against the installed environment; it installs nothing.",
    )


_PYPROJECT_HINT = "`[project].dependencies` must be a list of PEP 508 strings (PEP 621)."


def read_pyproject(text: str, file: str) -> Declarations:
    """`[project].dependencies` of a pyproject.toml."""
    data, error = _load_toml(text, file, 0)
    if error:
        return Declarations(findings=[error])
    project = data.get("project", {})
    if not isinstance(project, dict) or "dependencies" not in project:
        return Declarations()
    dependencies = project["dependencies"]
    lines = text.splitlines()
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        line = _index_of_key(lines, "dependencies")
        return Declarations(
            findings=[_invalid(file, line, "`[project].dependencies` must be a list of strings", _PYPROJECT_HINT)]
        )
    result = Declarations()
    for dependency in dependencies:
        index = _index_of_quoted(lines, dependency)
        _merge(
            result,
            _parse_requirement(dependency, file, None if index is None else index + 1, "pyproject", _PYPROJECT_HINT),
        )
    return result


def _index_of_key(lines: list[str], key: str) -> int | None:
    return next((i + 1 for i, line in enumerate(lines) if line.strip().startswith(key)), None)
