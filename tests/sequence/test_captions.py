"""The captioner's data layer: vocabulary, the synthetic shapes set, COCO captions, splits, pipelines."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from cs231n_tf.errors import ConfigError, DataError
from cs231n_tf.sequence import CaptioningRNN
from cs231n_tf.sequence.captions import (COLOURS, SHAPES, CaptionData, Vocabulary, load_captions,
                                         load_coco_captions, parse_coco_spec, shape_mask, synthetic_captions,
                                         tokenize)

# --- tokeniser and vocabulary ----------------------------------------------------------------------


def test_tokenize_lowercases_and_splits_on_non_alphanumerics():
    assert tokenize("A red-circle, LEFT of...  the_Blue square!") == \
        ["a", "red", "circle", "left", "of", "the", "blue", "square"]
    assert tokenize("don't stop 2 Cafés") == ["don", "t", "stop", "2", "cafés"]
    assert tokenize("  ...  ") == []


def test_vocabulary_special_ids_and_word_order():
    vocab = Vocabulary.build(["b a a", "c a b", "d"])
    # a x3, b x2, then c and d (x1 each) alphabetically.
    assert vocab.idx_to_word == ["<NULL>", "<START>", "<END>", "<UNK>", "a", "b", "c", "d"]
    assert [vocab.word_to_idx[w] for w in ("<NULL>", "<START>", "<END>", "<UNK>")] == [0, 1, 2, 3]
    assert len(vocab) == 8 and "c" in vocab and "z" not in vocab
    # The course tier's model takes its word_to_idx as is.
    model = CaptioningRNN(vocab.word_to_idx, input_dim=3, wordvec_dim=2, hidden_dim=2)
    assert (model._null, model._start, model._end, model.vocab_size) == (0, 1, 2, 8)


def test_min_count_sends_rare_words_to_unk():
    vocab = Vocabulary.build([["b", "a", "a"], ["c", "a", "b"], ["d"]], min_count=2)
    assert vocab.idx_to_word == ["<NULL>", "<START>", "<END>", "<UNK>", "a", "b"]
    np.testing.assert_array_equal(vocab.encode("a c b d", 5), [1, 4, 3, 5, 3, 2, 0])
    assert vocab.decode(vocab.encode("a c", 5)) == "a <UNK>"


def test_encode_decode_round_trip():
    vocab = Vocabulary.build(["a red circle", "a blue square"])
    ids = vocab.encode("A red, circle", 4)
    assert ids.dtype == np.int32 and ids.shape == (6,)
    a, red, circle = (vocab.word_to_idx[w] for w in ("a", "red", "circle"))
    np.testing.assert_array_equal(ids, [1, a, red, circle, 2, 0])
    assert vocab.decode(ids) == "a red circle"
    assert vocab.decode_tokens(ids) == ["a", "red", "circle"]
    # Stops at <END>; skips <NULL> and <START> wherever they are.
    assert vocab.decode([1, red, 0, circle, 2, a, a]) == "red circle"
    batch = vocab.encode_batch(["a blue square", "red"], 3)
    assert batch.shape == (2, 5)
    assert vocab.decode(batch) == ["a blue square", "red"]
    assert vocab.decode(tf.constant(batch)) == ["a blue square", "red"]
    with pytest.raises(DataError, match=r"word id 99 .* not in the vocabulary \[0, 9\)"):
        vocab.decode([1, 99])


def test_too_long_caption_raises_or_truncates():
    vocab = Vocabulary.build(["a red circle left of a blue square"])
    with pytest.raises(DataError, match=r"caption 'a red circle left of a blue square' has 8 words, more than "
                                        r"max_length=5.*truncate=True"):
        vocab.encode("a red circle left of a blue square", 5)
    ids = vocab.encode("a red circle left of a blue square", 5, truncate=True)
    assert ids.shape == (7,)
    assert vocab.decode(ids) == "a red circle left of"
    assert ids[-1] == 2  # <END> follows the kept words
    np.testing.assert_array_equal(vocab.encode("a red", 2), vocab.encode("a red", 2, truncate=True))


def test_vocabulary_json_round_trip_and_bad_json():
    vocab = Vocabulary.build(["x y y", "z"], min_count=1)
    again = Vocabulary.from_json(json.loads(json.dumps(vocab.to_json())))
    assert again == vocab and again.word_to_idx == vocab.word_to_idx and again.min_count == 1
    with pytest.raises(DataError, match="must start with <NULL>, <START>, <END>, <UNK>"):
        Vocabulary.from_json({"idx_to_word": ["a", "b"]})
    with pytest.raises(DataError, match="'y' twice"):
        Vocabulary.from_json({"idx_to_word": ["<NULL>", "<START>", "<END>", "<UNK>", "y", "y"]})
    with pytest.raises(DataError, match="special token '<END>'"):
        Vocabulary.build([["a", "<END>"]])


# --- the synthetic set -----------------------------------------------------------------------------


def test_synthetic_set_is_deterministic_with_the_right_shapes():
    images, captions = synthetic_captions(num_images=40, seed=3)
    assert images.shape == (40, 64, 64, 3) and images.dtype == np.uint8
    assert len(captions) == 40 and all(len(c) == 3 and len(set(c)) == 3 for c in captions)
    again = synthetic_captions(num_images=40, seed=3)
    np.testing.assert_array_equal(again.images, images)
    assert again.captions == captions
    other = synthetic_captions(num_images=40, seed=4)
    assert not np.array_equal(other.images, images)
    small = synthetic_captions(num_images=5, image_size=32, seed=3)
    assert small.images.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(small.image_ids, np.arange(5))
    with pytest.raises(ConfigError, match="image_size must be an int >= 32"):
        synthetic_captions(num_images=2, image_size=16)


def _shape_of(mask):
    """Circle, square or triangle from how much of its bounding box a mask fills (pi/4, 1, ~1/2)."""
    ys, xs = np.nonzero(mask)
    fill = mask.sum() / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1))
    return "square" if fill > 0.97 else "circle" if fill > 0.665 else "triangle"


MENTION = re.compile(rf"a (?:single )?({'|'.join(COLOURS)}) ({'|'.join(SHAPES)})")
RELATION = re.compile(r" (left of|right of|above|below) a ")


def test_synthetic_captions_are_true_of_their_images():
    data = synthetic_captions(num_images=150, seed=0)
    relations_seen, counts = set(), set()
    for image, captions in zip(data.images, data.captions):
        present = {name for name, rgb in COLOURS.items() if np.all(image == rgb, axis=-1).any()}
        background = np.all(image == 0, axis=-1)
        coloured = np.zeros_like(background)
        for name in present:
            coloured |= np.all(image == COLOURS[name], axis=-1)
        assert np.all(background | coloured)  # no pixel of any other colour
        counts.add(len(present))
        for caption in captions:
            mentions = MENTION.findall(caption)
            assert 1 <= len(mentions) <= 2, caption
            # Every shape in the image is mentioned, and each mention is there with its shape.
            assert {c for c, _ in mentions} == present, caption
            centroids = []
            for colour, shape in mentions:
                mask = np.all(image == COLOURS[colour], axis=-1)
                assert _shape_of(mask) == shape, caption
                ys, xs = np.nonzero(mask)
                centroids.append((ys.mean(), xs.mean()))
            if len(mentions) == 2:
                relation = RELATION.search(caption).group(1)
                relations_seen.add(relation)
                (ya, xa), (yb, xb) = centroids
                dy, dx = yb - ya, xb - xa  # from the first-named shape to the second
                along, across = {"left of": (dx, dy), "right of": (-dx, dy),
                                 "above": (dy, dx), "below": (-dy, dx)}[relation]
                assert along > 0 and abs(across) < along, (caption, centroids)
    assert relations_seen == {"left of", "right of", "above", "below"}
    assert counts == {1, 2}
    assert any("to the left of" in c for caps in data.captions for c in caps)
    assert any(c.startswith("there is ") for caps in data.captions for c in caps)


def test_shape_masks_are_the_described_shapes():
    circle, square, triangle = (shape_mask(s, (32.0, 32.0), 10.0, 64) for s in ("circle", "square", "triangle"))
    assert circle.sum() == 316 and square.sum() == 324 and triangle.sum() == 128
    assert [_shape_of(m) for m in (circle, square, triangle)] == ["circle", "square", "triangle"]
    ys, xs = np.nonzero(triangle)
    assert ys.min() < 32 - 8 and abs(xs.mean() - 32) < 0.6  # apex up, symmetric
    with pytest.raises(ConfigError, match="unknown shape 'star'"):
        shape_mask("star", (3, 3), 2, 8)


# --- COCO captions ---------------------------------------------------------------------------------


def _write_png(path, array):
    tf.io.write_file(str(path), tf.io.encode_png(array))


def _coco_set(root, sizes=((8, 8), (8, 8), (8, 8)), captions=None, gray_last=False):
    """A COCO-style folder: ``images/`` of PNGs and ``captions.json``; returns (ann, dir, arrays)."""
    image_dir = root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, annotations, arrays = [], [], []
    captions = captions or [["A red circle.", "there is a red circle"],
                            ["a blue square left of a green triangle", "a green triangle right of a blue square"],
                            ["a yellow circle", "a single yellow circle"]]
    for k, ((h, w), caps) in enumerate(zip(sizes, captions)):
        image_id = 100 + 7 * k
        name = f"COCO_{image_id:06d}.png"
        channels = 1 if gray_last and k == len(sizes) - 1 else 3
        arr = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
        _write_png(image_dir / name, arr)
        arrays.append(np.repeat(arr, 3, axis=-1) if channels == 1 else arr)
        images.append({"id": image_id, "file_name": name, "height": h, "width": w})
        annotations += [{"image_id": image_id, "id": 1000 + len(annotations), "caption": c} for c in caps]
    ann = root / "captions.json"
    ann.write_text(json.dumps({"info": {}, "images": images, "annotations": annotations}))
    return str(ann), str(image_dir), arrays


def test_coco_loader_round_trip(tmp_path):
    ann, image_dir, arrays = _coco_set(tmp_path, gray_last=True)
    data = load_coco_captions(ann, image_dir)
    assert data.images.shape == (3, 8, 8, 3) and data.images.dtype == np.uint8
    for got, want in zip(data.images, arrays):
        np.testing.assert_array_equal(got, want)  # the grayscale PNG comes back as RGB
    np.testing.assert_array_equal(data.image_ids, [100, 107, 114])
    assert data.file_names == ["COCO_000100.png", "COCO_000107.png", "COCO_000114.png"]
    assert data.captions[1] == ["a blue square left of a green triangle", "a green triangle right of a blue square"]
    images, captions = data
    assert captions[0] == ["A red circle.", "there is a red circle"]


def test_coco_loader_sizes_must_match_unless_resized(tmp_path):
    ann, image_dir, _ = _coco_set(tmp_path, sizes=((8, 8), (6, 10), (8, 8)))
    with pytest.raises(DataError, match=r"COCO_000107.png' is 6x10 but earlier images are 8x8; pass image_size"):
        load_coco_captions(ann, image_dir)
    data = load_coco_captions(ann, image_dir, image_size=(4, 5))
    assert data.images.shape == (3, 4, 5, 3) and data.images.dtype == np.uint8


def _edit_json(ann, edit):
    obj = json.loads(open(ann).read())
    edit(obj)
    with open(ann, "w") as f:
        json.dump(obj, f)


@pytest.mark.parametrize("case, pattern", [
    ("missing_json", r"COCO captions file '.*nope.json' does not exist"),
    ("corrupt_json", r"is not valid JSON: Expecting .* at line 1 column"),
    ("not_an_object", r"must hold a JSON object with 'images' and 'annotations', got a list"),
    ("no_annotations_key", r"lacks key\(s\) 'annotations'"),
    ("image_without_file_name", r"images\[1\] lacks 'file_name'"),
    ("annotation_without_caption", r"annotations\[2\] lacks 'caption'"),
    ("unknown_image_id", r"annotations\[0\] refers to image_id 999, which is not in 'images'"),
    ("image_without_captions", r"1 image\(s\) have no captions: 'COCO_000114.png' \(id 114\)"),
    ("duplicate_image_id", r"image id 100 appears twice"),
    ("empty_caption", r"annotations\[1\] \(image_id 100\) has a caption without words"),
    ("missing_image_file", r"image file '.*COCO_000107.png' of COCO image id 107 does not exist"),
    ("corrupt_image_file", r"cannot decode image '.*COCO_000107.png'"),
    ("missing_image_dir", r"COCO image folder '.*nowhere' does not exist"),
])
def test_coco_loader_bad_input(tmp_path, case, pattern):
    ann, image_dir, _ = _coco_set(tmp_path)
    if case == "missing_json":
        ann = str(tmp_path / "nope.json")
    elif case == "corrupt_json":
        with open(ann, "w") as f:
            f.write('{"images": [}')
    elif case == "not_an_object":
        with open(ann, "w") as f:
            f.write("[1, 2]")
    elif case == "no_annotations_key":
        _edit_json(ann, lambda o: o.pop("annotations"))
    elif case == "image_without_file_name":
        _edit_json(ann, lambda o: o["images"][1].pop("file_name"))
    elif case == "annotation_without_caption":
        _edit_json(ann, lambda o: o["annotations"][2].pop("caption"))
    elif case == "unknown_image_id":
        _edit_json(ann, lambda o: o["annotations"][0].update(image_id=999))
    elif case == "image_without_captions":
        _edit_json(ann, lambda o: o.update(annotations=[a for a in o["annotations"] if a["image_id"] != 114]))
    elif case == "duplicate_image_id":
        _edit_json(ann, lambda o: o["images"][2].update(id=100))
    elif case == "empty_caption":
        _edit_json(ann, lambda o: o["annotations"][1].update(caption=" ... "))
    elif case == "missing_image_file":
        os.remove(os.path.join(image_dir, "COCO_000107.png"))
    elif case == "corrupt_image_file":
        with open(os.path.join(image_dir, "COCO_000107.png"), "wb") as f:
            f.write(b"not a png at all")
    elif case == "missing_image_dir":
        image_dir = str(tmp_path / "nowhere")
    with pytest.raises(DataError, match=pattern) as info:
        load_coco_captions(ann, image_dir)
    assert "\n" not in str(info.value)


def test_coco_spec_parsing_and_loading(tmp_path):
    assert parse_coco_spec("coco_captions:C:/coco/captions.json:C:/coco/train2014") == \
        ("C:/coco/captions.json", "C:/coco/train2014")
    assert parse_coco_spec("coco_captions:ann.JSON:dir:with:colons") == ("ann.JSON", "dir:with:colons")
    assert parse_coco_spec("coco_captions:ann.txt:dir") == ("ann.txt", "dir")
    for bad in ("coco_captions:only.json", "coco_captions::dir", "coco_captions:ann.json:"):
        with pytest.raises(ConfigError, match="must be coco_captions:ANN.json:IMAGE_DIR"):
            parse_coco_spec(bad)
    root = tmp_path / "a:b"
    ann, image_dir, arrays = _coco_set(root)
    data = load_captions(f"coco_captions:{ann}:{image_dir}", validation_fraction=0.0, test_fraction=0.34)
    assert isinstance(data, CaptionData)
    assert (data.num_images("train"), data.num_images("validation"), data.num_images("test")) == (2, 0, 1)
    ids = np.concatenate([data.splits[s].image_ids for s in ("train", "validation", "test")])
    assert sorted(ids.tolist()) == [100, 107, 114]
    meta = json.loads(json.dumps(data.to_json()))
    assert meta["spec"] == f"coco_captions:{ann}:{image_dir}" and meta["image_shape"] == [8, 8, 3]


def test_unknown_and_tfds_specs(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown caption data set 'cifar10'; accepted: synthetic, synthetic:N, "
                                          r"coco_captions:ANN.json:IMAGE_DIR, coco_captions"):
        load_captions("cifar10")
    with pytest.raises(ConfigError, match="synthetic:N needs a positive number"):
        load_captions("synthetic:zero")
    with pytest.raises(DataError, match=r"'coco_captions' not found in .*tfds build coco_captions --data_dir"):
        load_captions("coco_captions", data_dir=str(tmp_path))
    info = tmp_path / "coco_captions" / "2014" / "1.1.0"
    info.mkdir(parents=True)
    (info / "dataset_info.json").write_text("{}")
    with pytest.raises(ConfigError, match="images differ in size; give image_size"):
        load_captions("coco_captions", data_dir=str(tmp_path))


def test_tfds_coco_captions_keeps_karpathy_splits(tmp_path):
    import tensorflow_datasets as tfds

    info = tmp_path / "coco_captions" / "2014" / "1.1.0"
    info.mkdir(parents=True)
    (info / "dataset_info.json").write_text("{}")
    with tfds.testing.mock_data(num_examples=4):
        data = load_captions("coco_captions", data_dir=str(tmp_path), image_size=(12, 10), truncate=True,
                             validation_fraction=0.5)
        reference = {split: list(tfds.as_numpy(tfds.load("coco_captions", split=split, data_dir=str(tmp_path))))
                     for split in ("train", "restval", "val", "test")}
    # restval trains (Karpathy & Li); the fractions do not re-split a set that has its own splits
    expected = {"train": reference["train"] + reference["restval"], "validation": reference["val"],
                "test": reference["test"]}
    for split, examples in expected.items():
        got = data.splits[split]
        assert got.images.shape == (len(examples), 12, 10, 3) and got.images.dtype == np.uint8
        assert got.image_ids.tolist() == [int(ex["image/id"]) for ex in examples]
        assert got.file_names == [ex["image/filename"].decode() for ex in examples]
        assert got.captions == [[t.decode() for t in ex["captions"]["text"]] for ex in examples]
        first = tf.image.resize(examples[0]["image"], (12, 10))
        np.testing.assert_array_equal(got.images[0], np.round(np.clip(first.numpy(), 0, 255)).astype(np.uint8))
    assert data.to_json()["source"].startswith("tfds:coco_captions")


# --- splits, vocabulary and pipelines --------------------------------------------------------------


def test_splits_are_disjoint_by_image_and_deterministic():
    data = load_captions("synthetic:50", split_seed=1)
    ids = {s: set(data.splits[s].image_ids.tolist()) for s in ("train", "validation", "test")}
    assert [len(ids[s]) for s in ("train", "validation", "test")] == [40, 5, 5]
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"]
    assert ids["train"] | ids["validation"] | ids["test"] == set(range(50))
    again = load_captions("synthetic", num_images=50, split_seed=1)
    for s in ("train", "validation", "test"):
        np.testing.assert_array_equal(again.splits[s].image_ids, data.splits[s].image_ids)
        np.testing.assert_array_equal(again.splits[s].images, data.splits[s].images)
    other = load_captions("synthetic:50", split_seed=2)
    assert set(other.splits["test"].image_ids.tolist()) != ids["test"]
    # A split's images and captions stay together: image k of a split is data-set image image_ids[k].
    full = synthetic_captions(50)
    test = data.splits["test"]
    np.testing.assert_array_equal(test.images, full.images[test.image_ids])
    assert test.captions == [full.captions[i] for i in test.image_ids]
    with pytest.raises(ConfigError, match="validation_fraction \\+ test_fraction must be < 1"):
        load_captions("synthetic:10", validation_fraction=0.5, test_fraction=0.5)


def test_epoch_caption_choice_is_deterministic_and_varies_across_epochs():
    data = load_captions("synthetic:60", validation_fraction=0.0, test_fraction=0.0)
    train = data.splits["train"]
    order0, rows0 = data.epoch_plan(0, seed=5)
    again = data.epoch_plan(0, seed=5)
    np.testing.assert_array_equal(again[0], order0)
    np.testing.assert_array_equal(again[1], rows0)
    # Each row is one of its own image's references.
    assert np.all((train.offsets[order0] <= rows0) & (rows0 < train.offsets[order0 + 1]))
    order1, rows1 = data.epoch_plan(1, seed=5)
    choice0 = np.empty(60, int)
    choice0[order0] = rows0 - train.offsets[order0]
    choice1 = np.empty(60, int)
    choice1[order1] = rows1 - train.offsets[order1]
    assert not np.array_equal(order0, order1)
    assert 0.4 < np.mean(choice0 != choice1) < 0.9  # 2/3 expected for 3 references
    assert set(choice0) == {0, 1, 2}
    # The pipeline yields exactly the plan.
    batches = list(data.train_epoch(0, seed=5, batch_size=16))
    assert len(batches) == 3 == data.steps_per_epoch(16)
    images, captions = batches[0]
    assert images.dtype == tf.float32 and images.shape == (16, 64, 64, 3)
    assert captions.dtype == tf.int32 and captions.shape == (16, 18)
    np.testing.assert_allclose(images.numpy(), train.images[order0[:16]] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(captions.numpy(), train.encoded[rows0[:16]])
    caption = data.vocab.decode(captions[0])
    assert caption in train.captions[order0[0]]
    # Resuming part-way gives the same later batches.
    resumed = list(data.train_epoch(0, seed=5, batch_size=16, skip_batches=1))
    assert len(resumed) == 2
    np.testing.assert_array_equal(resumed[0][1].numpy(), batches[1][1].numpy())


def test_vocabulary_comes_from_the_training_split_only(tmp_path):
    n = 10
    captions = [[f"a word{k} here", f"another word{k}"] for k in range(n)]
    ann, image_dir, _ = _coco_set(tmp_path, sizes=[(4, 4)] * n, captions=captions)
    data = load_captions(f"coco_captions:{ann}:{image_dir}", validation_fraction=0.2, test_fraction=0.2)
    index = {100 + 7 * k: k for k in range(n)}
    for split in ("train", "validation", "test"):
        s = data.splits[split]
        for image_id, encoded in zip(s.image_ids, s.encoded[s.offsets[:-1]]):
            word = f"word{index[int(image_id)]}"
            assert (word in data.vocab) == (split == "train")
            decoded = data.vocab.decode(encoded)
            assert decoded == (f"a {word} here" if split == "train" else "a <UNK> here")
    assert {"a", "here", "another"} <= set(data.vocab.idx_to_word)
    refs = data.references("test")
    assert len(refs) == 2 and all(len(r) == 2 for r in refs)
    k = index[int(data.splits["test"].image_ids[0])]
    assert refs[0] == [["a", f"word{k}", "here"], ["another", f"word{k}"]]  # references keep every word


def test_too_long_captions_in_a_data_set(tmp_path):
    long = "a very long caption with many more words than allowed"
    ann, image_dir, _ = _coco_set(tmp_path, captions=[["one two"], [long], ["three"]])
    spec = f"coco_captions:{ann}:{image_dir}"
    with pytest.raises(DataError, match=r"caption 'a very long caption .*' has 10 words, more than max_length=4"):
        load_captions(spec, max_length=4, validation_fraction=0.0, test_fraction=0.0)
    data = load_captions(spec, max_length=4, truncate=True, validation_fraction=0.0, test_fraction=0.0)
    assert data.splits["train"].encoded.shape == (3, 6)
    i = data.splits["train"].captions.index([long])
    assert data.vocab.decode(data.splits["train"].encoded[i]) == "a very long caption"
    assert data.references("train")[i] == [tokenize(long)]


def test_metadata_and_eval_pipelines():
    data = load_captions("synthetic:30", max_length=12, min_count=2)
    meta = json.loads(json.dumps(data.to_json()))
    unit = data.splits["train"].images.astype(np.float64) / 255.0
    np.testing.assert_allclose(meta["mean"], unit.mean(axis=(0, 1, 2)), rtol=1e-9)
    np.testing.assert_allclose(meta["std"], unit.std(axis=(0, 1, 2)), rtol=1e-6)
    assert (meta["num_train"], meta["num_validation"], meta["num_test"]) == (24, 3, 3)
    assert meta["num_captions"] == {"train": 72, "validation": 9, "test": 9}
    assert meta["max_length"] == 12 and meta["image_shape"] == [64, 64, 3] and meta["min_count"] == 2
    assert Vocabulary.from_json(meta["vocab"]) == data.vocab and data.vocab.min_count == 2
    pairs = list(data.caption_pairs("validation", batch_size=4))
    assert [int(b[0].shape[0]) for b in pairs] == [4, 4, 1]
    assert pairs[0][1].shape == (4, 14)
    images = np.concatenate([b.numpy() for b in data.image_batches("test", batch_size=2)])
    np.testing.assert_allclose(images, data.splits["test"].images / 255.0, atol=1e-7)
    standardized = data.standardize(tf.constant(images)).numpy()
    np.testing.assert_allclose(standardized, (images - np.float32(meta["mean"])) / np.float32(meta["std"]), atol=1e-5)
    with pytest.raises(ConfigError, match="split must be 'train', 'validation' or 'test', got 'dev'"):
        data.references("dev")
