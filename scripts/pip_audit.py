"""`make audit`: pip-audit over the resolved dependencies of this virtual environment.

The vulnerability services are tried in turn (PyPI's JSON API, then OSV). Where none answers (CI machines
reach package indexes only: the simple index, not PyPI's JSON API, and not api.osv.dev), the audit says
"skipped: no vulnerability service reachable" and exits 0, so CI runs it wherever it can and never fakes a
pass. A known vulnerability fails the run unless ALLOWED lists it with a reason (mirrored in
docs/security.md).

    python scripts/pip_audit.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

SERVICES = ("pypi", "osv")
# Vulnerability id -> why it is accepted for now. Keep docs/security.md's allow-list in step.
ALLOWED: dict[str, str] = {}
OWN_DISTRIBUTION = "airflow-dagops"


def resolved_requirements() -> str:
    """Every installed distribution pinned to its version (what this environment resolved), ours left out."""
    pins = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").strip()
        if name and name.lower() != OWN_DISTRIBUTION:
            pins[name.lower()] = f"{name}=={dist.version}"
    return "\n".join(sorted(pins.values())) + "\n"


def audit(requirements: Path, service: str) -> tuple[dict | None, str]:
    """Run pip-audit against one service: (its JSON report, or None if the service could not be used; a note)."""
    report = requirements.with_suffix(f".{service}.json")
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--requirement",
        str(requirements),
        "--no-deps",  # the list is already complete and pinned
        "--disable-pip",
        "--progress-spinner",
        "off",
        "--vulnerability-service",
        service,
        "--timeout",
        "20",
        "--format",
        "json",
        "--output",
        str(report),
    ]
    for vulnerability in ALLOWED:
        command += ["--ignore-vuln", vulnerability]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if not report.is_file() or not report.read_text().strip():
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"{service}: {tail[:300]}"
    data = json.loads(report.read_text())
    audited = [d for d in data["dependencies"] if "skip_reason" not in d]
    if not audited:  # every lookup failed: the service is not really there (e.g. a mirror without the JSON API)
        return None, f"{service}: none of {len(data['dependencies'])} dependencies could be looked up"
    return data, f"{service}: {len(audited)} of {len(data['dependencies'])} dependencies audited"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dagops-audit-") as folder:
        requirements = Path(folder) / "requirements.txt"
        requirements.write_text(resolved_requirements())
        notes = []
        for service in SERVICES:
            data, note = audit(requirements, service)
            notes.append(note)
            if data is not None:
                break
        else:
            print("pip-audit skipped: no vulnerability service reachable (" + "; ".join(notes) + ")")
            return 0
    found = [(d["name"], d["version"], v["id"]) for d in data["dependencies"] for v in d.get("vulns", [])]
    print(f"pip-audit ({note}); allow-listed: {', '.join(ALLOWED) or 'none'}")
    for name, version, vulnerability in found:
        print(f"  {name} {version}: {vulnerability}")
    if found:
        print(f"{len(found)} known vulnerabilities; upgrade, or allow-list each with a reason in {__file__}")
        return 1
    print("no known vulnerabilities")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
