"""The decoded-image store (gankit/data/store.py): exact pixels, one decode per folder and key,
invalidation, killed writers, parallel decoding, and images that stay in the mapped file.

GANKIT_CACHE points into tmp_path, so the tests never read or write the home cache.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import DataConfig
from gankit.data import ImageData, load_dataset
from gankit.data import folder as folder_module
from gankit.data import store
from gankit.data.image import Preprocess, to_channels
from gankit.errors import GankitError
from gankit.metrics.memorisation import pool_pixels


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    cache = tmp_path / "gankit-cache"
    monkeypatch.setenv("GANKIT_CACHE", str(cache))
    return cache / "datasets"


@pytest.fixture
def decodes(monkeypatch):
    """The files decoded in this process since the test began (decoding in-process: workers=1)."""
    seen = []
    original = folder_module.decode_file

    def counting(path, preprocess, box):
        seen.append(path.name)
        return original(path, preprocess, box)

    monkeypatch.setattr(folder_module, "decode_file", counting)
    return seen


def make_images(folder, n, size=(12, 9), seed=0, grey_every=0):
    """n noisy images of varied modes; every grey_every-th one greyscale."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        w, h = size
        if grey_every and i % grey_every == 0:
            Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L").save(folder / f"{i:04d}.png")
        else:
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def load(source, **options) -> ImageData:
    return load_dataset(DataConfig(source=str(source), workers=options.pop("workers", 1), **options),
                        progress=False)


def stores(cache_dir):
    return sorted(cache_dir.glob("*.gkimg"))


@pytest.mark.parametrize("crop", ["center", "random"])
def test_the_store_holds_exactly_the_decoded_pixels(tmp_path, crop):
    folder = make_images(tmp_path / "images", 7, grey_every=3)  # grey and colour: stored as RGB
    data = load(folder, size=6, crop=crop)
    preprocess = Preprocess.from_config(DataConfig(size=6, crop=crop))
    expected = [to_channels(folder_module.decode_file(path, preprocess, None), 3)
                for path in sorted(folder.iterdir())]
    assert data.channels == 3 and len(data) == 7
    assert all(torch.equal(a, b) for a, b in zip(data.images, expected))
    if crop == "center":
        assert torch.equal(data.images, torch.stack(expected))
    # the same images without the store, decoded into memory as before it existed
    memory = load(folder, size=6, crop=crop, cache=False)
    assert all(torch.equal(a, b) for a, b in zip(memory.images, data.images))
    # other channels: a sibling store, converted from the first, equal to converting in memory
    grey = load(folder, size=6, crop=crop, channels=1)
    assert all(torch.equal(a, to_channels(b, 1)) for a, b in zip(grey.images, expected))


def test_a_second_load_maps_the_store_without_decoding(tmp_path, cache_dir, decodes):
    folder = make_images(tmp_path / "images", 5)
    first = load(folder, size=4)
    assert len(decodes) == 5 and len(stores(cache_dir)) == 1
    second = load(folder, size=4)
    assert len(decodes) == 5  # nothing decoded again
    assert torch.equal(first.images, second.images)
    load(folder, size=4, channels=1)  # a sibling store, converted, not decoded
    load(folder, size=4, channels=1)
    assert len(decodes) == 5 and len(stores(cache_dir)) == 2


def test_a_changed_or_added_file_decodes_again(tmp_path, decodes):
    folder = make_images(tmp_path / "images", 3)
    load(folder, size=4)
    Image.new("RGB", (12, 9), (1, 2, 3)).save(folder / "0001.png")  # new content, size or mtime
    assert load(folder, size=4).images[1, :, 0, 0].tolist() == [1, 2, 3]
    assert len(decodes) == 6
    Image.new("RGB", (12, 9), (4, 5, 6)).save(folder / "0003.png")
    assert len(load(folder, size=4)) == 4 and len(decodes) == 10
    load(folder, size=5)  # a pixel-changing option
    assert len(decodes) == 14


def test_a_killed_writer_leaves_nothing_that_is_read(tmp_path, cache_dir, decodes):
    """A process killed in the middle of writing the store: its temporary file is never read, the
    next load decodes everything and removes it."""
    folder = make_images(tmp_path / "images", 6)
    script = textwrap.dedent(f"""
        import os, signal
        from gankit.config import DataConfig
        from gankit.data import folder, load_dataset
        original, count = folder.decode_file, [0]
        def dying(*args):
            count[0] += 1
            if count[0] == 4:  # three images written, the fourth never
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args)
        folder.decode_file = dying
        load_dataset(DataConfig(source={str(folder)!r}, size=4, workers=1), progress=False)
    """)
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "GANKIT_CACHE": str(cache_dir.parent)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    (tmp,) = cache_dir.glob(".*.tmp")
    assert tmp.exists() and not stores(cache_dir)  # (its bytes may still be in a buffer)
    data = load(folder, size=4)
    assert len(data) == 6 and len(decodes) == 6
    assert not list(cache_dir.glob(".*.tmp")) and len(stores(cache_dir)) == 1


def test_a_torn_store_is_rebuilt(tmp_path, cache_dir, decodes):
    folder = make_images(tmp_path / "images", 3)
    expected = load(folder, size=4).images.clone()
    (path,) = stores(cache_dir)
    whole = path.read_bytes()
    path.write_bytes(whole[:-20])  # the end of the index lost
    with pytest.warns(UserWarning, match="unreadable dataset store"):
        assert torch.equal(load(folder, size=4).images, expected)
    assert path.read_bytes() == whole and len(decodes) == 6


def test_two_workers_write_the_same_bytes_as_one(tmp_path, monkeypatch):
    folder = make_images(tmp_path / "images", 40, grey_every=7)
    (folder / "0005.png").write_bytes(b"not an image")  # a damaged file: skipped in both
    monkeypatch.setattr(folder_module, "MIN_FILES_PER_WORKER", 1)  # a pool even for 40 files
    spooled = []  # the workers' chunk files the parent read (their pixels skip the pool's pipe)
    original = folder_module._read_spool

    def reading(file):
        spooled.append(file)
        pixels = original(file)
        assert not file.exists()  # removed as soon as it is read: the spool does not double the disk
        return pixels

    monkeypatch.setattr(folder_module, "_read_spool", reading)
    files = {}
    for workers in (1, 2):
        monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / f"cache-{workers}"))
        with pytest.warns(UserWarning, match="skipped 1 of 40"):
            data = load(folder, size=6, labels=False, workers=workers, limit=39)
        assert len(data) == 39
        (files[workers],) = (tmp_path / f"cache-{workers}" / "datasets").glob("*.gkimg")
        assert not list(files[workers].parent.glob("*.tmp"))  # spool files removed once read
    assert files[1].name == files[2].name  # workers are not part of the key
    assert files[1].read_bytes() == files[2].read_bytes()
    assert len(spooled) > 1 and all(".gkimg." in file.name for file in spooled)


def _spool_then_fail(task):
    """A decode worker whose disk fills up halfway through its chunk file."""
    file = task[0]
    file.write_bytes(b"\0" * 100)
    raise OSError(28, "No space left on device")


def test_a_worker_that_cannot_spool_falls_back_to_memory_and_leaves_nothing(tmp_path, cache_dir, monkeypatch):
    folder = make_images(tmp_path / "images", 40)
    monkeypatch.setattr(folder_module, "MIN_FILES_PER_WORKER", 1)
    monkeypatch.setattr(folder_module, "_decode_to_file", _spool_then_fail)  # the forked workers see it
    with pytest.warns(UserWarning, match="could not write the dataset store .*No space left"):
        data = load(folder, size=6, workers=2)
    assert not stores(cache_dir) and not list(cache_dir.glob(".*.tmp"))
    assert torch.equal(data.images, load(folder, size=6, cache=False).images)


def test_two_processes_decode_a_folder_once_between_them(tmp_path, cache_dir):
    """As two ranks of a torchrun job: one decodes, the other waits for the lock and maps."""
    folder = make_images(tmp_path / "images", 30)
    script = textwrap.dedent(f"""
        from gankit.config import DataConfig
        from gankit.data import folder, load_dataset
        original, count = folder.decode_file, [0]
        def counting(*args):
            count[0] += 1
            return original(*args)
        folder.decode_file = counting
        data = load_dataset(DataConfig(source={str(folder)!r}, size=4, workers=1), progress=False)
        print("decoded", count[0], "loaded", len(data))
    """)
    env = {**os.environ, "GANKIT_CACHE": str(cache_dir.parent)}
    ranks = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [rank.communicate(timeout=180) for rank in ranks]
    assert all(rank.returncode == 0 for rank in ranks), outputs
    counts = [int(out.split()[1]) for out, _ in outputs]
    assert sorted(counts) == [0, 30] and all("loaded 30" in out for out, _ in outputs)


def _mapping_of(tensor: torch.Tensor) -> str | None:
    """The file whose mapping holds `tensor`'s first byte, from /proc/self/maps."""
    address = tensor.data_ptr()
    for line in open("/proc/self/maps"):
        fields = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if start <= address < end:
            return fields[5].strip() if len(fields) == 6 else None
    return None


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads Linux's /proc/self/maps")
def test_the_images_are_the_mapped_file_not_a_copy(tmp_path, cache_dir):
    folder = make_images(tmp_path / "images", 300, size=(40, 40))
    data = load(folder, size=32, workers=2)
    (path,) = stores(cache_dir)
    assert data.images.shape == (300, 3, 32, 32)
    assert _mapping_of(data.images) == str(path) and _mapping_of(data.images[-1]) == str(path)
    # the training / held-out split keeps the mapping: rows of it, not copies
    train, held = data.split(0.1)
    assert train.images.data_ptr() == held.images.data_ptr() == data.images.data_ptr()
    assert len(train) == 270 and len(held) == 30
    assert torch.equal(train.batch(torch.tensor([0, 5])), data.batch(train.rows[torch.tensor([0, 5])]))
    assert torch.equal(pool_pixels(held), data.images[held.rows])
    assert _mapping_of(pool_pixels(data)) == str(path)  # `gankit nearest`: no copy of the whole set
    # a contiguous subset is a view
    first = data.subset(torch.arange(10, 20))
    assert first.rows is None and _mapping_of(first.images) == str(path)


def test_subsets_of_subsets_and_labels(tmp_path):
    for klass in ("cat", "dog"):
        make_images(tmp_path / "images" / klass, 4, seed=len(klass) + ord(klass[0]))
    data = load(tmp_path / "images", size=4, labels=True)
    assert data.labels.tolist() == [0] * 4 + [1] * 4 and data.class_names == ["cat", "dog"]
    part = data.subset(torch.tensor([7, 1, 4]))
    assert part.rows.tolist() == [7, 1, 4] and part.labels.tolist() == [1, 0, 1]
    inner = part.subset(torch.tensor([2, 0]))
    assert inner.rows.tolist() == [4, 7] and inner.labels.tolist() == [1, 1]
    assert torch.equal(inner.batch(torch.arange(2)), data.batch(torch.tensor([4, 7])))
    assert torch.equal(inner.pixels(), data.images[[4, 7]])


def test_a_store_that_cannot_be_written_falls_back_to_memory(tmp_path, cache_dir, monkeypatch):
    folder = make_images(tmp_path / "images", 3)

    def full(self, image):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.Writer, "add", full)
    with pytest.warns(UserWarning, match="could not write the dataset store .*No space left"):
        data = load(folder, size=4)
    assert len(data) == 3 and not stores(cache_dir) and not list(cache_dir.glob(".*.tmp"))
    assert torch.equal(data.images, load(folder, size=4, cache=False).images)


def test_workers_must_be_positive():
    from gankit.errors import GankitError
    from gankit.resolve import resolve_config

    with pytest.raises(GankitError, match="data.workers=0 must be at least 1"):
        resolve_config({"data": {"workers": 0}})


def test_the_next_writer_removes_the_spool_files_of_a_killed_one(tmp_path, cache_dir):
    """A decode interrupted by a kill leaves its spool files; whoever takes the lock next removes them."""
    path = cache_dir / "images-0123.gkimg"
    path.parent.mkdir(parents=True)
    left = store.Writer(path).scratch("decoded7")  # named by the writer, written by a decode worker
    left.write_bytes(b"pixels of a chunk")
    assert left.name.endswith(".tmp") and left.name.startswith(f".{path.name}.{os.getpid()}-")
    with store.locked(path):
        assert not left.exists()


def _die(task):
    """A decode worker killed mid-chunk, as by the OOM killer."""
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_decode_worker_that_dies_ends_in_one_error_not_a_hang(tmp_path, cache_dir, monkeypatch):
    folder = make_images(tmp_path / "images", 40)
    monkeypatch.setattr(folder_module, "MIN_FILES_PER_WORKER", 1)
    monkeypatch.setattr(folder_module, "_decode_to_file", _die)  # the forked workers see it
    with pytest.raises(GankitError, match=r"processes decoding the images died .*--set data.workers=1"):
        load(folder, size=6, workers=2)
    assert not stores(cache_dir) and not list(cache_dir.glob(".*.tmp"))
    monkeypatch.undo()
    monkeypatch.setenv("GANKIT_CACHE", str(cache_dir.parent))
    assert len(load(folder, size=6, workers=1)) == 40  # the lock was released: the next run decodes
