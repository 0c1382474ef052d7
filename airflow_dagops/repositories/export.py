"""`dagops repos export`: the registry as dagops.yaml's text, which `dagops repos apply` takes back (declarative.py).

Apart from declarative.py because it only reads the store (store/reads.py, without the ORM) and needs none of what
applying a file does (git, the registry's changes): an export is a new process each time (issue 19, "Fast CLI").
"""

from __future__ import annotations

from typing import Any

import yaml

from airflow_dagops import settings
from airflow_dagops.repositories import options as repo_options
from airflow_dagops.store.reads import get_release, list_repositories
from airflow_dagops.store.views import RepositoryInfo


def export_document() -> dict:
    """The registry as dagops.yaml's document (`repositories:`); applying it changes nothing."""
    return {"repositories": [_entry(info) for info in sorted(list_repositories(), key=lambda i: i.name)]}


def export(document: dict | None = None) -> str:
    """The registry (or a document `export_document` made) as dagops.yaml's text."""
    header = "# dagops.yaml: exported by `dagops repos export`; apply with `dagops repos apply -f dagops.yaml`\n"
    document = export_document() if document is None else document
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _entry(info: RepositoryInfo) -> dict:
    """One repository as a file entry: where it comes from always, every other option when not its default
    (a poll interval when not [dagops] default_poll_interval), and its pin."""
    entry: dict[str, Any] = {"name": info.name, "url": info.url, "branch": info.ref, "namespace": info.namespace}
    entry["priority"] = info.priority
    defaults = {o.name: o.default for o in repo_options.OPTIONS}
    defaults["poll_interval"] = settings.get_int("default_poll_interval")
    for option in repo_options.OPTIONS:
        value = getattr(info, option.name)
        if option.name not in entry and option.name != "ref" and value not in (defaults[option.name], None, {}):
            entry[option.name] = value
    if info.pinned_release_id:
        entry["pin"] = get_release(info.pinned_release_id)["commit"]
    return entry
