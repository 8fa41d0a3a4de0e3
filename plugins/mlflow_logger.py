"""The MLflow logger: ``bench run --logger mlflow`` makes one MLflow run per ``bench run``.

The store is ``--tracking-uri`` (or ``$BENCH_TRACKING_URI``), else MLflow's own ``$MLFLOW_TRACKING_URI``,
else a local SQLite database, ``<log dir>/mlflow/mlflow.db`` (MLflow keeps its file store in maintenance
mode and refuses it by default). The experiment is ``$MLFLOW_EXPERIMENT_NAME``, else ``earlyphase-bench``.
A run gets the hyperparameters as params, every metric with its step, the run's labels as tags, and ends
FINISHED, FAILED or KILLED (Ctrl-C). Uses only ``MlflowClient``, never the fluent API's global active run.
Needs ``mlflow-skinny`` (or ``mlflow``) and, for the local store, SQLAlchemy and Alembic
(``pip install 'earlyphase-bench[mlflow]'``), all imported only when the logger is used.
"""

from __future__ import annotations

import logging
import os
import time

from bench import hookimpl

EXPERIMENT = "earlyphase-bench"
STATUS = {"success": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
# MLflow's limits per log_batch call, and the shortest limit on a param's value of the versions we admit
MAX_METRICS, MAX_PARAMS, MAX_VALUE = 1000, 100, 500


class MLflow:
    name = "mlflow"
    description = "An MLflow run per bench run, in a local SQLite store under <log dir>/mlflow or --tracking-uri."
    requires = ("mlflow", "sqlalchemy", "alembic")  # without the last two, MLflow refuses a SQLite store
    install = "earlyphase-bench[mlflow]"

    def create(self, settings):
        from mlflow.tracking import MlflowClient  # here, not at import: bench works without it

        local = f"sqlite:///{(settings.log_dir / 'mlflow.db').resolve()}"
        uri = settings.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or local
        # creating a new SQLite store logs each schema migration at INFO: not news in a run's log
        for noisy in ("mlflow.store.db.utils", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        client = MlflowClient(tracking_uri=uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        # artifacts (none are logged today) beside the local store, not in the working directory
        artifacts = (settings.log_dir / "artifacts").resolve().as_uri() if uri == local else None
        experiment_id = _experiment(client, name, artifacts)
        run = client.create_run(experiment_id, run_name=settings.run_name,
                                tags={"mlflow.source.name": "bench run", **settings.tags})
        return MLflowRun(client, run.info.run_id, uri)


def _experiment(client, name: str, artifacts: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifacts)
    except Exception:  # another run created it in the meantime
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


class MLflowRun:
    name = "mlflow"

    def __init__(self, client, run_id: str, uri: str):
        self.client, self.version = client, run_id
        self.location = f"{uri} (run {run_id})"

    def log_hyperparams(self, params):
        from mlflow.entities import Param

        items = [Param(key, str(value)[:MAX_VALUE]) for key, value in params.items()]
        for i in range(0, len(items), MAX_PARAMS):
            self.client.log_batch(self.version, params=items[i:i + MAX_PARAMS])

    def log_metrics(self, metrics, step):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        for i in range(0, len(items), MAX_METRICS):
            self.client.log_batch(self.version, metrics=items[i:i + MAX_METRICS])

    def save(self):
        pass  # the client writes each batch as it is logged

    def finalize(self, status):
        self.client.set_terminated(self.version, status=STATUS[status])


@hookimpl
def register_loggers(register):
    register(MLflow())
