"""Security check: unsafe code, hardcoded secrets and dangerous import-time code in a release.

Three parts, each built on a well-kept library where one exists:

1. **bandit** (Python API, one ``BanditManager`` run over all given ``.py`` files). Rule ids are
   ``bandit-<test id>`` (``bandit-B602``). Severity mapping, from bandit's severity and confidence:

   ==================  ==========================  ===========
   bandit severity     bandit confidence           our severity
   ==================  ==========================  ===========
   HIGH                MEDIUM or HIGH              error
   HIGH                LOW                         warning
   MEDIUM              any                         warning
   LOW (or undefined)  any                         info
   ==================  ==========================  ===========

   bandit's hardcoded-password tests B105/B106/B107 are kept, but always as **info**, with our own
   message (bandit's quotes the password, which must never reach a report or the state DB), and
   dropped on any line where detect-secrets already reported a ``hardcoded-secret-*`` finding, so one
   line is never reported twice. Why keep them: detect-secrets ignores a whole line that looks like an
   "indirect reference" (``conn = Connection(password="...")`` contains ``= Connection(...)``), and
   bandit's AST test still sees that keyword argument. Why only info: bandit matches any name
   containing "pass", "token" or "pwd" (``bypass=``, ``token_url=``), too loose to block a deploy.
   B101 (``assert`` used) is skipped: asserts are idiomatic in the pytest files a DAG repo ships, and
   Airflow never runs DAG code with ``python -O``. bandit's ``# nosec`` comments are honoured. An error in
   vendored code (``secrets.is_vendored``: the folders ``files.VENDOR_FOLDERS`` names) is a warning that says so,
   as for secrets; the pipeline softens the rest of what Airflow never parses (``pipeline.DAG_CODE_RULES``).

2. **detect-secrets** (Python API: ``SecretsCollection`` under ``transient_settings``) over every given
   file, not only Python (YAML, JSON, .env, .cfg, SQL ...). Files over 1 MiB are not scanned (reported
   as ``security-scan-skipped``, info); binary files are skipped silently. One finding per line, for
   the most specific secret type found on it; the message names the type and line, never the value.
   detect-secrets' ``# pragma: allowlist secret`` (or ``pragma: allowlist nextline secret`` on the
   line above) marks a false positive. A second opinion (``airflow_dagops.validate.secrets``) turns a
   finding into a **warning**, with the reason in its message, when every value on the line is a
   placeholder or template, the name or path of a secret, a local development default in a Compose file,
   or sits in vendored third-party code; and it adds ``hardcoded-secret-basic-auth`` errors for
   connection-URI passwords detect-secrets misses (``#``, ``%``, a second ``@`` in the password).

3. **import-time-side-effect** (our AST rule): process, network or ``exec``/``eval`` calls in code
   that runs when the module is imported (module level, including top-level if/with/try/for blocks,
   decorators and default values), but not inside function or class bodies nor under
   ``if __name__ == "__main__":``. Import aliases are resolved (``import subprocess as sp``). File writes
   count too (``open(path, "w")``, ``Path.write_text``, ``shutil.copy``, ``os.remove``). Same-file code called
   at import is followed one call away: an undecorated function (``CONFIG = fetch()`` where ``fetch`` calls
   ``urlopen``), a method (``Loader().fetch()``, ``Loader.fetch()``), a class's ``__init__``/``__post_init__``
   when it is instantiated, and inside a followed method one more step through ``self``; never further, so
   recursion ends; decorated functions (``@task``) are not followed.

Size: three parts of one check over the same files (bandit, detect-secrets, import-time calls), with the
severity tables above; each part is a few functions and `_ImportTimeCallFinder` is the one AST visitor
(it follows same-file functions, methods and constructors one call away itself). The secret second opinion
(placeholders, names of secrets, dev defaults, vendored code, URI passwords) lives in `secrets.py`, so the secret
part here stays the glue.
"""

from __future__ import annotations

import ast
import logging
import re
import stat
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.core.secrets_collection import SecretsCollection
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString, HexHighEntropyString
from detect_secrets.plugins.ip_public import IPPublicDetector
from detect_secrets.plugins.keyword import KeywordDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.settings import Settings, transient_settings

from airflow_dagops.validate import secret_screen
from airflow_dagops.validate import secrets as secrets_review
from airflow_dagops.validate.report import Finding


@contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Raise the given library loggers to CRITICAL for a while (their chatter is not for our users)."""
    loggers = [logging.getLogger(name) for name in names]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, previous, strict=True):
            logger.setLevel(level)


# bandit loads its report formatters through stevedore on import, and stevedore logs an ERROR for the
# optional SARIF formatter when `sarif_om` is not installed. We never use bandit's formatters.
with _quiet_loggers("stevedore"):
    from bandit.core import config as bandit_config
    from bandit.core import docs_utils as bandit_docs
    from bandit.core import extension_loader as bandit_extensions
    from bandit.core import manager as bandit_manager

log = logging.getLogger(__name__)

# Larger files are rarely hand-written code or config; scanning them costs seconds for little gain.
MAX_SCAN_BYTES = 1024 * 1024
# Same heuristic as git and grep: a NUL byte near the start means binary.
BINARY_SNIFF_BYTES = 8192

# --------------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------------

SKIPPED_BANDIT_TESTS = frozenset({"B101"})
# Overlap with detect-secrets and quote the password in their message; see the module docstring.
BANDIT_PASSWORD_TESTS = frozenset({"B105", "B106", "B107"})

SECRET_RULES = {
    "hardcoded-secret-private-key": "A private key (PEM/OpenSSH block) is committed in a file.",
    "hardcoded-secret-aws": "An AWS access key id or secret access key is committed in a file.",
    "hardcoded-secret-token": "An API token (GitHub, GitLab, Slack, Stripe, JWT, ...) is committed in a file.",
    "hardcoded-secret-basic-auth": "A URL with a password in it (user:password@host) is committed in a file.",
    "hardcoded-secret-password": "A literal is assigned to a password-like name (password, secret, api_key...).",
    "hardcoded-secret-high-entropy": "A random-looking string that may be a key or token.",
}
OWN_RULES = {
    **SECRET_RULES,
    "import-time-side-effect": "A process, network or exec/eval call runs when the DAG file is imported.",
    "security-scan-skipped": "A file over 1 MiB was not scanned for secrets or unsafe code.",
}


def _bandit_test_names() -> dict[str, str]:
    """Test id -> name for every test the installed bandit has (plugins and blacklist entries)."""
    names = {
        test_id: extension.plugin.__name__ for test_id, extension in bandit_extensions.MANAGER.plugins_by_id.items()
    }
    for entries in bandit_extensions.MANAGER.blacklist.values():
        names.update({entry["id"]: entry["name"] for entry in entries})
    return {test_id: name for test_id, name in sorted(names.items()) if test_id not in SKIPPED_BANDIT_TESTS}


# Taken once, at import: bandit's docs_utils.get_url() rewrites blacklist names in place later.
_BANDIT_TEST_NAMES = _bandit_test_names()

RULES: dict[str, str] = {
    **OWN_RULES,
    **{
        f"bandit-{test_id}": f"bandit {test_id}: {name.replace('_', ' ')}"
        for test_id, name in _BANDIT_TEST_NAMES.items()
    },
}

# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ScanTarget:
    relative: str
    path: Path
    source: bytes

    @property
    def is_python(self) -> bool:
        return self.relative.endswith(".py")


def check_security(root: Path, files: list[str]) -> list[Finding]:
    """Run bandit, detect-secrets and the import-time rule over ``files`` (relative to ``root``).

    A file's findings depend on that file alone, so a caller may split ``files`` across processes and
    concatenate the results (about 8 ms of CPU per 40-line DAG file, mostly bandit and detect-secrets).
    """
    root = Path(root).absolute()
    targets, findings = _collect_targets(root, files)
    python_targets = [target for target in targets if target.is_python]
    secret_findings = _find_secrets(root, targets)
    findings += _drop_lines_already_reported(_run_bandit(python_targets), secret_findings)
    findings += secret_findings
    for target in python_targets:
        findings += _find_import_time_side_effects(target)
    return sorted(findings, key=lambda f: (f.file or "", f.line or 0, f.rule))


def _collect_targets(root: Path, files: Iterable[str]) -> tuple[list[_ScanTarget], list[Finding]]:
    """Read each file once, keeping only regular text files inside the release and under the size cap."""
    real_root = root.resolve()
    targets: list[_ScanTarget] = []
    findings: list[Finding] = []
    for relative in dict.fromkeys(files):  # dedupe, keep order
        path = root / relative
        try:
            real_path = path.resolve(strict=True)
            # A symlink out of the tree is another check's finding; never read outside the release.
            if not real_path.is_relative_to(real_root):
                log.debug("Not scanning %s: it resolves outside the release", relative)
                continue
            info = real_path.stat()
            # A FIFO or device would block or never end; only regular files are code or config.
            if not stat.S_ISREG(info.st_mode):
                continue
            if info.st_size > MAX_SCAN_BYTES:
                findings.append(_scan_skipped(relative, info.st_size))
                continue
            source = real_path.read_bytes()
        except (OSError, RuntimeError) as err:  # unreadable, dangling link, symlink loop
            log.warning("Not scanning %s for security issues: %s", relative, err)
            continue
        if b"\0" in source[:BINARY_SNIFF_BYTES]:
            continue
        targets.append(_ScanTarget(relative=relative, path=path, source=source))
    return targets, findings


def _scan_skipped(relative: str, size: int) -> Finding:
    return Finding(
        rule="security-scan-skipped",
        severity="info",
        file=relative,
        message=f"Not scanned for secrets or unsafe code: {size / 1024 / 1024:.1f} MiB is over the 1 MiB limit",
        hint="Keep large data files out of the DAG repository (object storage, a package), or split the file.",
    )


# --------------------------------------------------------------------------------------------------
# 1. bandit
# --------------------------------------------------------------------------------------------------


def bandit_severity(severity: str, confidence: str) -> str:
    """Map bandit's (severity, confidence) to ours; see the module docstring for the table."""
    if severity == "HIGH":
        return "error" if confidence in ("MEDIUM", "HIGH") else "warning"
    if severity == "MEDIUM":
        return "warning"
    return "info"


def _run_bandit(targets: list[_ScanTarget]) -> list[Finding]:
    if not targets:
        return []
    relative_by_path = {str(target.path): target.relative for target in targets}
    # bandit logs an error for each file it cannot parse (the syntax check reports those) and, when its
    # logger allows INFO, draws a progress bar on stdout for more than 50 files.
    with _quiet_loggers("bandit"):
        manager = bandit_manager.BanditManager(
            bandit_config.BanditConfig(),
            "file",
            quiet=True,
            profile={"exclude": sorted(SKIPPED_BANDIT_TESTS)},
        )
        manager.discover_files(list(relative_by_path))
        manager.run_tests()
    for path, reason in manager.get_skipped():
        log.debug("bandit skipped %s: %s", relative_by_path.get(path, path), reason)
    return [
        _bandit_finding(issue, relative_by_path.get(issue.fname, issue.fname)) for issue in manager.get_issue_list()
    ]


def _bandit_finding(issue, relative: str) -> Finding:
    test_id = issue.test_id
    name = _BANDIT_TEST_NAMES.get(test_id, issue.test)
    if test_id in BANDIT_PASSWORD_TESTS:
        return _bandit_password_finding(test_id, name, relative, issue.lineno)
    severity = bandit_severity(issue.severity, issue.confidence)
    because = ""
    if severity == "error" and secrets_review.is_vendored(relative):
        # Someone else's code, kept as it was released: shown, but it is not the team's to fix before a deploy.
        severity, because = "warning", f"; a warning, not an error, because it is {secrets_review.VENDORED_REASON}"
    return Finding(
        rule=f"bandit-{test_id}",
        severity=severity,
        file=relative,
        line=issue.lineno,
        message=f"{issue.text} (bandit {test_id} {name}; severity {issue.severity}, confidence {issue.confidence})"
        f"{because}",
        hint=f"Fix the code as {bandit_docs.get_url(test_id)} explains; if this is a false positive, "
        f"end the line with `# nosec {test_id}` and a comment saying why.",
    )


def _bandit_password_finding(test_id: str, name: str, relative: str, line: int) -> Finding:
    return Finding(
        rule=f"bandit-{test_id}",
        severity="info",
        file=relative,
        line=line,
        message=f"Possible hardcoded password: a string literal given to a password-like name "
        f"(bandit {test_id} {name}; the value is not shown)",
        hint="If this is a real credential, remove it and rotate it; read it at run time, inside a task, from a "
        "Connection (`Connection.get(conn_id).password`, from airflow.sdk) or a secrets backend. If it is not, "
        f"end the line with `# nosec {test_id}`.",
    )


def _drop_lines_already_reported(bandit_findings: list[Finding], secret_findings: list[Finding]) -> list[Finding]:
    """Drop bandit's password findings on lines detect-secrets already reported (with a sharper rule)."""
    reported = {(finding.file, finding.line) for finding in secret_findings}
    password_rules = {f"bandit-{test_id}" for test_id in BANDIT_PASSWORD_TESTS}
    return [
        finding
        for finding in bandit_findings
        if finding.rule not in password_rules or (finding.file, finding.line) not in reported
    ]


# --------------------------------------------------------------------------------------------------
# 2. detect-secrets
# --------------------------------------------------------------------------------------------------

# Public IPs are not credentials, and DAGs name hosts all the time.
_DISABLED_SECRET_PLUGINS = frozenset({IPPublicDetector.__name__})

# Most specific first: when several detectors match one line, the first rule here names the finding.
_RULE_BY_SECRET_TYPE = {
    PrivateKeyDetector.secret_type: "hardcoded-secret-private-key",
    AWSKeyDetector.secret_type: "hardcoded-secret-aws",
    BasicAuthDetector.secret_type: "hardcoded-secret-basic-auth",
    KeywordDetector.secret_type: "hardcoded-secret-password",
    Base64HighEntropyString.secret_type: "hardcoded-secret-high-entropy",
    HexHighEntropyString.secret_type: "hardcoded-secret-high-entropy",
}
# Every other detector (GitHub, GitLab, Slack, Stripe, JWT, OpenAI, PyPI, npm, ...) finds a token.
_OTHER_DETECTORS_RULE = "hardcoded-secret-token"
_RULE_PRIORITY = [
    "hardcoded-secret-private-key",
    "hardcoded-secret-aws",
    _OTHER_DETECTORS_RULE,
    "hardcoded-secret-basic-auth",
    "hardcoded-secret-password",
    "hardcoded-secret-high-entropy",
]
_SECRET_LABELS = {
    "hardcoded-secret-private-key": "private key",
    "hardcoded-secret-aws": "AWS credential",
    _OTHER_DETECTORS_RULE: "API token",
    "hardcoded-secret-basic-auth": "password in a URL",
    "hardcoded-secret-password": "password or secret literal",
    "hardcoded-secret-high-entropy": "secret (a high-entropy string)",
}
_ALLOWLIST_HINT = " If it is not a secret, end the line with `# pragma: allowlist secret` (detect-secrets' convention)."
_SECRET_HINTS = {
    "hardcoded-secret-private-key": "Remove the key and replace it (it stays in the Git history); keep it in an "
    "Airflow Connection or a secrets backend and read it at run time.",
    "hardcoded-secret-aws": "Deactivate and rotate this key in AWS IAM now (it stays in the Git history); use an "
    "Airflow AWS Connection (`aws_conn_id=...`) or an IAM role instead.",
    _OTHER_DETECTORS_RULE: "Revoke the token at its provider now (it stays in the Git history); keep it in an Airflow "
    "Connection or a Variable served by a secrets backend and read it at run time.",
    "hardcoded-secret-basic-auth": "Remove the password from the URL and rotate it; put the credentials in an "
    "Airflow Connection and pass its conn_id.",
    "hardcoded-secret-password": "Do not write passwords in code: read them at run time, inside a task, from a "
    "Connection (`Connection.get(conn_id).password`, from airflow.sdk) or a secrets backend.",
    "hardcoded-secret-high-entropy": "This random-looking string may be a key or token: if it is a secret, move it "
    "to a Connection or a secrets backend and rotate it.",
}
_SECRET_SEVERITY = {rule: "error" for rule in SECRET_RULES} | {"hardcoded-secret-high-entropy": "warning"}

# detect-secrets keeps its settings in a process-wide singleton; transient_settings swaps it.
_SETTINGS_LOCK = threading.Lock()


def secret_rule(secret_type: str) -> str:
    return _RULE_BY_SECRET_TYPE.get(secret_type, _OTHER_DETECTORS_RULE)


def _detect_secrets_config() -> dict:
    detectors: list[type] = list(get_mapping_from_secret_type_to_class().values())
    plugins = [{"name": plugin.__name__} for plugin in detectors if plugin.__name__ not in _DISABLED_SECRET_PLUGINS]
    # Explicit filters (detect-secrets' defaults: allowlist pragma, templated and indirect values,
    # UUIDs, lock files ...) so that whatever global settings a caller left behind don't leak in.
    filters = [{"path": path} for path in sorted(Settings().filters) if path not in Settings.DEFAULT_FILTERS]
    # Lines no plugin could report skip the plugins (secret_screen.py): most lines of DAG code.
    filters.append({"path": secret_screen.FILTER_PATH})
    return {"plugins_used": plugins, "filters_used": filters}


def _find_secrets(root: Path, targets: list[_ScanTarget]) -> list[Finding]:
    collection = SecretsCollection(root=str(root))
    with _SETTINGS_LOCK, transient_settings(_detect_secrets_config()) as configured:
        secret_screen.run_first(configured)
        for target in targets:
            try:
                # In-process on purpose: scan_files() would fork a multiprocessing pool per call.
                collection.scan_file(target.relative)
            except Exception:  # a transformer choking on odd YAML must not stop the release check
                log.warning("detect-secrets failed on %s; file not scanned for secrets", target.relative, exc_info=True)
    lines_by_file = {target.relative: target.source.decode("utf-8", "replace").splitlines() for target in targets}
    findings = []
    for relative, secrets in collection.data.items():
        types_by_line: dict[int, set[str]] = {}
        values_by_line: dict[int, list[str]] = {}
        for secret in secrets:
            types_by_line.setdefault(secret.line_number, set()).add(secret.type)
            if secret.secret_value is not None:
                values_by_line.setdefault(secret.line_number, []).append(secret.secret_value)
        lines = lines_by_file.get(relative, [])
        for line, types in types_by_line.items():
            text = lines[line - 1] if 0 < line <= len(lines) else ""
            reason = secrets_review.downgrade_reason(relative, text, values_by_line.get(line, []))
            findings.append(_secret_finding(relative, line, types, reason))
    # detect-secrets misses URI passwords holding `#`, `%` or a second `@`; add those it did not report.
    reported = {(finding.file, finding.line) for finding in findings}
    for target in targets:
        lines = lines_by_file[target.relative]
        for line, password in secrets_review.find_uri_passwords("\n".join(lines)):
            if (target.relative, line) not in reported:
                reason = secrets_review.downgrade_reason(target.relative, lines[line - 1], [password])
                findings.append(_secret_finding(target.relative, line, {"URI password"}, reason))
    return findings


def _secret_finding(relative: str, line: int, secret_types: set[str], not_a_secret: str | None = None) -> Finding:
    rule = min((secret_rule(t) for t in secret_types), key=_RULE_PRIORITY.index)
    if secret_types == {"URI password"}:  # our own URI scan (airflow_dagops.validate.secrets)
        rule = "hardcoded-secret-basic-auth"
    # A placeholder, a secret's name, a dev default or vendored code: shown, with why, but not blocking.
    severity = "warning" if not_a_secret else _SECRET_SEVERITY[rule]
    because = f"; a warning, not an error, because it is {not_a_secret}" if not_a_secret else ""
    source = (
        "connection URI scan"
        if secret_types == {"URI password"}
        else f"detect-secrets: {', '.join(sorted(secret_types))}"
    )
    return Finding(
        rule=rule,
        severity=severity,
        file=relative,
        line=line,
        # The value itself never goes into a finding: reports are stored and shown to many people.
        message=f"Possible hardcoded {_SECRET_LABELS[rule]} on line {line} ({source}){because}",
        hint=_SECRET_HINTS[rule] + _ALLOWLIST_HINT,
    )


# --------------------------------------------------------------------------------------------------
# 3. import-time side effects
# --------------------------------------------------------------------------------------------------

_HTTP_VERBS = r"(get|post|put|patch|delete|head|options|request|send|stream)"
_DANGEROUS_CALLS = [
    (
        re.compile(r"(subprocess\.\w+|os\.(system|popen|exec\w*|spawn\w*|posix_spawnp?)|pty\.spawn)"),
        "starts a process",
    ),
    (
        re.compile(
            rf"(requests|httpx)\.{_HTTP_VERBS}"
            rf"|(requests\.[Ss]ession|httpx\.(Async)?Client)\(\)\.{_HTTP_VERBS}"
            r"|urllib\.request\.(urlopen|urlretrieve)"
            r"|urllib3\.request|urllib3\.(PoolManager|HTTPS?ConnectionPool)\(\)\.(request|urlopen)"
            r"|http\.client\.\w+"
            r"|socket\.(create_connection|getaddrinfo|gethostbyname(_ex)?|gethostbyaddr)"
            r"|socket\.socket\(\)\.(connect(_ex)?|sendto)"
            r"|smtplib\.SMTP(_SSL)?|ftplib\.FTP(_TLS)?|telnetlib\.Telnet"
        ),
        "makes a network call",
    ),
    (re.compile(r"(builtins\.)?(exec|eval)"), "executes dynamic code"),
    (
        re.compile(
            r"shutil\.(copy\w*|move|rmtree)"
            r"|os\.(remove|unlink|rename|renames|replace|rmdir|removedirs|truncate)"
            r"|pathlib\.(Posix|Windows)?Path(\(\))?\.(write_text|write_bytes|unlink|rmdir|touch|rename|replace)"
        ),
        "writes or deletes files",
    ),
]
_OPEN_FUNCTIONS = frozenset({"open", "builtins.open", "io.open"})
# A decorator may replace the function (Airflow's @task, @dag); only caching ones still run its body.
_TRANSPARENT_DECORATORS = frozenset({"functools.cache", "functools.lru_cache", "functools.lru_cache()"})
# A method's body runs when it is called under these too.
_TRANSPARENT_METHOD_DECORATORS = _TRANSPARENT_DECORATORS | {"staticmethod", "classmethod"}
# `<module>.Loader.fetch` (a static or class method) or `<module>.Loader().fetch` (on an instance).
_METHOD_CALL = re.compile(r"(?P<cls><module>\.\w+)(\(\))?\.(?P<method>\w+)")
_IMPORT_TIME_HINT = (
    "Airflow's dag-processor imports every DAG file again every 30 s ([dag_processor] "
    "min_file_process_interval) on the scheduler's machines, so this would run constantly, slow or hang "
    "parsing, and do its work without any DAG run. Move it into a task (a @task function or an operator) "
    "so it runs only when the DAG runs."
)


def dangerous_call_reason(qualified_name: str) -> str | None:
    """What a call to ``qualified_name`` (e.g. ``subprocess.run``) does that is unsafe at import time."""
    for pattern, reason in _DANGEROUS_CALLS:
        if pattern.fullmatch(qualified_name):
            return reason
    return None


@dataclass(frozen=True)
class _SideEffect:
    line: int
    shown: str
    qualified_name: str
    reason: str
    via: tuple[str, ...] = ()  # `fetch()`, or `Loader()` then `self._load()`: same-file calls that lead to it
    via_line: int | None = None  # the line of the call itself, inside the function `via` ends with

    def reached_through(self, call: str, line: int) -> _SideEffect:
        """This effect, as the import-time call `call` on `line` that leads to it reports it."""
        return _SideEffect(
            line,
            self.shown,
            self.qualified_name,
            self.reason,
            (call, *self.via),
            self.via_line if self.via else self.line,
        )


@dataclass(frozen=True)
class _Owner:
    """The class a followed method belongs to, and the name its instance goes by in the method (`self`, `cls`)."""

    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]
    instance: str | None


class _ImportTimeCallFinder(ast.NodeVisitor):
    """Visits only the code that runs at import: it does not enter function or class bodies,
    lambdas, or the body of ``if __name__ == "__main__":``; it does visit decorators and defaults.

    Same-file code called at import is followed one call away: an undecorated function (``CONFIG = fetch()``),
    a class's method (``Loader().fetch()``, ``Loader.fetch()``, ``loader.fetch()`` after ``loader = Loader()``)
    and a class's ``__init__``/``__post_init__`` when it is instantiated (``Loader()``). What the followed body calls
    is reported at the import-time call. Inside a followed method, a method of the same class called through the
    instance (``self._load()``) is followed one step more, never further, so recursion ends."""

    def __init__(self, follow_calls: bool = True, owner: _Owner | None = None) -> None:
        self.names: dict[str, str] = {}  # local name -> qualified name ("sp" -> "subprocess")
        self.found: list[_SideEffect] = []
        self.follow_calls = follow_calls
        self.owner = owner  # inside a followed method: its class, whose methods `self.x()` reaches
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}  # "<module>.fetch" -> def
        self.classes: dict[str, ast.ClassDef] = {}  # "<module>.Loader" -> class

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.names[alias.asname] = alias.name
            else:  # `import urllib.request` binds `urllib`
                top = alias.name.split(".")[0]
                self.names[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                continue
            module = "." * node.level + (node.module or "")
            self.names[alias.asname or alias.name] = f"{module}.{alias.name}" if module else alias.name

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.names[node.name] = f"<module>.{node.name}"  # shadows an imported or builtin name
        self.functions[f"<module>.{node.name}"] = node
        self.classes.pop(f"<module>.{node.name}", None)
        self.visit_decorators(node.decorator_list)
        for expression in [*node.args.defaults, *node.args.kw_defaults]:
            if expression is not None:
                self.visit(expression)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.names[node.name] = f"<module>.{node.name}"
        self.classes[f"<module>.{node.name}"] = node
        self.functions.pop(f"<module>.{node.name}", None)
        self.visit_decorators(node.decorator_list)
        for expression in [*node.bases, *(keyword.value for keyword in node.keywords)]:
            self.visit(expression)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expression in [*node.args.defaults, *node.args.kw_defaults]:
            if expression is not None:
                self.visit(expression)

    def visit_If(self, node: ast.If) -> None:
        if _is_main_guard(node.test):
            for statement in node.orelse:
                self.visit(statement)
            return
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        # `s = socket.socket()` then `s.connect(...)`: remember what the name holds.
        if isinstance(node.value, ast.Call):
            created = self.qualified_name(node.value)
            for target in node.targets:
                if isinstance(target, ast.Name) and created:
                    self.names[target.id] = created

    def visit_Call(self, node: ast.Call) -> None:
        self.record_if_dangerous(node.func)
        if self.qualified_name(node.func) in _OPEN_FUNCTIONS and _opens_for_writing(node):
            self.found.append(_SideEffect(node.lineno, ast.unparse(node.func), "open", "writes a file"))
        elif isinstance(node.func, ast.Attribute) and node.func.attr in ("write_text", "write_bytes"):
            if self.qualified_name(node.func) is None:  # `(BASE / "out.json").write_text(...)`
                shown = ast.unparse(node.func)
                self.found.append(_SideEffect(node.lineno, shown, shown, "writes a file"))
        self.follow(node)
        self.generic_visit(node)

    def follow(self, node: ast.Call) -> None:
        """Report what the same-file code this call runs does (see the class docstring for how far)."""
        if self.follow_calls:
            targets = self.same_file_targets(self.qualified_name(node.func) or "")
        elif self.owner is not None:
            targets = self.own_method_target(node.func, self.owner)
        else:
            return
        shown = f"{ast.unparse(node.func)}()"
        for function, owner in targets:
            inner = _ImportTimeCallFinder(follow_calls=False, owner=owner if self.follow_calls else None)
            inner.names = dict(self.names)
            for statement in function.body:
                inner.visit(statement)
            self.found += [effect.reached_through(shown, node.lineno) for effect in inner.found]

    def same_file_targets(self, name: str) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, _Owner | None]]:
        """The bodies a module-level call of `name` runs: a function's; a class's `__init__` and `__post_init__`
        (`<module>.Loader`); a method's (`<module>.Loader.fetch`, `<module>.Loader().fetch`)."""
        function = self.functions.get(name)
        if function is not None:
            return [(function, None)] if self.runs_its_body(function, _TRANSPARENT_DECORATORS) else []
        if name in self.classes:
            methods = _methods(self.classes[name], self.classes)
            return [_method_target(methods[m], methods) for m in ("__init__", "__post_init__") if m in methods]
        match = _METHOD_CALL.fullmatch(name)
        if match is None or match["cls"] not in self.classes:
            return []
        methods = _methods(self.classes[match["cls"]], self.classes)
        method = methods.get(match["method"])
        if method is None or not self.runs_its_body(method, _TRANSPARENT_METHOD_DECORATORS):
            return []
        return [_method_target(method, methods)]

    def runs_its_body(self, function: ast.FunctionDef | ast.AsyncFunctionDef, transparent: frozenset[str]) -> bool:
        """Whether calling the function runs its body: a decorator may replace it (Airflow's @task, @dag)."""
        return all(self.qualified_name(decorator) in transparent for decorator in function.decorator_list)

    def own_method_target(
        self, func: ast.expr, owner: _Owner
    ) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, _Owner | None]]:
        """`self._load()` inside a followed method: the same class's `_load`, followed no further."""
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
            return []
        method = owner.methods.get(func.attr)
        if func.value.id != owner.instance or method is None:
            return []
        return [(method, None)] if self.runs_its_body(method, _TRANSPARENT_METHOD_DECORATORS) else []

    def visit_decorators(self, decorators: list[ast.expr]) -> None:
        for decorator in decorators:
            if not isinstance(decorator, ast.Call):  # `@subprocess.check_call` calls it with the function
                self.record_if_dangerous(decorator)
            self.visit(decorator)

    def record_if_dangerous(self, func: ast.expr) -> None:
        name = self.qualified_name(func)
        reason = dangerous_call_reason(name) if name else None
        if name and reason:
            self.found.append(_SideEffect(func.lineno, ast.unparse(func), name, reason))

    def qualified_name(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return self.names.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualified_name(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call):
            base = self.qualified_name(node.func)
            return f"{base}()" if base else None
        return None


def _methods(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """A class's methods by name, with those of its same-file base classes (`class Loader(BaseLoader)`) beneath."""
    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    seen: set[str] = set()
    todo = [cls]
    while todo:  # the class first, then its bases: the nearest definition of a name wins
        current = todo.pop(0)
        if current.name in seen:  # `class A(B)` and `class B(A)` parse; never walk them forever
            continue
        seen.add(current.name)
        for statement in current.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                methods.setdefault(statement.name, statement)
        todo += [
            classes[f"<module>.{base.id}"]
            for base in current.bases
            if isinstance(base, ast.Name) and f"<module>.{base.id}" in classes
        ]
    return methods


def _method_target(
    method: ast.FunctionDef | ast.AsyncFunctionDef, methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]
) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, _Owner]:
    """A method to follow, with what `self.x()` inside it reaches (no instance name for a static method)."""
    static = any(ast.unparse(decorator) == "staticmethod" for decorator in method.decorator_list)
    arguments = [*method.args.posonlyargs, *method.args.args]
    instance = arguments[0].arg if arguments and not static else None
    return method, _Owner(methods, instance)


def _opens_for_writing(node: ast.Call) -> bool:
    """``open(path, "w")``, ``open(path, mode="a+")``: any mode that creates, truncates or appends."""
    mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and bool(set(mode.value) & set("wax+"))


def _is_main_guard(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    has_name = any(isinstance(side, ast.Name) and side.id == "__name__" for side in sides)
    has_main = any(isinstance(side, ast.Constant) and side.value == "__main__" for side in sides)
    return has_name and has_main


def _find_import_time_side_effects(target: _ScanTarget) -> list[Finding]:
    try:
        tree = ast.parse(target.source, filename=target.relative)
    except (SyntaxError, ValueError):  # reported by the syntax check
        return []
    finder = _ImportTimeCallFinder()
    finder.visit(tree)
    return [_side_effect_finding(target.relative, effect) for effect in finder.found]


def _side_effect_finding(relative: str, effect: _SideEffect) -> Finding:
    resolved = f" (`{effect.qualified_name}`)" if effect.shown != effect.qualified_name else ""
    chain = " then ".join(f"`{call}`" for call in effect.via)
    via = f"Through {chain}, on line {effect.via_line}: " if effect.via else ""
    return Finding(
        rule="import-time-side-effect",
        severity="error",
        file=relative,
        line=effect.line,
        message=f"{via}`{effect.shown}(...)`{resolved} {effect.reason} when the module is imported",
        hint=_IMPORT_TIME_HINT,
    )
