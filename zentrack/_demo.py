"""``zentrack demo``: the seed's example, tracked into the embedded SQLite store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import zentrack as zt


@zt.step(name="trainer")
class TrainerStep:
    """The seed's trainer: every constructor keyword argument is a parameter."""

    def __init__(
        self,
        batch_size: int = 1,
        dropout_chance: float = 0.0,
        epochs: int = 1,
        hidden_activation: str = "relu",
        hidden_layers: list[int] | None = None,
        last_activation: str = "sigmoid",
        loss: str = "mse",
        lr: float = 0.01,
        metrics: list[str] | None = None,
        output_units: int = 1,
    ) -> None:
        self.lr = lr
        self.epochs = epochs

    def run(self, data: list[float]) -> float:
        """A stand-in for training: fit a mean by gradient steps, log the loss."""
        estimate = 0.0
        for _ in range(self.epochs * 10):
            gradient = sum(estimate - x for x in data) / len(data)
            estimate -= self.lr * gradient
        loss = sum((estimate - x) ** 2 for x in data) / len(data)
        zt.log_metrics(loss=loss)
        return estimate


@zt.step
def make_data(n: int = 8, *, scale: float = 1.0, seed: int = 0) -> list[float]:
    """A function step: its arguments of tracked types are its parameters."""
    return [((i * 7919 + seed) % 13) * scale for i in range(n)]


@zt.pipeline
def training(n: int = 8, lr: float = 0.1) -> float:
    """The pipeline: its step calls form one run, with a YAML config."""
    data = make_data(n, scale=0.5)
    trainer = TrainerStep(lr=lr, epochs=3, hidden_layers=[64, 32], metrics=["mse"])
    return trainer.run(data)


PLAIN_MLMD_READER = '''
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

config = metadata_store_pb2.ConnectionConfig()
config.sqlite.filename_uri = {path!r}
config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
store = metadata_store.MetadataStore(config)
for execution in store.get_executions_by_type("zentrack.step.trainer"):
    props = execution.custom_properties
    params = {{k: getattr(v, v.WhichOneof("value")) for k, v in props.items()
              if not k.startswith("zentrack.")}}
    print(execution.id, metadata_store_pb2.Execution.State.Name(execution.last_known_state),
          params)
'''


def main(store: str | None = None) -> int:
    """Run the demo, then show the records through zentrack and plain MLMD."""
    tracker = zt.init(store)
    path = tracker.location.display
    for lr in (0.1, 0.05):
        run = training(lr=lr)
        print(f"run {run.id}: trained with lr={lr}: estimate {run.output:.4f}")
    again = training(lr=0.1)
    states = [step.state for step in zt.get_run(again.id).steps]
    print(f"run {again.id}: same args again, steps {states} (served from the cache)")
    print(f"  its config: {again.config_path}")
    zt.flush()  # reads flush anyway; explicit here for the tour
    print(f"\n{len(zt.find())} step records and {len(zt.runs())} runs are in {path}\n")

    print("Read back with zentrack:")
    for record in zt.find(step="trainer", lr__lt=0.2):
        print(f"  {record.execution_id}: {record.state} lr={record.params['lr']!r} "
              f"metrics={record.metrics} fingerprint={record.fingerprint[:16]}…")
    print("  zt.find(step='trainer', lr__lt=0.2)  /  zt.lookup(fingerprint)")

    if tracker.location.kind == "sqlite":
        reader = textwrap.dedent(PLAIN_MLMD_READER.format(path=path))
        print("\nRead back with plain ml_metadata (no zentrack code):")
        print(textwrap.indent(reader.strip(), "    "))
        print("  prints:")
        env = dict(os.environ, GLOG_minloglevel="2")
        out = subprocess.run(
            [sys.executable, "-c", reader], capture_output=True, text=True, env=env, check=False
        )
        print(textwrap.indent((out.stdout or out.stderr).strip(), "    "))
        print(f"\nThe store is {path}; `zentrack find --step trainer`, `zentrack runs` and")
        print("`zentrack compare --pipeline training` show it again.")
        print(f"Property layout for plain-MLMD readers: {Path('docs') / 'mlmd.md'}")
    return 0
