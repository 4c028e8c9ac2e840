"""Shared fixtures and helpers: the repo's paths, a digits cache per test session, small digits
trees, the runs several tests read (the default job, a tiny run), runners of `run.py` and
`fishbench`, the composed config, tiny trainers."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest
import torch
from omegaconf import DictConfig

# The Triton kernels (the gpu engine's crop-resize, the float stage on CUDA) run in Triton's
# interpreter on CPU tensors where there is no CUDA; Triton reads this when a module defines them.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IMAGENET_SAMPLE = SHARED / "data" / "imagenet-sample"
# Tiny but real training: 32x32 digits, a few steps per epoch.
TINY = ["epochs=1", "batch_size=16", "max_steps_per_epoch=3", "log_every_n_steps=1",
        "warmup_epochs=0"]
SMALL_TRAIN_PER_CLASS = 16  # digits_small_train's train split
SMALL_VAL_PER_CLASS = 6  # digits_small_val's val split


# The suite runs in xdist workers (pyproject's addopts: -n 2): each worker keeps to a core of
# its own, which the runs it starts inherit, so two workers never fight over the same cores.
NODE_CORES = frozenset(os.sched_getaffinity(0))


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ...
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker is not None and len(NODE_CORES) >= workers:
        cores = sorted(NODE_CORES)
        share = len(cores) // workers
        index = int(worker.removeprefix("gw"))
        os.sched_setaffinity(0, cores[index * share:(index + 1) * share])
        torch.set_num_threads(share)


# The test files that read the default job's run: one worker runs them all, so that no worker
# waits idle for the run another one trains.
DEFAULT_RUN_READERS = ("test_run.py", "test_world.py")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A worker takes a whole group (``--dist loadgroup``): a test file (its module fixtures
    built once), or the default run's readers together."""
    for item in items:
        group = ("default_run" if item.path.name in DEFAULT_RUN_READERS
                 else str(item.path.relative_to(REPO)))
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture
def node_cores() -> Iterator[None]:
    """All the node's cores for this test and the processes it starts (a test of how runs
    share the cores), not just its worker's."""
    own = os.sched_getaffinity(0)
    os.sched_setaffinity(0, NODE_CORES)
    yield
    os.sched_setaffinity(0, own)


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    with open(lock_file, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A directory that ``build(dir)`` fills once per test session: under xdist the first worker
    to ask builds it, in the folder all workers share, while the others wait for it."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        path = factory.mktemp(name)
        build(path)
        return path
    shared = factory.getbasetemp().parent
    path, done = shared / name, shared / f"{name}.done"
    with _exclusive(shared / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            build(path)
            done.touch()
    return path


@pytest.fixture(scope="session")
def fishbench_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache dir, the digits tree written, for the whole session, also for subprocesses."""
    from fishbench.data.digits import ensure_digits_tree

    cache = built_once(tmp_path_factory, "cache", lambda path: ensure_digits_tree(path / "digits"))
    os.environ["FISHBENCH_CACHE"] = str(cache)
    return cache


@pytest.fixture(scope="session")
def digits_small_train(tmp_path_factory: pytest.TempPathFactory, fishbench_cache: Path) -> Path:
    """The digits tree (``dataset.root=...``) with the first 16 train images of each class (160)
    and the whole val split (360): a whole training epoch at a ninth of the cost, each split of
    2 or 8 ranks an equal shard."""
    from tests.helpers.image_trees import digits_subset

    return built_once(tmp_path_factory, "digits_small_train", lambda path: digits_subset(
        fishbench_cache / "digits", path, SMALL_TRAIN_PER_CLASS, None))


@pytest.fixture(scope="session")
def digits_small_val(tmp_path_factory: pytest.TempPathFactory, fishbench_cache: Path) -> Path:
    """The digits tree (``dataset.root=...``) with the whole train split and the first 6 val
    images of each class (60): every evaluation of a run short."""
    from tests.helpers.image_trees import digits_subset

    return built_once(tmp_path_factory, "digits_small_val", lambda path: digits_subset(
        fishbench_cache / "digits", path, None, SMALL_VAL_PER_CLASS))


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory, fishbench_cache: Path) -> Path:
    """`python run.py` exactly as the README's first command runs it (FishNet99, 3 digits
    epochs): its checkpoints are trained weights for tests that need a model of varied,
    mostly right predictions."""
    return built_once(tmp_path_factory, "default", lambda path: run_cli(
        [f"hydra.run.dir={path}"], timeout=1800))  # minutes on a slow core


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, fishbench_cache: Path) -> Path:
    """One real `python run.py epochs=1`, capped at 3 steps of 16 (FishNet99 on digits, the
    default warm-up shortened to none), that tests read and never change: one that resumes or
    extends it works on a copy."""
    return built_once(tmp_path_factory, "tiny", lambda path: run_cli(
        ["epochs=1", "batch_size=16", "max_steps_per_epoch=3", "log_every_n_steps=1",
         f"hydra.run.dir={path / 'run'}"])) / "run"


def run_cli(args: list[str], cwd: Path = REPO, check: bool = True,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python run.py ARGS` for real; the caller passes hydra.run.dir or hydra.sweep.dir."""
    proc = subprocess.run([sys.executable, str(REPO / "run.py"), *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, env=os.environ.copy())
    if check and proc.returncode != 0:
        raise AssertionError(f"run.py {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def fishbench_cli(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `fishbench ARGS` for real with this checkout's code (the installed script may not
    be)."""
    return subprocess.run([sys.executable, "-c", "import sys; from fishbench.cli import main; "
                           "sys.exit(main())", *args], cwd=REPO, text=True, capture_output=True,
                          timeout=timeout, env=os.environ.copy())


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def compose_config(*overrides: str, hydra: bool = False) -> DictConfig:
    """The config `python run.py OVERRIDES` composes (and its ``hydra`` node when asked), before
    validation; ``validate()`` of it is the typed config a run gets."""
    from hydra import compose, initialize_config_dir

    from fishbench.config import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


@pytest.fixture(scope="module")
def single_torch_thread():
    """One torch intra-op thread for a test module (request it with
    ``pytestmark = pytest.mark.usefixtures("single_torch_thread")``): tiny inputs on a shared
    CPU, where more threads only add contention. Restores the thread count afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_trainer(trainer_class, **settings):
    """A ``trainer_class`` over 8 synthetic 32x32 images of 4 classes, batch 4; ``settings``
    are config keys merged over that (nested dicts merge)."""
    from omegaconf import OmegaConf

    from fishbench.config import validate
    from fishbench.data.spec import load_data_spec

    cfg = validate(OmegaConf.merge(OmegaConf.create({"batch_size": 4, "dataset": {
        "name": "synthetic", "num_classes": 4, "image_size": 32, "resize_size": 32,
        "train_samples": 8, "val_samples": 4}}), OmegaConf.create(settings)))
    spec = load_data_spec(cfg)
    cfg.model.num_classes = spec.num_classes
    return trainer_class(cfg, spec)


def n_params(model) -> int:
    """Number of parameters (elements) of a torch.nn.Module."""
    return sum(p.numel() for p in model.parameters())


from tests.helpers.stub_backend import hydra_run  # noqa: E402,F401  (run-level tests' fixture)


@pytest.fixture(scope="session")
def mindspore_cpu() -> None:
    """MindSpore's device set for this test process as a run sets it, before any MindSpore
    kernel runs: it cannot be set after one has (request it in every test that runs MindSpore)."""
    from omegaconf import OmegaConf

    from fishbench.backends.mindspore.device import configure
    from fishbench.config import validate

    configure(validate(OmegaConf.create({"backend": {"name": "mindspore"}})))
