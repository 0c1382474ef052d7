"""docker-compose.yaml and the Dockerfile, checked without a container engine: the file as compose reads it,
the topology it describes, `docker-compose config -q`, and the init service's script run on this machine."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import airflow
import pytest
import yaml
from sqlalchemy import create_engine, text

from airflow_dagops.api.webhooks import webhook_blueprint
from airflow_dagops.settings import OPTIONS
from airflow_dagops.store import db
from airflow_dagops.store.db import VERSION_TABLE
from tests.helpers.airflow_procs import fresh_databases

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
AIRFLOW_COMMANDS = {"api-server", "scheduler", "dag-processor", "triggerer", "celery worker"}
INIT = "airflow-init"
DAGS = "/opt/airflow/dags"
DAGOPS_HOME = "/opt/airflow/dagops"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # safe_load resolves the anchors and `<<` merges, as compose does


def _airflow_services(compose: dict) -> dict[str, dict]:
    """Services running the dagops image: the init service and one per Airflow component."""
    return {name: svc for name, svc in compose["services"].items() if svc.get("image", "").startswith("${DAGOPS")}


def _component_services(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in _airflow_services(compose).items() if name != INIT}


def _mounts(service: dict) -> dict[str, str]:
    """{container path: volume} of a service's volumes."""
    return {entry.split(":")[1]: entry.split(":")[0] for entry in service.get("volumes", [])}


def test_every_airflow_component_runs_in_its_own_service_beside_postgres_and_redis(compose):
    commands = {svc["command"] for svc in _component_services(compose).values()}
    assert commands == AIRFLOW_COMMANDS
    images = {name: compose["services"][name]["image"] for name in ("postgres", "redis")}
    assert images["postgres"].startswith("postgres:") and images["redis"].startswith("redis:")
    assert INIT in compose["services"]


def test_dags_folder_and_dagops_home_are_shared_volumes_at_the_same_paths_everywhere(compose):
    # The namespace links in the dags folder point at absolute paths under dagops_home: every service must
    # see both at the same place, or a link written by the worker dangles in the dag-processor.
    for name, service in _airflow_services(compose).items():
        mounts = _mounts(service)
        assert (mounts.get(DAGS), mounts.get(DAGOPS_HOME)) == ("dags", "dagops-home"), name
        env = service["environment"]
        assert (env["AIRFLOW__CORE__DAGS_FOLDER"], env["AIRFLOW__DAGOPS__DAGOPS_HOME"]) == (DAGS, DAGOPS_HOME), name
        assert _mounts(service).get(os.path.dirname(env["AIRFLOW_CONFIG"])) == "airflow-config", name
    assert {"dags", "dagops-home", "airflow-config"} <= set(compose["volumes"])


def test_executor_is_celery_with_a_redis_broker_and_postgres_everywhere(compose):
    for name, service in _airflow_services(compose).items():
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/"), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
        assert env["AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", name


def test_dagops_settings_by_environment_name_real_options(compose):
    env = compose["x-airflow-common"]["environment"]
    names = [key.removeprefix("AIRFLOW__DAGOPS__").lower() for key in env if key.startswith("AIRFLOW__DAGOPS__")]
    assert {"dagops_home", "sql_alchemy_conn"} <= set(names)
    assert [name for name in names if name not in OPTIONS] == []


def test_init_service_runs_both_migrations_and_dagops_init_before_anything_starts(compose):
    script = compose["services"][INIT]["command"][-1]
    steps = [step for step in ("airflow db migrate", "dagops db migrate", "dagops init") if step in script]
    assert steps == ["airflow db migrate", "dagops db migrate", "dagops init"]
    assert [script.index(step) for step in steps] == sorted(script.index(step) for step in steps)
    assert compose["services"][INIT]["restart"] == "no"
    for name, service in _component_services(compose).items():
        assert service["depends_on"][INIT] == {"condition": "service_completed_successfully"}, name


def test_every_service_has_a_healthcheck_except_the_one_shot_init(compose):
    missing = [name for name, svc in compose["services"].items() if name != INIT and not svc.get("healthcheck")]
    assert missing == []


def test_webhook_url_in_the_compose_file_is_the_route_the_api_server_serves():
    served = f"/pluginsv2{webhook_blueprint.url_prefix}/"
    assert served == "/pluginsv2/dagops/api/v1/webhooks/"
    assert f"{served}{{github,gitlab,gitea,bitbucket}}" in COMPOSE.read_text()
    assert f"{served}" in (ROOT / "docs" / "deployment.md").read_text()


def test_dockerfile_extends_the_official_image_of_the_installed_airflow_version():
    dockerfile = (ROOT / "Dockerfile").read_text()
    image = re.search(r"^ARG AIRFLOW_IMAGE=(\S+)$", dockerfile, re.MULTILINE).group(1)
    assert image == f"apache/airflow:{airflow.__version__}"
    assert re.search(r"^FROM \$\{AIRFLOW_IMAGE\}$", dockerfile, re.MULTILINE)
    # pip runs as the image's airflow user, never as root, and keeps the image's Airflow version.
    last_user = re.findall(r"^USER (\S+)$", dockerfile.split("pip install")[0], re.MULTILINE)[-1]
    assert last_user == "airflow"
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in dockerfile


def test_docker_build_context_holds_what_the_package_build_needs():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") + 1 :][:4] == ["!pyproject.toml", "!README.md", "!airflow_dagops/", "!meta_dags/"]
    copied = re.findall(r"^COPY --chown=airflow:0 (.+) /tmp/", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert " ".join(copied).split() == ["pyproject.toml", "README.md", "airflow_dagops", "meta_dags"]


def test_docker_compose_config_accepts_the_file():
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose; .ci/run installs it)")
    result = subprocess.run([binary, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


# -- the init service's script, run here against the local PostgreSQL -------------------------------------
@pytest.fixture
def airflow_database():
    """A fresh database for Airflow's metadata; the dagops database the script must create by itself."""
    with fresh_databases("dagops_init", create=("airflow",)) as urls:
        yield urls


def _scalar(url: str, query: str):
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.scalar(text(query))
    finally:
        engine.dispose()


def _init_env(compose: dict, tmp_path: Path, urls: dict[str, str]) -> dict[str, str]:
    """The init service's environment, with this machine's PostgreSQL and tmp folders for the volumes."""
    service = compose["services"][INIT]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({key: str(value) for key, value in service["environment"].items() if "${" not in str(value)})
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(tmp_path / "home"),
            "AIRFLOW_CONFIG": str(tmp_path / "config" / "airflow.cfg"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
            "AIRFLOW__DAGOPS__DAGOPS_HOME": str(tmp_path / "dagops"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["airflow"],
            "AIRFLOW__DAGOPS__SQL_ALCHEMY_CONN": urls["state"],
            "AIRFLOW__API_AUTH__JWT_SECRET": "init-test-secret",
            "AIRFLOW__API__BASE_URL": "http://localhost:8080",
            "AIRFLOW__CORE__FERNET_KEY": "",
            "_AIRFLOW_WWW_USER_USERNAME": "airflow",
            "_AIRFLOW_WWW_USER_PASSWORD": "airflow",
        }
    )
    return env


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_init_script_migrates_both_databases_adds_the_bundle_and_the_user_and_can_run_again(
    compose, tmp_path, airflow_database
):
    urls = airflow_database
    # `$$` is compose's escape for a literal `$`: undo it, as compose does before the container runs it.
    script = compose["services"][INIT]["command"][-1].replace("$$", "$")
    env = _init_env(compose, tmp_path, urls)
    for volume in ("config", "dags", "dagops"):  # mount points exist in a container: the volumes are mounted there
        (tmp_path / volume).mkdir()
    for attempt in (1, 2):  # a restarted init service finds everything in place and succeeds again
        result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=500)
        assert result.returncode == 0, f"attempt {attempt}:\n{result.stdout}\n{result.stderr}"

    # The script created the dagops database and both schemas are migrated; the first user exists once.
    assert _scalar(urls["state"], f"SELECT version_num FROM {VERSION_TABLE}") == db.head_revision()
    assert _scalar(urls["airflow"], "SELECT version_num FROM alembic_version")
    assert _scalar(urls["airflow"], "SELECT string_agg(username, ',') FROM ab_user") == "airflow"
    # `dagops init` put the system-DAG bundle into the shared airflow.cfg every service reads.
    config = (tmp_path / "config" / "airflow.cfg").read_text()
    bundles = json.loads(re.search(r"^dag_bundle_config_list = (.+)$", config, re.MULTILINE).group(1))
    assert "dagops" in [bundle["name"] for bundle in bundles]
    assert (tmp_path / "dagops" / "releases").is_dir() and (tmp_path / "dags").is_dir()
