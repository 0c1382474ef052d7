# airflow-dagops on the official Apache Airflow image. Built by docker-compose.yaml; docs/deployment.md.
#   docker build -t airflow-dagops .
# The official tags are apache/airflow:<version> (the image's default Python) and
# apache/airflow:<version>-python3.X; pick another with --build-arg AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.12.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2
FROM ${AIRFLOW_IMAGE}

# dagops runs git for every fetch, ssh for deploy keys, and bubblewrap to import DAG files in a sandbox.
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client bubblewrap \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

USER airflow
# The shared volumes mount here: folders that exist in the image, owned by airflow, make fresh named
# volumes owned by airflow too (Docker copies the owner into an empty volume), so no service runs as root.
RUN mkdir -p /opt/airflow/dagops /opt/airflow/config

COPY --chown=airflow:0 pyproject.toml README.md /tmp/airflow-dagops/
COPY --chown=airflow:0 airflow_dagops /tmp/airflow-dagops/airflow_dagops
COPY --chown=airflow:0 meta_dags /tmp/airflow-dagops/meta_dags
# Pinning apache-airflow to the image's own version ($AIRFLOW_VERSION, set by the official image) keeps pip
# from upgrading or downgrading Airflow while it resolves dagops' dependencies.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "/tmp/airflow-dagops[postgres,celery]" \
    && rm -rf /tmp/airflow-dagops
