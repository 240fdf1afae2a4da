"""Dataset parsing by naming rules, transforms and the PK sampler, on real image files."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch

from training.data.datasets import DATASETS, build_dataset, parse_identity_folders
from training.data.sampler import RandomIdentitySampler
from training.data.transforms import (
    PadCrop,
    RandomErasing,
    RandomHorizontalFlip,
    build_transforms,
    read_rgb,
)
from training.errors import DataError


@pytest.fixture(scope="module")
def crop(market_root):
    return market_root / "query" / "0001_c1s1_001051_00.jpg"


def _put(src, folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        shutil.copy(src, folder / n)


def test_market1501_naming_junk_and_distractors(tmp_path, crop):
    root = tmp_path / "Market-1501-v15.09.15"
    _put(crop, root / "bounding_box_train", "0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg",
         "0007_c6s2_000100_00.jpg", "-1_c1s1_000001_00.jpg", "0000_c3s1_000002_00.jpg", "Thumbs.db")
    _put(crop, root / "query", "0001_c6s1_009601_00.jpg")
    _put(crop, root / "bounding_box_test", "0001_c1s1_001051_00.jpg", "0000_c2s1_000010_00.jpg",
         "-1_c1s1_000020_00.jpg")
    data = build_dataset("market1501", tmp_path)  # the parent folder is accepted too
    assert [(p.split("/")[-1], pid, cam) for p, pid, cam in data.train] == [
        ("0002_c1s1_000451_03.jpg", 0, 0), ("0002_c2s1_000301_01.jpg", 0, 1),
        ("0007_c6s2_000100_00.jpg", 1, 5)]
    assert [(pid, cam) for _, pid, cam in data.query] == [(1, 5)]
    # Junk (-1) dropped; the distractor 0000 stays in the gallery as in the official protocol.
    assert sorted((pid, cam) for _, pid, cam in data.gallery) == [(0, 1), (1, 0)]
    assert data.num_train_pids == 2 and data.num_train_cams == 3
    assert "train          3 images      2 ids" in data.summary()


def test_market_errors_name_the_file(tmp_path, crop):
    with pytest.raises(DataError, match=f"{tmp_path}: not a market1501 folder"):
        build_dataset("market1501", tmp_path)
    _put(crop, tmp_path / "bounding_box_train", "person_one.jpg")
    (tmp_path / "query").mkdir()
    (tmp_path / "bounding_box_test").mkdir()
    with pytest.raises(DataError, match=r"person_one\.jpg: file name does not follow the market1501 rule"):
        build_dataset("market1501", tmp_path)


@pytest.mark.parametrize("version,train_dir,test_dir", [("MSMT17_V1", "train", "test"),
                                                        ("MSMT17_V2", "mask_train_v2", "mask_test_v2")])
def test_msmt17_list_files(tmp_path, crop, version, train_dir, test_dir):
    base = tmp_path / version
    _put(crop, base / train_dir / "0000", "0000_000_01_0303morning_0015_0.jpg")
    _put(crop, base / train_dir / "0005", "0005_011_14_0303noon_0100_1.jpg")
    _put(crop, base / test_dir / "0003", "0003_000_05_0303afternoon_0002_0.jpg",
         "0003_004_15_0303noon_0201_1.jpg")
    (base / "list_train.txt").write_text("0000/0000_000_01_0303morning_0015_0.jpg 0\n")
    (base / "list_val.txt").write_text("0005/0005_011_14_0303noon_0100_1.jpg 5\n")
    (base / "list_query.txt").write_text("0003/0003_000_05_0303afternoon_0002_0.jpg 3\n")
    (base / "list_gallery.txt").write_text("0003/0003_004_15_0303noon_0201_1.jpg 3\n\n")
    data = build_dataset("msmt17", tmp_path)
    assert [(pid, cam) for _, pid, cam in data.train] == [(0, 0), (1, 13)]  # train + val, relabelled
    assert [(pid, cam) for _, pid, cam in data.query] == [(3, 4)]
    assert [(pid, cam) for _, pid, cam in data.gallery] == [(3, 14)]
    assert all(__import__("os").path.isfile(p) for p, _, _ in data.train + data.query + data.gallery)
    (base / "list_query.txt").write_text("broken line\n")
    with pytest.raises(DataError, match=r"list_query\.txt:1: expected"):
        build_dataset("msmt17", tmp_path)


def test_cuhk03_np_detected_and_labeled(tmp_path, crop):
    for kind in ("detected", "labeled"):
        base = tmp_path / "cuhk03-np" / kind
        _put(crop, base / "bounding_box_train", "0001_c1_1.png", "0001_c2_2.png")
        _put(crop, base / "query", "0003_c1_1.png")
        _put(crop, base / "bounding_box_test", "0003_c2_2.png")
    data = build_dataset("cuhk03_np_labeled", tmp_path)
    assert data.name == "cuhk03_np_labeled" and [c for _, _, c in data.train] == [0, 1]
    assert build_dataset("cuhk03_np_detected", tmp_path / "cuhk03-np").query[0][1:] == (3, 0)


def test_generic_layout_camera_rules(tmp_path, crop):
    _put(crop, tmp_path / "alice", "c3_f000120.jpg", "x_c2s1.jpg", "plain.jpg")
    _put(crop, tmp_path / "bob" / "cam7", "a.jpg")
    _put(crop, tmp_path / "bob" / "entrance", "b.jpg")
    items = {(p.split(str(tmp_path) + "/")[1], pid, cam) for p, pid, cam in parse_identity_folders(tmp_path)}
    assert items == {("alice/c3_f000120.jpg", 0, 3), ("alice/x_c2s1.jpg", 0, 2), ("alice/plain.jpg", 0, 0),
                     ("bob/cam7/a.jpg", 1, 7), ("bob/entrance/b.jpg", 1, 8)}
    data = build_dataset("generic", tmp_path)
    assert data.num_train_pids == 2 and not data.query
    split = tmp_path / "split"
    _put(crop, split / "train" / "p1", "c1_a.jpg")
    _put(crop, split / "query" / "zed", "c1_q.jpg")
    _put(crop, split / "gallery" / "zed", "c2_g.jpg")
    _put(crop, split / "gallery" / "amy", "c2_h.jpg")
    data = build_dataset("generic", split)
    assert data.query[0][1] == data.gallery[1][1] != data.gallery[0][1]
    with pytest.raises(DataError, match="no images in identity sub-folders"):
        build_dataset("generic", tmp_path / "bob" / "cam7")


def test_dataset_registry_lists_valid_names():
    assert set(DATASETS) == {"market1501", "dukemtmcreid", "msmt17", "cuhk03_np_detected",
                             "cuhk03_np_labeled", "generic"}
    with pytest.raises(KeyError, match="unknown dataset 'duke'; valid datasets: cuhk03_np_detected"):
        build_dataset("duke", ".")


def test_test_transform_is_resize_and_normalise(crop):
    img = read_rgb(str(crop))
    assert img.shape == (128, 64, 3)
    x = build_transforms(256, 128, train=False)(img)
    want = (cv2.resize(img, (128, 256), interpolation=cv2.INTER_LINEAR) / 255.0 - [0.485, 0.456, 0.406]) \
        / [0.229, 0.224, 0.225]
    assert x.dtype == torch.float32 and x.shape == (3, 256, 128)
    np.testing.assert_allclose(x.numpy(), want.transpose(2, 0, 1), atol=1e-5)
    with pytest.raises(DataError, match="nope.jpg: cannot read this image file"):
        read_rgb("nope.jpg")


def test_train_transforms_are_random_but_seeded(crop):
    img = read_rgb(str(crop))
    tf = build_transforms(128, 64, train=True, color_jitter=True)
    torch.manual_seed(3)
    a = [tf(img) for _ in range(4)]
    torch.manual_seed(3)
    b = [tf(img) for _ in range(4)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(a[0], x) for x in a[1:])
    assert np.array_equal(RandomHorizontalFlip(1.0)(img), img[:, ::-1])
    assert PadCrop(10)(img).shape == img.shape
    t = torch.zeros(3, 128, 64)
    erased = RandomErasing(p=1.0, value=(1.0, 2.0, 3.0))(t)
    changed = (erased != 0).any(0)
    assert 0.02 * 128 * 64 <= changed.sum() <= 0.4 * 128 * 64 + 200
    ys, xs = torch.nonzero(changed, as_tuple=True)
    assert changed[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()  # one rectangle
    assert torch.equal(erased[:, ys[0], xs[0]], torch.tensor([1.0, 2.0, 3.0]))


def test_pk_sampler_batches_hold_p_ids_of_k_images():
    pids = [i // 5 for i in range(40)] + [8, 8]  # 8 ids with 5 images, id 8 with 2 (sampled with replacement)
    s = RandomIdentitySampler(pids, batch_size=12, num_instances=3, seed=0)
    s.set_epoch(0)
    order = list(s)
    assert len(order) % 12 == 0 and len(order) >= 24
    for b in range(0, len(order), 12):
        batch = [pids[i] for i in order[b:b + 12]]
        counts = {p: batch.count(p) for p in set(batch)}
        assert len(counts) == 4 and set(counts.values()) == {3}
    assert list(s) == order  # same epoch, same order
    s.set_epoch(1)
    assert list(s) != order
    with pytest.raises(ValueError, match="multiple of num_instances"):
        RandomIdentitySampler(pids, batch_size=10, num_instances=3)
    with pytest.raises(ValueError, match="2 identities cannot fill batches"):
        RandomIdentitySampler([0, 0, 1, 1], batch_size=12, num_instances=3)
