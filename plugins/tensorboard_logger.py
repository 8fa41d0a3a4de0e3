"""The TensorBoard logger: ``bench run --logger tensorboard`` writes event files that
``tensorboard --logdir <log dir>/tensorboard`` shows.

Each run is a folder ``<log dir>/tensorboard/<run name>``: scalars under their tags (step: the training
iteration), the hyperparameters in the HPARAMS tab and as a text table, and the final status as text.
Writes through ``torch.utils.tensorboard.SummaryWriter``, which needs the ``tensorboard`` package
(``pip install 'earlyphase-bench[tensorboard]'``); it is imported only when the logger is used.
"""

from __future__ import annotations

from pathlib import Path

from bench import hookimpl


class TensorBoard:
    name = "tensorboard"
    description = "TensorBoard event files under <log dir>/tensorboard/<run> (tensorboard --logdir to view)."
    requires = ("tensorboard",)
    install = "earlyphase-bench[tensorboard]"

    def create(self, settings):
        from torch.utils.tensorboard import SummaryWriter  # here, not at import: bench works without it

        folder = _new_folder(settings.log_dir, settings.run_name)
        return TensorBoardRun(SummaryWriter(log_dir=str(folder)), folder)


def _new_folder(root: Path, name: str) -> Path:
    """``root/name``, or ``root/name-2``, ... when a run of that name exists (two runs in one second)."""
    folder, n = root / name, 1
    while folder.exists():
        n += 1
        folder = root / f"{name}-{n}"
    return folder


class TensorBoardRun:
    name = "tensorboard"

    def __init__(self, writer, folder: Path):
        self.writer, self.folder = writer, folder
        self.version = folder.name
        self.location = str(folder)

    def log_hyperparams(self, params):
        from torch.utils.tensorboard.summary import hparams

        # the HPARAMS tab's summaries, written into this run's own file (add_hparams would open a sub-run)
        for summary in hparams(dict(params), {}):
            self.writer.file_writer.add_summary(summary)
        rows = "\n".join(f"| {key} | {value} |" for key, value in params.items())
        self.writer.add_text("hyperparameters", "| name | value |\n| --- | --- |\n" + rows)

    def log_metrics(self, metrics, step):
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, step)

    def save(self):
        self.writer.flush()

    def finalize(self, status):
        self.writer.add_text("status", status)
        self.writer.close()


@hookimpl
def register_loggers(register):
    register(TensorBoard())
