"""The ``ml`` schema: tables and views the ML package owns (see notes in docs/architecture.md)."""

from __future__ import annotations

import duckdb

ML_DDL = [
    "create schema if not exists ml",
    """
    create table if not exists ml.model_runs (
        model_name VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        as_of TIMESTAMP NOT NULL,
        horizon_days INTEGER NOT NULL,
        train_window_start TIMESTAMP NOT NULL,
        train_window_end TIMESTAMP NOT NULL,
        validation_on TIMESTAMP NOT NULL,
        roc_auc DOUBLE,
        pr_auc DOUBLE,
        log_loss DOUBLE,
        top_decile_lift DOUBLE,
        calibration_error DOUBLE,
        validation_positive_rate DOUBLE,
        champion_version VARCHAR,
        champion_roc_auc DOUBLE,
        features JSON NOT NULL,
        params JSON NOT NULL,
        training_rows BIGINT NOT NULL,
        validation_rows BIGINT NOT NULL,
        training_data_hash VARCHAR NOT NULL,
        seconds DOUBLE NOT NULL,
        is_promoted BOOLEAN NOT NULL,
        is_champion BOOLEAN NOT NULL,
        decision_reason VARCHAR NOT NULL,
        artifact_path VARCHAR NOT NULL,
        PRIMARY KEY (model_name, model_version)
    )
    """,
    """
    create table if not exists ml.scores (
        customer_id VARCHAR NOT NULL,
        model_name VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL,
        score DOUBLE NOT NULL,
        decile INTEGER NOT NULL,
        top_reasons JSON,
        scored_at TIMESTAMP NOT NULL,
        run_id VARCHAR NOT NULL
    )
    """,
    """
    create or replace view ml.current_scores as
    select * from ml.scores
    qualify row_number() over (
        partition by customer_id, model_name order by scored_at desc, run_id desc
    ) = 1
    """,
    """
    create table if not exists ml.drift (
        model_name VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL,
        as_of TIMESTAMP NOT NULL,
        kind VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        psi DOUBLE NOT NULL,
        threshold DOUBLE NOT NULL,
        is_alert BOOLEAN NOT NULL,
        run_id VARCHAR NOT NULL
    )
    """,
    """
    create table if not exists ml.cluster_runs (
        model_version VARCHAR PRIMARY KEY,
        as_of TIMESTAMP NOT NULL,
        k INTEGER NOT NULL,
        silhouette DOUBLE NOT NULL,
        davies_bouldin DOUBLE NOT NULL,
        candidates JSON NOT NULL,
        features JSON NOT NULL,
        customers BIGINT NOT NULL,
        outliers BIGINT NOT NULL,
        outlier_distance DOUBLE NOT NULL,
        run_id VARCHAR NOT NULL
    )
    """,
    """
    create table if not exists ml.cluster_centroids (
        model_version VARCHAR NOT NULL,
        cluster_id INTEGER NOT NULL,
        cluster_name VARCHAR NOT NULL,
        size BIGINT NOT NULL,
        centroid JSON NOT NULL,
        PRIMARY KEY (model_version, cluster_id)
    )
    """,
    """
    create table if not exists ml.cluster_assignments (
        customer_id VARCHAR NOT NULL,
        cluster_id INTEGER NOT NULL,
        cluster_name VARCHAR NOT NULL,
        is_outlier BOOLEAN NOT NULL,
        model_version VARCHAR NOT NULL,
        assigned_at TIMESTAMP NOT NULL,
        run_id VARCHAR NOT NULL
    )
    """,
    """
    create or replace view ml.current_clusters as
    select * from ml.cluster_assignments
    qualify row_number() over (
        partition by customer_id order by assigned_at desc, run_id desc
    ) = 1
    """,
]


def ensure_ml_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``ml`` schema, its tables and views (idempotent)."""
    for statement in ML_DDL:
        con.execute(statement)
