"""Shared test helpers: one place for what more than one test folder needs.

- repos.py    real git remotes in tmp dirs, DAG sources, files (`git_remote` fixture)
- db.py       state DB URLs per backend and a throwaway dagops installation (`state_db_url`, `dagops_env`)
- servers.py  loopback servers: sshd and smart-HTTP git, a dumb-HTTP git server, `git daemon`, a flaky TCP proxy,
              fake Git host APIs (commit statuses, pull requests)
- airflow.py  the session's in-process Airflow home, and real Airflow processes (`real_airflow`, shared per worker)
- web.py      the /pluginsv2 Flask app against the session's Airflow metadata DB (`flask_app`, `web`)
- programs.py programs from outside Python (sshd, chromium, jq, git daemon): tests skip, saying what to install,
              where one is missing (`requires_program`, `skip_unless_program`)

The fixtures are registered for the whole suite by tests/conftest.py (`pytest_plugins`): a test folder's
conftest.py uses them by name, without importing them.
"""

import pytest

# tests/conftest.py imports these modules before registering them as plugins: rewrite their asserts anyway.
pytest.register_assert_rewrite(
    "tests.helpers.repos", "tests.helpers.db", "tests.helpers.servers", "tests.helpers.airflow", "tests.helpers.web"
)
