"""The input pipeline: the augmentation plan, the cpu engine's crops, the float stage's jitter in
torch and mindspore.ops, both backends' batches from one plan, bad files with both engines'
worker side, 16-bit PNGs, the decoder and worker settings, the workers' shared-memory slots, the
prefetcher and the gpu engine's kernels (in Triton's interpreter without a GPU)."""

from __future__ import annotations

import io
import os
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import compose_config
from fishbench.backends.pytorch.input.nvjpeg import device_decodable_size
from fishbench.config import DatasetConfig, DeviceConfig, RunConfig, validate
from fishbench.data.decode import BadFiles, Crop, SampleSource, pil_decode
from fishbench.data.images import to_rgb
from fishbench.data.index import scan_image_folder
from fishbench.data.plan import AugmentPlan, eval_box
from fishbench.data.spec import load_data_spec, worker_count
from fishbench.data.transforms import EvalTransform, TrainTransform
from fishbench.errors import ConfigError, DataError
from tests.helpers.image_trees import jpeg_tree, photo
from tests.helpers.run_if import RunIf

TRAIN = TrainTransform(32, (0.08, 1.0), (3 / 4, 4 / 3), True, (0.4, 0.4, 0.4, 0.1),
                       (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
EVAL = EvalTransform(40, 32, TRAIN.mean, TRAIN.std)
# Where the Triton kernels run: CUDA, or the CPU in Triton's interpreter (conftest).
KERNEL_DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def test_plan_is_a_pure_function_of_seed_epoch_and_file() -> None:
    plan = AugmentPlan(7, TRAIN)
    a, b = plan.sample(3, 11), AugmentPlan(7, TRAIN).sample(3, 11)
    assert a.box(500, 375) == b.box(500, 375) and (a.vector() == b.vector()).all()
    assert plan.sample(4, 11).box(500, 375) != a.box(500, 375)  # another epoch, another draw
    boxes = [plan.sample(0, f).box(500, 375) for f in range(300)]
    for left, top, right, bottom in boxes:
        assert 0 <= left < right <= 500 and 0 <= top < bottom <= 375
        area, ratio = (right - left) * (bottom - top) / (500 * 375), (right - left) / (bottom - top)
        assert 0.07 <= area <= 1.0 and 0.74 <= ratio <= 1.35
    flips = [plan.sample(0, f).flip for f in range(300)]
    assert 100 < sum(flips) < 200
    orders = {plan.sample(0, f).order for f in range(300)}
    assert len(orders) > 12 and all(sorted(o) == [0, 1, 2, 3] for o in orders)
    b_factors = [plan.sample(0, f).jitter[0] for f in range(300)]
    assert 0.6 <= min(b_factors) and max(b_factors) <= 1.4
    # A box that no try fits (a 400x10 strip) falls back to torchvision's centre crop.
    left, top, right, bottom = plan.sample(0, 0).box(400, 10)
    assert (top, bottom) == (0, 10) and right - left == round(10 * 4 / 3)


def test_eval_box_is_resize_then_centre_crop() -> None:
    assert eval_box(500, 375, EvalTransform(256, 224, (0,) * 3, (1,) * 3)) == (58, 16, 282, 240, 341, 256)
    assert eval_box(8, 8, EvalTransform(32, 32, (0,) * 3, (1,) * 3)) == (0, 0, 32, 32, 32, 32)


def decoders() -> list:
    from fishbench.backends.pytorch.input.cpu_decode import tensor_decode

    return [pil_decode, tensor_decode]


@pytest.mark.parametrize("decode", decoders(), ids=["pil", "torch"])
def test_cpu_engine_crop_equals_a_plain_pil_crop_and_resize(decode) -> None:
    image = photo(3, 640, 480)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    data = buffer.getvalue()
    decoded = Image.open(io.BytesIO(data)).convert("RGB")
    for box in ((0, 0, 640, 480), (100, 50, 260, 170), (500, 300, 540, 350)):
        got = decode(data, lambda w, h, box=box: Crop((w, h), box, 64)).astype(int)
        want = np.asarray(decoded.crop(box).resize((64, 64), Image.BILINEAR)).astype(int)
        assert got.shape == want.shape == (64, 64, 3)
        # JPEG draft decoding (DCT scaling for large boxes) differs from full decoding by a
        # few levels at most on average; torch's resize from PIL's by rounding.
        assert np.abs(got - want).mean() < 2.0, box
    # Evaluation: the whole image resized (short side 80), then the centre 64 x 64 cut.
    got = decode(data, lambda w, h: Crop((107, 80), (21, 8, 85, 72), 64)).astype(int)
    want = np.asarray(decoded.resize((107, 80), Image.BILINEAR).crop((21, 8, 85, 72))).astype(int)
    assert got.shape == (64, 64, 3) and np.abs(got - want).mean() < 1.0


def torchvision_jitter(x: torch.Tensor, factors, order) -> torch.Tensor:
    """The reference: torchvision's own adjust_* functions, one sample at a time."""
    from torchvision.transforms.v2 import functional as F

    ops = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)
    out = []
    for image, f, o in zip(x, factors, order):
        for jid in o:
            image = ops[jid](image, float(f[jid]))
        out.append(image)
    return torch.stack(out)


def stage_case(n: int = 12, hue: float = TRAIN.color_jitter[3]):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    pixels[0] = 128  # a grey image: the flat-chroma branch of the hue
    plan = AugmentPlan(5, replace(TRAIN, color_jitter=(*TRAIN.color_jitter[:3], hue)))
    aug = np.stack([plan.sample(0, f).vector() for f in range(n)])
    assert (aug[:, 4] != 0).all() == (hue > 0)
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
    flipped = torch.where(torch.from_numpy(aug[:, 0] > 0.5).view(-1, 1, 1, 1), x.flip(3), x)
    jittered = torchvision_jitter(flipped, aug[:, 1:5], aug[:, 5:9].astype(int))
    mean, std = torch.tensor(TRAIN.mean).view(1, 3, 1, 1), torch.tensor(TRAIN.std).view(1, 3, 1, 1)
    return pixels, aug, ((jittered - mean) / std).numpy()


@pytest.mark.parametrize("hue", [0.1, 0.0])
@pytest.mark.parametrize("implementation", ["torch_ops", "kernels"])  # kernels: CUDA's
def test_float_stage_equals_torchvision_on_the_same_uint8_input(implementation: str,
                                                               hue: float) -> None:
    from fishbench.backends.pytorch.input.augment import FloatStage

    pixels, aug, want = stage_case(hue=hue)
    stage = FloatStage(TRAIN.mean, TRAIN.std, KERNEL_DEVICE, torch.channels_last,
                       flip=True, jitter=True)
    got = getattr(stage, implementation)(torch.from_numpy(pixels).to(KERNEL_DEVICE),
                                         torch.from_numpy(aug).to(KERNEL_DEVICE))
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert np.abs(got.cpu().numpy() - want).max() < 1e-4


def test_float_stage_kernels_equal_the_torch_ops_without_flip_and_jitter() -> None:
    from fishbench.backends.pytorch.input.augment import FloatStage

    pixels, aug, _ = stage_case()
    stage = FloatStage(EVAL.mean, EVAL.std, KERNEL_DEVICE, torch.contiguous_format,
                       flip=False, jitter=False)
    images, numbers = (torch.from_numpy(a).to(KERNEL_DEVICE) for a in (pixels, aug))
    got, want = stage.kernels(images, numbers), stage.torch_ops(images, numbers)
    assert got.is_contiguous() and (got - want).abs().max() < 1e-5


def configure_mindspore() -> None:
    """MindSpore's device, mode and seed, as a CPU run sets them first (once per process: the
    trainers of later tests need it)."""
    from fishbench.backends.mindspore.device import configure

    configure(validate(compose_config("backend=mindspore")))


@RunIf(mindspore=True)
@pytest.mark.parametrize("hue", [0.1, 0.0])  # hue 0: the stage leaves the hue out
def test_mindspore_float_stage_equals_torchvision_on_the_same_uint8_input(hue: float) -> None:
    from fishbench.backends.mindspore.input.augment import FloatStage

    configure_mindspore()
    pixels, aug, want = stage_case(hue=hue)
    got = FloatStage(TRAIN.mean, TRAIN.std, flip=True, jitter=True)(pixels, aug).asnumpy()
    assert np.abs(got - want).max() < 1e-4


@RunIf(mindspore=True)
@pytest.mark.parametrize("kernels", ["pil", "torch"])
def test_both_backends_get_the_same_batches_from_one_plan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernels: str) -> None:
    """With one decode/resize kernel (PIL) the two backends' batches are equal; with PyTorch's
    own (torch kernels, its default) they differ by the kernels alone: the same files, boxes,
    flips and jitters, under one 8-bit level (0.017 normalised units) on average."""
    from fishbench.backends.mindspore.input.loader import build_batches
    from fishbench.backends.pytorch.input import loaders as torch_loaders

    if kernels == "pil":
        monkeypatch.setattr(torch_loaders, "tensor_decode", pil_decode)
    configure_mindspore()
    root = jpeg_tree(tmp_path)
    cfg = RunConfig(dataset=DatasetConfig(name="imagefolder", root=str(root), image_size=32,
                                          resize_size=40, num_workers=0))
    spec = load_data_spec(cfg)
    settings = dict(batch_size=4, bad_images="stop", seed=3, rank=0, world_size=1,
                    device=torch.device("cpu"), memory_format=torch.contiguous_format)
    torch_train, torch_val = torch_loaders.build_loaders(spec, **settings, bad_files=BadFiles())
    ms_train, ms_val = build_batches(spec, 4, 0, "stop", 3, 0, 1, BadFiles())

    def assert_close(t_img: torch.Tensor, m_img) -> None:
        diff = np.abs(t_img.numpy() - m_img.asnumpy())
        if kernels == "pil":
            assert diff.max() < 1e-4
        else:  # a wrong box, flip or jitter moves whole images by many levels
            assert diff.mean() < 0.02 and np.percentile(diff, 99) < 0.2, (diff.mean(), diff.max())

    for epoch in (0, 1):
        torch_train.sampler.set_epoch(epoch)
        pairs = list(zip(torch_train, ms_train.epoch(epoch)))
        assert len(pairs) == 3  # 12 images in batches of 4: a zip of empty pipelines fails
        for (t_img, t_lab), (m_img, m_lab) in pairs:
            assert t_lab.tolist() == m_lab.tolist()
            assert_close(t_img, m_img)
    val_pairs = list(zip(torch_val, ms_val.epoch(0)))
    assert len(val_pairs) == 3
    for (t_img, _), (m_img, _) in val_pairs:
        assert_close(t_img, m_img)
    # A resumed run (a fresh loader starting at epoch 1) draws what the uninterrupted one did.
    again, _ = torch_loaders.build_loaders(spec, **settings, bad_files=BadFiles())
    again.sampler.set_epoch(1)
    assert torch.equal(next(iter(again))[0], next(iter(torch_train))[0])


@pytest.mark.parametrize("decode", decoders(), ids=["pil", "torch"])
@pytest.mark.parametrize("device_share", [0.0, 1.0], ids=["cpu-engine", "gpu-engine-workers"])
def test_bad_files_skip_or_stop_with_every_engine(tmp_path: Path, device_share: float,
                                                  decode) -> None:
    folder = tmp_path / "x" / "a"
    folder.mkdir(parents=True)
    photo(1).save(folder / "0_good.jpg")
    full = io.BytesIO()
    photo(2).save(full, "JPEG")
    (folder / "1_truncated.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    Image.new("CMYK", (40, 30), (0, 80, 160, 0)).save(folder / "2_cmyk.jpg")
    Image.new("L", (40, 30), 90).save(folder / "3_gray.jpg")
    photo(4).save(folder / "4_png.png")
    (folder / "5_empty.jpg").write_bytes(b"")
    photo(6).save(folder / "6_good.jpg")
    index = scan_image_folder(tmp_path / "x")
    engine = dict(decode=decode, device_share=device_share, device_size=device_decodable_size)
    source = SampleSource(index, "skip", AugmentPlan(1, TRAIN), None, **engine)
    bad, encoded = BadFiles(), set()
    for position in range(len(index)):
        s = source.read(0, position)
        bad.add(index, np.array([s.file]), np.array([s.skipped]), np.array([s.label]))
        if s.encoded:
            encoded.add(Path(index.files[s.file]).name)
            assert s.pixels.tobytes() == Path(index.files[s.file]).read_bytes()
        else:
            assert s.pixels.shape == (32, 32, 3)
    assert sorted(Path(p).name for p in bad.paths) == ["1_truncated.jpg", "5_empty.jpg"]
    # Only whole baseline RGB or gray JPEGs go to nvjpeg; the rest are decoded in the worker.
    assert encoded == ({"0_good.jpg", "3_gray.jpg", "6_good.jpg"} if device_share else set())
    stop = SampleSource(index, "stop", AugmentPlan(1, TRAIN), None, **engine)
    with pytest.raises(DataError, match="1_truncated.jpg.*dataset.bad_images=skip"):
        stop.read(0, 1)


def test_sixteen_bit_png_is_scaled_not_white(tmp_path: Path) -> None:
    levels = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1024)
    Image.fromarray(levels).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as image:
        rgb = np.asarray(to_rgb(image))
    assert rgb.shape == (8, 8, 3) and np.array_equal(rgb[..., 0], (levels >> 8).astype(np.uint8))


def test_gpu_decoder_without_a_gpu_stops_naming_the_key(tmp_path: Path) -> None:
    cfg = RunConfig(dataset=DatasetConfig(name="imagefolder", root=str(tmp_path), decoder="gpu"),
                    device=DeviceConfig(name="cpu"))
    with pytest.raises(ConfigError, match="dataset.decoder=gpu.*Set dataset.decoder=cpu"):
        load_data_spec(cfg)


def test_the_configured_share_of_files_goes_to_nvjpeg(tmp_path: Path) -> None:
    root = jpeg_tree(tmp_path, classes=4, per_class=10)
    spec = load_data_spec(RunConfig(dataset=DatasetConfig(name="imagefolder", root=str(root),
                                                          gpu_decode_share=0.3)))
    assert spec.gpu_decode_share == 0.3
    source = SampleSource(spec.train, "skip", AugmentPlan(1, TRAIN), None,
                          device_share=spec.gpu_decode_share, device_size=device_decodable_size)
    encoded = [source.read(0, p).encoded for p in range(len(spec.train))]
    assert 10 <= sum(encoded) <= 14  # 30% of 40, spread by the golden-ratio hash


def test_workers_hand_over_mixed_batches_in_their_shared_memory_slots_unchanged(
        tmp_path: Path) -> None:
    from torch.utils.data import DataLoader

    from fishbench.backends.pytorch.input.collate import collate
    from fishbench.backends.pytorch.input.dataset import PlanDataset
    from fishbench.backends.pytorch.input.slots import FRESH, WorkerSlots

    root = jpeg_tree(tmp_path, classes=2, per_class=6)
    spec = load_data_spec(RunConfig(dataset=DatasetConfig(name="imagefolder", root=str(root))))
    source = SampleSource(spec.train, "stop", AugmentPlan(1, TRAIN), None, device_share=0.5,
                          device_size=device_decodable_size)
    keys = [(0, p) for p in range(12)]
    loader = DataLoader(PlanDataset(source), batch_size=12, sampler=keys, num_workers=1,
                        collate_fn=partial(collate, slots=WorkerSlots(1, 4)))
    got, want = next(iter(loader)), collate([source.read(*key) for key in keys], WorkerSlots(0, 4))
    assert 0 < len(got.crops) < 12 and got.positions.tolist() == want.positions.tolist()
    for name in ("pixels", "encoded", "positions", "labels", "aug"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    # all in one shared slot from the worker; plain memory when collated in this process
    assert got.slot == 0 and got.pixels.is_shared() and got.storage.nbytes() >= 12 * 32 * 32 * 3
    assert all(getattr(got, n).untyped_storage().data_ptr() == got.storage.data_ptr()
               for n in ("pixels", "positions", "labels", "aug"))
    assert want.slot == FRESH and not want.storage.is_shared()


def test_a_worker_reuses_a_slot_only_after_its_release(monkeypatch: pytest.MonkeyPatch) -> None:
    from fishbench.backends.pytorch.input import slots as slots_module
    from fishbench.backends.pytorch.input.slots import FRESH, WorkerSlots

    slots = WorkerSlots(2, 2)
    assert slots.take(100)[0] == FRESH  # outside a worker: plain memory, no slot
    monkeypatch.setattr(slots_module, "get_worker_info", lambda: worker_info(1))
    (a, first), (b, second) = slots.take(100), slots.take(100)
    assert {a, b} == {2, 3} and first.is_shared() and first.nbytes() >= 100
    assert slots.take(10)[0] == FRESH  # both of worker 1's slots busy: memory of its own
    slots.release(a, first)
    assert slots.take(50) == (a, first)  # the same storage again: nothing new to map
    slots.release(b, second)
    grown, storage = slots.take(1000)  # b is free but too small: it grows
    assert grown == b and storage.nbytes() >= 1000 and storage.data_ptr() != second.data_ptr()
    slots.reset()
    assert slots.take(10)[0] in (a, b)


def worker_info(worker: int) -> SimpleNamespace:
    """What ``get_worker_info()`` says in DataLoader worker ``worker``."""
    return SimpleNamespace(id=worker)


def test_batches_in_reused_slots_stay_intact_while_the_main_process_holds_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torch.utils.data import DataLoader

    from fishbench.backends.pytorch.input.collate import collate
    from fishbench.backends.pytorch.input.dataset import PlanDataset
    from fishbench.backends.pytorch.input.slots import FRESH, WorkerSlots

    root = jpeg_tree(tmp_path, classes=2, per_class=12)
    spec = load_data_spec(RunConfig(dataset=DatasetConfig(name="imagefolder", root=str(root))))
    source = SampleSource(spec.train, "stop", AugmentPlan(1, TRAIN), None)
    keys = [(0, p) for p in range(24)]
    slots = WorkerSlots(1, 5)
    # one batch worked ahead: 2 held + 1 in hand + 1 being filled never need a sixth slot
    loader = DataLoader(PlanDataset(source), batch_size=2, sampler=keys, num_workers=1,
                        collate_fn=partial(collate, slots=slots), prefetch_factor=1)
    mappings = []  # shared memory this process maps when a batch comes in
    map_shared = torch.UntypedStorage._new_shared_fd_cpu
    monkeypatch.setattr(torch.UntypedStorage, "_new_shared_fd_cpu", classmethod(
        lambda cls, *args: mappings.append(args) or map_shared(*args)))
    held, used, batches = [], set(), iter(loader)
    for k in range(len(loader)):
        batch = next(batches)
        assert batch.slot != FRESH and batch.slot not in [h.slot for h in held]
        if k < 2:
            held.append(batch)  # never released
            continue
        used.add(batch.slot)
        slots.release(batch.slot, batch.storage)
        del batch  # only the slots keep its memory mapped here
    # ten batches in the three other slots, each slot mapped here once
    assert len(used) <= 3 and len(mappings) == len(used) + 2
    for k, batch in enumerate(held):
        want = collate([source.read(*key) for key in keys[2 * k:2 * k + 2]], WorkerSlots(0, 1))
        for name in ("pixels", "labels", "aug"):
            assert torch.equal(getattr(batch, name), getattr(want, name)), name


def test_device_batches_from_reused_slots_equal_in_process_ones_over_cut_epochs(
        tmp_path: Path) -> None:
    from fishbench.backends.pytorch.input.loaders import build_loaders

    root = jpeg_tree(tmp_path, classes=2, per_class=12)
    spec = load_data_spec(RunConfig(dataset=DatasetConfig(
        name="imagefolder", root=str(root), image_size=32, resize_size=40)))

    def epochs(workers: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        train, _ = build_loaders(replace(spec, num_workers=workers), batch_size=2,
                                 bad_images="stop", seed=3, rank=0, world_size=1,
                                 device=torch.device("cpu"), memory_format=torch.contiguous_format,
                                 bad_files=BadFiles())
        kept = []
        for epoch, steps in ((0, 3), (1, None), (2, None)):  # the first cut short
            train.sampler.set_epoch(epoch)
            for step, batch in enumerate(train):
                if step == steps:
                    break
                kept.append(batch)  # held to the end, while the slots are reused
        return kept

    got, want = epochs(1), epochs(0)
    assert len(got) == len(want) == 3 + 12 + 12
    for (images, labels), (want_images, want_labels) in zip(got, want):
        assert torch.equal(labels, want_labels) and torch.equal(images, want_images)


def test_auto_workers_share_the_usable_cores() -> None:
    cores = len(os.sched_getaffinity(0))
    assert worker_count("auto", 1) == max(cores - 1, 0)
    assert worker_count("auto", cores) == 0
    assert worker_count(3, 8) == 3


def test_prefetcher_keeps_order_raises_the_threads_error_and_stops() -> None:
    import itertools
    import threading

    from fishbench.backends.pytorch.input.prefetch import Prefetcher

    cpu = torch.device("cpu")

    def double(x: int):
        if x == 7:
            raise DataError("file 7 is unreadable")
        return torch.tensor(2 * x), []

    ahead = Prefetcher(double, range(5), cpu)
    assert [int(t) for t in ahead] == [0, 2, 4, 6, 8]
    ahead.stop()
    failing = Prefetcher(double, range(10), cpu)
    got = []
    with pytest.raises(DataError, match="file 7 is unreadable"):
        for t in failing:
            got.append(int(t))
    assert got == [0, 2, 4, 6, 8, 10, 12]
    failing.stop()
    endless = Prefetcher(lambda x: (x, []), itertools.count(), cpu)
    assert list(itertools.islice(endless, 3)) == [0, 1, 2]
    endless.stop()  # a consumer that stops early: the thread ends, nothing hangs
    assert not endless.thread.is_alive()
    assert all(t.name != "fishbench-prefetch" for t in threading.enumerate())


def pil_float_crop(image: np.ndarray, crop: Crop) -> np.ndarray:
    """PIL's antialiased bilinear crop of a uint8 HWC image, channel by channel in float (no
    rounding): what the cpu engine computes, up to JPEG draft decoding and 8-bit rounding."""
    (rw, rh), box = crop.resized, crop.box
    out = []
    for channel in np.moveaxis(image, -1, 0):
        plane = Image.fromarray(channel.astype(np.float32), mode="F")
        if (rw, rh) == plane.size:
            out.append(plane.resize((crop.size, crop.size), Image.BILINEAR, box=box))
        else:
            out.append(plane.resize((rw, rh), Image.BILINEAR).crop(box))
    return np.stack([np.asarray(o) for o in out], -1)


def kernel_case(size: int = 24) -> tuple[list[np.ndarray], list[Crop]]:
    """Random images with training boxes (inside, at the edges, whole, shrunk 3x, enlarged) and an
    eval crop (the image resized, its centre cut)."""
    rng = np.random.default_rng(3)
    shapes = [(30, 40, (3, 2, 35, 28)), (70, 50, (10, 20, 20, 31)), (29, 31, (0, 0, 31, 29)),
              (80, 90, (5, 9, 90, 80)), (45, 60, (52, 30, 60, 45))]
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w, _ in shapes]
    crops = [Crop((w, h), box, size) for h, w, box in shapes]
    images.append(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8))
    crops.append(Crop((35, 27), (5, 1, 29, 25), size))
    return images, crops


def test_gpu_engine_kernel_crops_and_resizes_as_pil() -> None:
    from fishbench.backends.pytorch.input.resize import crop_resize_into

    images, crops = kernel_case()
    positions = [1, 3, 4, 6, 0, 7]
    batch = torch.full((8, 24, 24, 3), 7, dtype=torch.uint8, device=KERNEL_DEVICE)
    chw = [torch.from_numpy(i).to(KERNEL_DEVICE).permute(2, 0, 1) for i in images]
    chw[0] = chw[0].contiguous()  # the others are views in HWC memory: the kernel copies them
    crop_resize_into(batch, chw, crops, positions)
    got = batch.cpu().numpy().astype(np.float64)
    for image, crop, position in zip(images, crops, positions):
        # Within rounding of PIL's float result: the same taps, weights and sample positions.
        assert np.abs(got[position] - pil_float_crop(image, crop)).max() <= 0.5 + 1e-3
    assert (got[[2, 5]] == 7).all()  # positions not named are left alone


def test_mixed_batches_are_filled_in_batch_order_in_one_layout() -> None:
    from fishbench.backends.pytorch.input.collate import assemble, collate
    from fishbench.backends.pytorch.input.nvjpeg import fill_encoded
    from fishbench.backends.pytorch.input.resize import crop_resize_into
    from fishbench.backends.pytorch.input.slots import WorkerSlots
    from fishbench.data.decode import Sample

    images, crops = kernel_case()
    rng = np.random.default_rng(4)
    workers = {i: rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for i in (0, 4, 7)}
    encoded_at = [1, 2, 3, 5, 6, 8]
    aug = np.zeros(9, np.float32)

    def sample(i: int) -> Sample:
        if i in workers:
            return Sample(workers[i], i, aug, i, 0)
        return Sample(np.frombuffer(b"jpeg bytes", np.uint8), i, aug, i, 0,
                      crops[encoded_at.index(i)])

    mixed = collate([sample(i) for i in range(9)], WorkerSlots(0, 1))
    workers_only = collate([sample(i) for i in (0, 4, 7)], WorkerSlots(0, 1))
    # Only the workers' crops travel as pixels (no empty slots), the rest as bytes.
    assert mixed.pixels.shape == (3, 24, 24, 3) and workers_only.pixels.shape == (3, 24, 24, 3)
    assert mixed.encoded.numel() == 6 * len(b"jpeg bytes") and mixed.encoded_ends[-1] == 60
    assert mixed.encoded_at == encoded_at and mixed.crops == crops
    assert workers_only.encoded_at == [] and workers_only.positions.tolist() == [0, 1, 2]
    # On the device the float stage gets the whole batch in batch order, one contiguous array.
    assert assemble(workers_only.pixels, workers_only.positions) is workers_only.pixels
    chw = [torch.from_numpy(i).to(KERNEL_DEVICE).permute(2, 0, 1).contiguous() for i in images]
    on_device, refused = (assemble(*(t.to(KERNEL_DEVICE) for t in (mixed.pixels, mixed.positions)))
                          for _ in range(2))
    assert on_device.shape == (9, 24, 24, 3) and on_device.is_contiguous()
    fill_encoded(on_device, crops, mixed.encoded_at, chw,
                 lambda: pytest.fail("nvjpeg did not refuse these"))
    host_crops = np.stack([np.full((24, 24, 3), k, np.uint8) for k in range(6)])
    fill_encoded(refused, crops, mixed.encoded_at, None, lambda: host_crops)
    want = torch.zeros((9, 24, 24, 3), dtype=torch.uint8, device=KERNEL_DEVICE)
    crop_resize_into(want, chw, crops, encoded_at)
    for i, pixels in workers.items():
        want[i] = torch.from_numpy(pixels)
        assert np.array_equal(refused[i].cpu().numpy(), pixels)
    assert torch.equal(on_device, want)
    assert [int(refused[i, 0, 0, 0]) for i in encoded_at] == list(range(6))
