"""One exception hierarchy: every DagOpsError carries a unique code, its HTTP status and its exit code, and
the faces answer with them instead of keeping tables of their own."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import typer
from flask import Blueprint, Flask
from typer.testing import CliRunner

import airflow_dagops
from airflow_dagops import errors
from airflow_dagops.api.errors import answer_in_the_envelope
from airflow_dagops.cli.common import command
from airflow_dagops.errors import DagOpsError

# Faces and Alembic scripts define no errors; importing them needs a configured Airflow or a migration context.
_NOT_IMPORTED = ("airflow_dagops.store.migrations", "airflow_dagops.meta_dags", "airflow_dagops.www")


def _every_error_class() -> list[type[DagOpsError]]:
    """Every DagOpsError subclass the package defines, wherever it is defined (so a stray one is caught)."""
    for module in pkgutil.walk_packages(airflow_dagops.__path__, "airflow_dagops."):
        if not module.name.startswith(_NOT_IMPORTED) and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found, todo = [], [DagOpsError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(sub for sub in cls.__subclasses__() if sub.__module__.startswith("airflow_dagops."))
    return found


ERRORS = _every_error_class()


def _make(cls: type[DagOpsError]) -> DagOpsError:
    """An instance of `cls`, whatever its constructor wants."""
    if issubclass(cls, errors.ConfigInvalid):
        return cls(["dagops.yaml:1: name: required"])
    if issubclass(cls, errors.RotationFailed):

        class _Access:
            def to_dict(self) -> dict:
                return {"kind": "authentication_failed"}

        return cls("no access", access=_Access(), rotation_id="x_rotated", pending_kept=False)
    return cls("what went wrong, and what to do")


def test_every_error_lives_in_errors_py():
    strays = sorted(f"{cls.__module__}.{cls.__name__}" for cls in ERRORS if cls.__module__ != errors.__name__)
    assert not strays, f"define these in airflow_dagops/errors.py: {strays}"


def test_every_error_has_a_unique_code_an_http_status_and_an_exit_code():
    codes: dict[str, str] = {}
    for cls in ERRORS:
        assert "code" in vars(cls), f"{cls.__name__} inherits its code: give it its own"
        assert cls.code not in codes, f"{cls.__name__} and {codes[cls.code]} share the code {cls.code!r}"
        codes[cls.code] = cls.__name__
        assert 400 <= cls.http_status <= 599, cls
        assert isinstance(cls.exit_code, int) and cls.exit_code > 0, cls


@pytest.fixture(scope="module")
def api():
    """A blueprint answering in the envelope, with one route per error class that raises it."""
    blueprint = Blueprint("errors_probe", __name__)
    answer_in_the_envelope(blueprint)
    by_name = {cls.__name__: cls for cls in ERRORS}

    @blueprint.route("/raise/<name>")
    def raise_error(name: str):
        raise _make(by_name[name])

    app = Flask(__name__)
    app.register_blueprint(blueprint)
    return app.test_client()


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_the_api_answers_with_the_errors_own_status_and_code(api, cls):
    response = api.get(f"/raise/{cls.__name__}")
    assert response.status_code == cls.http_status
    assert response.get_json()["error"]["code"] == cls.code


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_the_cli_exits_with_the_errors_own_exit_code(cls):
    app = typer.Typer()

    @command(app, "fail")
    def fail() -> None:
        raise _make(cls)

    @app.command("other")
    def other() -> None:  # a second command, so typer keeps `fail` a subcommand
        pass

    result = CliRunner().invoke(app, ["fail"])
    assert result.exit_code == cls.exit_code
    assert "what went wrong" in result.output or "no access" in result.output or "dagops.yaml" in result.output
