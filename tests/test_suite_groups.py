"""The suite's own set-up: the tests sharing one real Airflow (`real_airflow`, tests/helpers/airflow.py) form one
xdist group, so `make test` starts that Airflow once, on one worker, and stops it after the last of them."""

from __future__ import annotations

import pytest


def test_every_test_of_the_shared_airflow_is_in_its_xdist_group(request):
    users = [item for item in request.session.items if "real_airflow" in getattr(item, "fixturenames", ())]
    if not users:
        pytest.skip("no test of this run uses the shared Airflow")
    ungrouped = [
        item.nodeid for item in users if ("real_airflow",) not in [m.args for m in item.iter_markers("xdist_group")]
    ]
    assert not ungrouped, ungrouped
