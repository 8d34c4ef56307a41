# MicroCDP on the official Airflow image: installs the repo's Python packages (cdp, ingestion,
# identity, models) and their dependencies (dbt-duckdb, duckdb, great-expectations, ...), so the
# DAG files mounted from dags/ can import them. dags/ and dbt_project/ are mounted at run time
# (see docker-compose.airflow.yml), so editing a DAG or a dbt model needs no rebuild; changing
# Python code under cdp/, ingestion/, identity/ or models/ does:
#   docker compose -f docker-compose.airflow.yml build
# Build context: the repository root (docker/airflow.Dockerfile.dockerignore keeps it small).
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

USER root
COPY . /opt/microcdp
# /opt/cdp/var is CDP_HOME (a named volume in compose); the airflow user (uid 50000, gid 0) owns it.
RUN chown -R airflow:0 /opt/microcdp && mkdir -p /opt/cdp/var && chown -R airflow:0 /opt/cdp
USER airflow
# Pin the image's Airflow version so pip cannot up- or downgrade it while resolving MicroCDP.
# No -e: the packages land in site-packages, the source tree is only needed at build time.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /opt/microcdp

WORKDIR /opt/airflow
ENV CDP_HOME=/opt/cdp/var \
    CDP_DAGS_DIR=/opt/airflow/dags \
    CDP_DBT_PROJECT_DIR=/opt/microcdp/dbt_project \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
