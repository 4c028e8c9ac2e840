"""The training stream: one loader iteration over a run's epochs gives exactly the batches of
one iteration per epoch (both backends), its workers carry on across the epochs and stop with
it."""

from __future__ import annotations

import multiprocessing
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from fishbench.config import RunConfig, validate
from fishbench.data.decode import BadFiles
from fishbench.data.spec import DataSpec, load_data_spec
from tests.helpers.run_if import RunIf

STEPS = 3  # batches per epoch: max_steps_per_epoch cuts the 89 batches of 16 digits


def digits_config(cache: Path, workers: int, **run) -> RunConfig:
    """The digits at 32 px with flips and colour jitter, so that every part of the plan shows."""
    dataset = {"name": "digits", "root": str(cache / "digits"), "num_classes": 10,
               "image_size": 32, "resize_size": 32, "num_workers": workers, "decoder": "cpu",
               "bad_images": "stop"}
    return validate(OmegaConf.create({"dataset": dataset, "batch_size": 16, **run}))


def per_epoch_and_stream(backend: str, spec: DataSpec, epochs: range) -> tuple[list, list]:
    """The first :data:`STEPS` train batches of each of ``epochs`` as NumPy ``(images,
    labels)``: from one iteration per epoch, and from one stream over them (fresh loaders)."""
    if backend == "pytorch":
        from fishbench.backends.pytorch.input.loaders import build_loaders

        def split():
            return build_loaders(spec, batch_size=16, bad_images="stop", seed=5, rank=0,
                                 world_size=1, device=torch.device("cpu"),
                                 memory_format=torch.contiguous_format, bad_files=BadFiles())[0]

        def one_epoch(train, epoch: int):
            train.sampler.set_epoch(epoch)
            return iter(train)

        def numpy(batch):
            return batch[0].numpy(), batch[1].numpy()
    else:
        from fishbench.backends.mindspore.device import configure
        from fishbench.backends.mindspore.input.loader import build_batches

        configure(validate(OmegaConf.create({"backend": {"name": "mindspore"}})))

        def split():
            return build_batches(spec, 16, spec.num_workers, "stop", 5, 0, 1, BadFiles())[0]

        def one_epoch(train, epoch: int):
            return train.epoch(epoch)

        def numpy(batch):
            return batch[0].asnumpy(), batch[1]
    per_epoch = split()
    want = [numpy(b) for e in epochs for b in islice(one_epoch(per_epoch, e), STEPS)]
    got = [numpy(b) for b in split().stream(epochs.start, epochs.stop, STEPS)]
    return want, got


@pytest.mark.parametrize("backend", ["pytorch",
                                     pytest.param("mindspore", marks=RunIf(mindspore=True))])
@pytest.mark.parametrize("workers", [0, 2])
def test_one_stream_over_epochs_gives_the_batches_of_one_iteration_per_epoch(
        fishbench_cache: Path, backend: str, workers: int) -> None:
    spec = load_data_spec(digits_config(fishbench_cache, workers))
    assert spec.train_transform.hflip and any(spec.train_transform.color_jitter)
    want, got = per_epoch_and_stream(backend, spec, range(1, 4))  # as a run resumed at 1
    assert len(got) == len(want) == 3 * STEPS
    for (images, labels), (want_images, want_labels) in zip(got, want):
        assert np.array_equal(labels, want_labels) and np.array_equal(images, want_images)
    # each epoch has its own order and crops: no epoch repeats the one before
    assert not np.array_equal(got[0][0], got[STEPS][0])


def loader_workers() -> set[int]:
    return {p.pid for p in multiprocessing.active_children()}


def test_the_trainers_workers_carry_on_across_epochs_and_stop_after_the_last(
        fishbench_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fishbench.backends.pytorch import trainer as trainer_module
    from fishbench.backends.pytorch.input.dataset import EpochSampler
    from fishbench.backends.pytorch.trainer import TorchTrainer
    from fishbench.run.checkpoints import Progress
    from fishbench.run.engine import StepLogger
    from fishbench.run.schedule import LRSchedule

    cfg = digits_config(fishbench_cache, 2, epochs=3, max_steps_per_epoch=2,
                        log_every_n_steps=100, model={"num_classes": 10})
    # what is under test is the input's life, not the model: a linear one trains in no time
    monkeypatch.setattr(trainer_module, "build_model", lambda name, classes: torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, classes)))
    trainer = TorchTrainer(cfg, load_data_spec(cfg))
    iterations = []  # the train loader's iterations, each one's epochs
    sampler_iter = EpochSampler.__iter__
    monkeypatch.setattr(EpochSampler, "__iter__", lambda self: iterations.append(
        self.epochs) or sampler_iter(self))
    schedule, before = LRSchedule(cfg, 2), loader_workers()
    seen = []
    with StepLogger(cfg, None, 16, 2, Progress()) as logger:
        for epoch in range(3):
            trainer.train_epoch(epoch, schedule, 2 * epoch, logger)
            seen.append(loader_workers() - before)
    assert len(seen[0]) == 2 and seen[1] == seen[0]  # the same two workers in epoch 2
    assert seen[2] == set()  # the last epoch's last batch taken: they shut down
    assert iterations == [range(0, 3)]
    trainer.train_epoch(1, schedule, 2, logger)  # out of turn: a stream of its own
    assert iterations[1:] == [range(1, 3)] and len(loader_workers() - before) == 2
    trainer.close()  # what the engine does however training ends
    assert loader_workers() == before
