"""The data layer of the library-tier image captioner (lecture 10, assignment 3).

- :func:`tokenize`: the one tokeniser of captions. It lowercases and splits on every run of
  characters that are not letters or digits (Unicode-aware; ``_`` counts as a separator), so
  ``"A red-circle, LEFT of..."`` is ``['a', 'red', 'circle', 'left', 'of']`` and ``"don't"`` is
  ``['don', 't']``. Punctuation is dropped. Vocabularies are built on these tokens and BLEU is
  computed on them (references and hypotheses alike), so scores do not depend on case or
  punctuation.
- :class:`Vocabulary`: ``<NULL>`` = 0 (padding), ``<START>`` = 1, ``<END>`` = 2, ``<UNK>`` = 3,
  then the words seen at least ``min_count`` times, sorted by falling count and then
  alphabetically. Its ``word_to_idx`` is what :class:`~cs231n_tf.sequence.CaptioningRNN` takes.
- :func:`synthetic_captions`: the embedded captioning set, generated with NumPy from a seed:
  one or two coloured shapes (circle, square, triangle) on a black background and three
  paraphrased captions per image that are true of it ("a red circle left of a blue square",
  "there is a red circle to the left of a blue square", "a blue square to the right of a red
  circle").
- :func:`load_coco_captions`: the COCO captions format (``captions_train2014.json`` and its image
  folder).
- :func:`load_captions` / :class:`CaptionData`: a set named by a spec string, split by image into
  train/validation/test, with the vocabulary of the training captions and ``tf.data`` pipelines.

Spec strings of :func:`load_captions`:

- ``synthetic`` (the default) or ``synthetic:N`` (``N`` images);
- ``coco_captions:ANN.json:IMAGE_DIR``. Paths may contain ``:``; the rule is: the annotation path
  runs up to the first ``.json:`` (case-insensitive) after the prefix, and the image folder is
  everything after it. Without a ``.json:`` the annotation path ends at the first ``:``. So
  ``coco_captions:C:/coco/captions.json:C:/coco/train2014`` works; an annotation file whose name
  does not end in ``.json`` must not contain ``:``, and one whose path contains ``.json:`` before
  its real end cannot be named (rename it);
- ``coco_captions``: the TensorFlow Datasets set (COCO 2014 with Karpathy & Li's splits), read from
  a prepared data directory; nothing is downloaded, and an absent set raises :class:`DataError`
  naming the remedy. Its own splits are kept: ``train`` and ``restval`` train, ``val`` validates,
  ``test`` tests (the split fractions do not apply). COCO images differ in size, so ``image_size``
  is required; ``num_images`` reads only the first N images of each split.
"""

import dataclasses
import glob
import numbers
import os
import re
from collections import Counter

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.data.pipeline import _channel_stats
from cs231n_tf.data.coco import is_int, read_coco_json
from cs231n_tf.data.shapes import BACKGROUND, COLOURS, SHAPES, shape_mask
from cs231n_tf.data.sources import default_tfds_dir, read_image
from cs231n_tf.errors import ConfigError, DataError, InputTypeError

NULL, START, END, UNK = "<NULL>", "<START>", "<END>", "<UNK>"
SPECIAL_TOKENS = (NULL, START, END, UNK)
NULL_ID, START_ID, END_ID, UNK_ID = 0, 1, 2, 3

SYNTHETIC = "synthetic"
COCO_PREFIX = "coco_captions:"
TFDS_COCO = "coco_captions"
ACCEPTED_SPECS = ("synthetic", "synthetic:N", "coco_captions:ANN.json:IMAGE_DIR", "coco_captions")
SPLITS = ("train", "validation", "test")
DEFAULT_SYNTHETIC_IMAGES = 2000

_TOKEN = re.compile(r"[^\W_]+")


def tokenize(caption):
    """``caption`` lowercased and split on non-alphanumerics: a list of word strings."""
    if not isinstance(caption, str):
        raise InputTypeError(f"a caption must be a string, got {type(caption).__name__}: {caption!r}")
    return _TOKEN.findall(caption.lower())


def _tokens(caption):
    """A caption given as a string (tokenised) or as a sequence of tokens (used as given)."""
    if isinstance(caption, str):
        return tokenize(caption)
    if isinstance(caption, (list, tuple)) and all(isinstance(t, str) for t in caption):
        return list(caption)
    raise InputTypeError(f"a caption must be a string or a list of token strings, got {caption!r}")


def _shown(caption, limit=80):
    text = caption if isinstance(caption, str) else " ".join(caption)
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


# --- vocabulary ------------------------------------------------------------------------------------


class Vocabulary:
    """Word <-> id maps of a captioning model.

    ``idx_to_word`` is the list of all words by id; its first four entries are the special tokens
    ``<NULL> <START> <END> <UNK>``. Build one from captions with :meth:`build`.
    """

    def __init__(self, idx_to_word, min_count=1):
        if not isinstance(idx_to_word, (list, tuple)) or not all(isinstance(w, str) for w in idx_to_word):
            raise InputTypeError(f"idx_to_word must be a list of strings, got {idx_to_word!r:.100}")
        if tuple(idx_to_word[:4]) != SPECIAL_TOKENS:
            raise DataError(f"a vocabulary must start with {', '.join(SPECIAL_TOKENS)}, got {list(idx_to_word[:4])}")
        seen = set()
        for i, word in enumerate(idx_to_word):
            if not word:
                raise DataError(f"vocabulary entry {i} is an empty string")
            if word in seen:
                raise DataError(f"vocabulary has the word {word!r} twice")
            seen.add(word)
        self.idx_to_word = list(idx_to_word)
        self.word_to_idx = {w: i for i, w in enumerate(self.idx_to_word)}
        self.min_count = validation.positive_int("min_count", min_count)

    @classmethod
    def build(cls, captions, min_count=1):
        """The vocabulary of ``captions`` (strings, tokenised with :func:`tokenize`, or token lists).

        Words seen fewer than ``min_count`` times are left out (they encode as ``<UNK>``); the rest
        follow the special tokens sorted by ``(-count, word)``.
        """
        min_count = validation.positive_int("min_count", min_count)
        if isinstance(captions, str):
            raise InputTypeError("captions must be a list of captions, not one string")
        counts = Counter()
        for caption in captions:
            tokens = _tokens(caption)
            special = [t for t in tokens if t in SPECIAL_TOKENS]
            if special:
                raise DataError(f"caption {_shown(caption)} contains the special token {special[0]!r}")
            counts.update(tokens)
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(list(SPECIAL_TOKENS) + words, min_count=min_count)

    def __len__(self):
        return len(self.idx_to_word)

    def __contains__(self, word):
        return word in self.word_to_idx

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and self.idx_to_word == other.idx_to_word

    def __repr__(self):
        return f"Vocabulary({len(self)} words, min_count={self.min_count})"

    @property
    def size(self):
        return len(self.idx_to_word)

    def encode(self, caption, max_length, truncate=False):
        """``<START> w1 ... wn <END>`` padded with ``<NULL>``: an int32 array ``(max_length + 2,)``.

        ``caption`` is a string (tokenised) or a token list; unknown words become ``<UNK>``. A
        caption of more than ``max_length`` words raises :class:`DataError`, or with
        ``truncate=True`` keeps its first ``max_length`` words (``<END>`` still follows them).
        """
        max_length = validation.positive_int("max_length", max_length)
        tokens = _tokens(caption)
        if len(tokens) > max_length:
            if not truncate:
                raise DataError(f"caption {_shown(caption)} has {len(tokens)} words, more than max_length="
                                f"{max_length}; raise max_length or pass truncate=True")
            tokens = tokens[:max_length]
        ids = np.full(max_length + 2, NULL_ID, np.int32)
        ids[0] = START_ID
        ids[1:len(tokens) + 1] = [self.word_to_idx.get(t, UNK_ID) for t in tokens]
        ids[len(tokens) + 1] = END_ID
        return ids

    def encode_batch(self, captions, max_length, truncate=False):
        """:meth:`encode` of every caption: int32 ``(len(captions), max_length + 2)``."""
        max_length = validation.positive_int("max_length", max_length)
        out = np.full((len(captions), max_length + 2), NULL_ID, np.int32)
        for i, caption in enumerate(captions):
            out[i] = self.encode(caption, max_length, truncate=truncate)
        return out

    def _ids(self, ids):
        arr = np.asarray(ids.numpy() if isinstance(ids, (tf.Tensor, tf.Variable)) else ids)
        if arr.size and arr.dtype.kind not in "iu":
            raise InputTypeError(f"word ids must be integers, got dtype {arr.dtype}")
        bad = (arr < 0) | (arr >= len(self))
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"word id {int(arr[at])} at position {at} is not in the vocabulary [0, {len(self)})")
        return arr.astype(np.int64)

    def decode_tokens(self, ids):
        """The words of ``ids`` up to the first ``<END>``, without ``<NULL>`` and ``<START>``.

        ``ids`` is 1-D (one caption: a list of words) or 2-D (a batch: a list of word lists).
        ``<UNK>`` is kept as the string ``"<UNK>"``.
        """
        arr = self._ids(ids)
        if arr.ndim == 2:
            return [self.decode_tokens(row) for row in arr]
        if arr.ndim != 1:
            raise DataError(f"word ids must be 1-D (one caption) or 2-D (a batch), got shape {arr.shape}")
        words = []
        for i in arr:
            if i == END_ID:
                break
            if i not in (NULL_ID, START_ID):
                words.append(self.idx_to_word[i])
        return words

    def decode(self, ids):
        """:meth:`decode_tokens` joined by spaces (a list of strings for a 2-D batch)."""
        arr = self._ids(ids)
        tokens = self.decode_tokens(arr)
        return [" ".join(t) for t in tokens] if arr.ndim == 2 else " ".join(tokens)

    def to_json(self):
        return {"idx_to_word": list(self.idx_to_word), "min_count": self.min_count}

    @classmethod
    def from_json(cls, obj):
        if not isinstance(obj, dict) or "idx_to_word" not in obj:
            raise DataError(f"a vocabulary's JSON must be an object with 'idx_to_word', got {obj!r:.100}")
        return cls(obj["idx_to_word"], min_count=obj.get("min_count", 1))


# --- the synthetic set -----------------------------------------------------------------------------

# relation -> (short form, long form, inverse relation)
RELATIONS = {
    "left": ("left of", "to the left of", "right"),
    "right": ("right of", "to the right of", "left"),
    "above": ("above", "above", "below"),
    "below": ("below", "below", "above"),
}


def _captions_for(objects, relation, rng):
    """Three paraphrases: ``a C S [rel] a C S``, ``there is ...`` (long form), the inverse."""
    if len(objects) == 1:
        o = objects[0]
        return [f"a {o['colour']} {o['shape']}", f"there is a {o['colour']} {o['shape']}",
                f"a single {o['colour']} {o['shape']}"]
    a, b = (f"a {o['colour']} {o['shape']}" for o in objects)
    short, long, inverse = RELATIONS[relation]
    inv_short, inv_long, _ = RELATIONS[inverse]
    inv = inv_long if rng.random() < 0.5 else inv_short
    return [f"{a} {short} {b}", f"there is {a} {long} {b}", f"{b} {inv} {a}"]


@dataclasses.dataclass
class CaptionSet:
    """Images with their reference captions, before splitting.

    ``images`` is uint8 ``(N, H, W, 3)``, ``captions[i]`` the list of caption strings of image
    ``i`` (at least one), ``image_ids`` int64 ``(N,)``, ``file_names`` the image files (None for
    generated images). ``objects`` (synthetic only) lists each image's shapes as dicts
    ``{"shape", "colour", "centre": (y, x), "size"}``. Unpacks as ``images, captions = ...``.
    """

    images: np.ndarray
    captions: list
    image_ids: np.ndarray
    file_names: list = None
    source: str = ""
    objects: list = None
    split_of: np.ndarray = None  # a fixed split per image ("train", "validation", "test"), or None

    def __iter__(self):
        return iter((self.images, self.captions))

    def __len__(self):
        return len(self.images)


def synthetic_captions(num_images=DEFAULT_SYNTHETIC_IMAGES, image_size=64, seed=0, single_fraction=0.3):
    """The embedded captioning set: ``num_images`` generated images with three captions each.

    Each image is black with one shape (probability ``single_fraction``) or two shapes of
    distinct colours (from :data:`COLOURS`; shapes from :data:`SHAPES`, possibly the same one
    twice). Two shapes sit in opposite halves of the image, left/right or top/bottom, with the
    offset across that axis at most half the offset along it, so "left of" / "above" is plainly
    true of their centroids. The same ``(num_images, image_size, seed, single_fraction)`` always
    gives the same set. ``image_size`` is at least 32; shapes scale with it (half-extent 10-16 % of
    the side for pairs, 12-22 % for single shapes), and below about 48 pixels small circles and
    triangles become coarse. Returns a :class:`CaptionSet` (unpacks as ``images, captions``).
    """
    num_images = validation.positive_int("num_images", num_images)
    image_size = validation.int_in("image_size", image_size, 32)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InputTypeError(f"seed must be an int, got {seed!r}")
    if not 0.0 <= float(single_fraction) <= 1.0:
        raise ConfigError(f"single_fraction must be in [0, 1], got {single_fraction!r}")
    rng = np.random.default_rng(int(seed))
    s = image_size
    colour_names = list(COLOURS)
    images = np.empty((num_images, s, s, 3), np.uint8)
    captions, objects = [], []
    for n in range(num_images):
        image = np.empty((s, s, 3), np.uint8)
        image[...] = BACKGROUND
        two = rng.random() >= single_fraction
        colours = rng.choice(len(colour_names), size=2 if two else 1, replace=False)
        shapes = rng.integers(len(SHAPES), size=len(colours))
        if not two:
            size = rng.uniform(0.12, 0.22) * s
            centre = tuple(rng.uniform(size + 1, s - size - 1, size=2))
            placed = [(centre, size)]
            relation = None
        else:
            sizes = rng.uniform(0.1, 0.16, size=2) * s
            axis = int(rng.integers(2))  # 0: top/bottom (y), 1: left/right (x)
            along = [rng.uniform(sizes[0] + 1, s / 2 - sizes[0]), rng.uniform(s / 2 + sizes[1], s - sizes[1] - 1)]
            gap = along[1] - along[0]
            across = [rng.uniform(sizes[0] + 1, s - sizes[0] - 1)]
            low = max(sizes[1] + 1, across[0] - gap / 2)
            high = min(s - sizes[1] - 1, across[0] + gap / 2)
            across.append(rng.uniform(low, high) if high > low else across[0])
            centres = [(along[k], across[k]) if axis == 0 else (across[k], along[k]) for k in range(2)]
            placed = list(zip(centres, sizes))
            # The first-placed shape is the upper or left one; which one the caption names first is random.
            relation = "above" if axis == 0 else "left"
            if rng.random() < 0.5:
                placed.reverse()
                colours, shapes = colours[::-1], shapes[::-1]
                relation = RELATIONS[relation][2]
        objs = []
        for (centre, size), c, sh in zip(placed, colours, shapes):
            mask = shape_mask(SHAPES[sh], centre, size, s)
            image[mask] = COLOURS[colour_names[c]]
            objs.append({"shape": SHAPES[sh], "colour": colour_names[c],
                         "centre": (float(centre[0]), float(centre[1])), "size": float(size)})
        images[n] = image
        objects.append(objs)
        captions.append(_captions_for(objs, relation, rng))
    return CaptionSet(images, captions, np.arange(num_images, dtype=np.int64), None,
                      f"synthetic shapes ({num_images} images, {s}x{s}, seed {int(seed)})", objects)


# --- COCO captions ---------------------------------------------------------------------------------


def _image_size(image_size):
    if image_size is None:
        return None
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2:
        raise ConfigError(f"image_size must be (H, W) or an int, got {image_size!r}")
    return tuple(validation.positive_int("image_size", v) for v in image_size)


def _read_coco_json(path):
    return read_coco_json(path, "COCO captions file")


def _coco_index(path, obj):
    """``[(image_id, file_name)]`` in file order and ``{image_id: [caption, ...]}``, checked."""
    images, ids = [], set()
    for i, entry in enumerate(obj["images"]):
        if not isinstance(entry, dict):
            raise DataError(f"{path}: images[{i}] must be an object, got {entry!r:.80}")
        for key in ("id", "file_name"):
            if key not in entry:
                raise DataError(f"{path}: images[{i}] lacks {key!r}; every image needs 'id' and 'file_name'")
        if not is_int(entry["id"]):
            raise DataError(f"{path}: images[{i}] has id {entry['id']!r}; image ids must be integers")
        if not isinstance(entry["file_name"], str) or not entry["file_name"]:
            raise DataError(f"{path}: images[{i}] has file_name {entry['file_name']!r}; it must be a non-empty string")
        if entry["id"] in ids:
            raise DataError(f"{path}: image id {entry['id']} appears twice in 'images' (images[{i}])")
        ids.add(entry["id"])
        images.append((entry["id"], entry["file_name"]))
    if not images:
        raise DataError(f"COCO captions file {path!r} has no images")
    captions = {image_id: [] for image_id, _ in images}
    for i, ann in enumerate(obj["annotations"]):
        if not isinstance(ann, dict):
            raise DataError(f"{path}: annotations[{i}] must be an object, got {ann!r:.80}")
        for key in ("image_id", "caption"):
            if key not in ann:
                raise DataError(f"{path}: annotations[{i}] lacks {key!r}; every annotation needs 'image_id' "
                                "and 'caption'")
        if not isinstance(ann["caption"], str):
            raise DataError(f"{path}: annotations[{i}] has caption {ann['caption']!r:.80}; captions must be strings")
        if not is_int(ann["image_id"]) or ann["image_id"] not in captions:
            raise DataError(f"{path}: annotations[{i}] refers to image_id {ann['image_id']!r}, which is not in "
                            "'images'")
        if not tokenize(ann["caption"]):
            raise DataError(f"{path}: annotations[{i}] (image_id {ann['image_id']}) has a caption without words: "
                            f"{ann['caption']!r:.80}")
        captions[ann["image_id"]].append(ann["caption"])
    bare = [(image_id, name) for image_id, name in images if not captions[image_id]]
    if bare:
        shown = ", ".join(f"{name!r} (id {image_id})" for image_id, name in bare[:5])
        more = f" and {len(bare) - 5} more" if len(bare) > 5 else ""
        raise DataError(f"{path}: {len(bare)} image(s) have no captions: {shown}{more}; every image needs at "
                        "least one annotation")
    return images, captions


def load_coco_captions(annotations_json, image_dir, image_size=None):
    """Images and captions of a COCO captions set (e.g. ``captions_train2014.json`` + ``train2014/``).

    The JSON holds ``{"images": [{"id", "file_name", ...}], "annotations": [{"image_id",
    "caption"}, ...]}``; other keys are ignored. Images are read (as RGB) in the order of
    ``images``, their captions in the order of ``annotations``. ``image_size=(H, W)`` resizes every
    image (bilinear); without it all images must already have one size. Bad input raises
    :class:`DataError` naming the problem. Returns a :class:`CaptionSet` with ``image_ids`` and
    ``file_names``. All images are held in memory as uint8.
    """
    image_size = _image_size(image_size)
    obj = _read_coco_json(annotations_json)
    images, captions = _coco_index(annotations_json, obj)
    if not os.path.isdir(image_dir):
        raise DataError(f"COCO image folder {image_dir!r} does not exist")
    shape = (image_size + (3,)) if image_size else None
    arrays = []
    for image_id, name in images:
        fpath = os.path.join(image_dir, name)
        if not os.path.isfile(fpath):
            raise DataError(f"image file {fpath!r} of COCO image id {image_id} does not exist")
        img = read_image(fpath, channels=3)
        if shape is None:
            shape = img.shape
        if img.shape[:2] != shape[:2]:
            if not image_size:
                raise DataError(f"image {fpath!r} is {img.shape[0]}x{img.shape[1]} but earlier images are "
                                f"{shape[0]}x{shape[1]}; pass image_size=(H, W) to resize them all")
            img = tf.cast(tf.round(tf.clip_by_value(tf.image.resize(img, shape[:2]), 0, 255)), tf.uint8).numpy()
        arrays.append(img)
    return CaptionSet(np.stack(arrays), [captions[i] for i, _ in images],
                      np.asarray([i for i, _ in images], np.int64), [name for _, name in images],
                      f"coco_captions:{annotations_json}:{image_dir}")


def _tfds_coco_present(data_dir):
    """Whether ``data_dir/coco_captions/<config>/<version>/dataset_info.json`` exists (no tfds import)."""
    return bool(glob.glob(os.path.join(glob.escape(data_dir), TFDS_COCO, "*", "*", "dataset_info.json")))


# tfds split -> this package's split; restval is the rest of COCO's val2014, used for training as
# Karpathy & Li did.
TFDS_COCO_SPLITS = (("train", "train"), ("restval", "train"), ("val", "validation"), ("test", "test"))


def _tfds_coco(data_dir, image_size, num_images):
    data_dir = data_dir or default_tfds_dir()
    if not _tfds_coco_present(data_dir):
        raise DataError(
            f"tfds data set 'coco_captions' not found in {data_dir} (nothing is downloaded). Build it with "
            f"`tfds build coco_captions --data_dir {data_dir}` on a machine with network access and copy "
            f"{os.path.join(data_dir, TFDS_COCO)} here (or point data_dir or TFDS_DATA_DIR at its parent), "
            "or use coco_captions:ANN.json:IMAGE_DIR with the COCO captions JSON and its image folder")
    if image_size is None:
        raise ConfigError("the tfds 'coco_captions' images differ in size; give image_size (e.g. 224) to resize "
                          "them all")
    import tensorflow_datasets as tfds

    size = list(image_size)
    images, captions, ids, names, split_of = [], [], [], [], []
    for tfds_split, split in TFDS_COCO_SPLITS:
        expr = f"{tfds_split}[:{num_images}]" if num_images else tfds_split
        try:
            ds = tfds.load(TFDS_COCO, split=expr, data_dir=data_dir, download=False)
        except (AssertionError, ValueError, KeyError) as exc:  # tfds: missing files, unknown split
            raise DataError(f"cannot read tfds 'coco_captions' split {tfds_split!r} from {data_dir}: "
                            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None

        def resize(ex):
            img = tf.image.resize(ex["image"], size)
            return (tf.cast(tf.round(tf.clip_by_value(img, 0, 255)), tf.uint8), ex["captions"]["text"],
                    ex["image/id"], ex["image/filename"])

        for img, texts, image_id, name in tfds.as_numpy(ds.map(resize, num_parallel_calls=tf.data.AUTOTUNE)):
            texts = [t.decode("utf-8") for t in texts]
            name = name.decode("utf-8")
            if not texts or not all(tokenize(t) for t in texts):
                raise DataError(f"tfds 'coco_captions' image {name!r} (id {image_id}) has an empty caption or "
                                "none at all")
            images.append(img)
            captions.append(texts)
            ids.append(int(image_id))
            names.append(name)
            split_of.append(split)
    if not images:
        raise DataError(f"tfds data set 'coco_captions' in {data_dir} has no images")
    return CaptionSet(np.stack(images), captions, np.asarray(ids, np.int64), names, f"tfds:{TFDS_COCO} ({data_dir})",
                      split_of=np.asarray(split_of))


def parse_coco_spec(spec):
    """``coco_captions:ANN.json:IMAGE_DIR`` -> ``(ANN.json, IMAGE_DIR)`` (see the module docstring)."""
    rest = spec[len(COCO_PREFIX):]
    match = re.search(r"\.json:", rest, flags=re.IGNORECASE)
    cut = match.end() - 1 if match else rest.find(":")
    if cut <= 0 or cut == len(rest) - 1:
        raise ConfigError(f"data set {spec!r} must be coco_captions:ANN.json:IMAGE_DIR (annotation file, then "
                          "image folder)")
    return rest[:cut], rest[cut + 1:]


# --- splits and pipelines --------------------------------------------------------------------------


def _split_count(fraction, n):
    k = int(round(fraction * n))
    if fraction > 0 and k == 0 and n > 1:
        k = 1
    return k


@dataclasses.dataclass
class CaptionSplit:
    """One split: images, their ids/files, captions (strings and tokens) and encoded captions.

    ``encoded`` is int32 ``(num_captions, max_length + 2)``; the captions of image ``i`` are rows
    ``offsets[i]:offsets[i + 1]``.
    """

    images: np.ndarray
    image_ids: np.ndarray
    file_names: list
    captions: list
    tokens: list
    encoded: np.ndarray
    offsets: np.ndarray

    def __len__(self):
        return len(self.images)

    @property
    def num_captions(self):
        return int(self.offsets[-1])


class CaptionData:
    """A captioning set split by image, its training vocabulary and ``tf.data`` pipelines.

    ``splits`` maps ``train``/``validation``/``test`` to :class:`CaptionSplit`. Pipelines yield
    images as float32 in unit scale (pixels / 255); :meth:`standardize` applies the training
    images' per-channel ``mean``/``std`` (recorded in :meth:`to_json`).
    """

    pixel_max = 255.0

    def __init__(self, spec, source, splits, vocab, max_length, truncate, settings):
        self.spec = spec
        self.source = source
        self.splits = splits
        self.vocab = vocab
        self.max_length = max_length
        self.truncate = truncate
        self.settings = settings
        train = splits["train"].images
        self.image_shape = tuple(int(d) for d in train.shape[1:])
        mean, std = _channel_stats(train, self.pixel_max)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self._mean = tf.constant(np.asarray(self.mean, np.float32))
        self._std = tf.constant(np.asarray(self.std, np.float32))

    @property
    def word_to_idx(self):
        return self.vocab.word_to_idx

    def _split(self, name):
        if name not in SPLITS:
            raise ConfigError(f"split must be 'train', 'validation' or 'test', got {name!r}")
        return self.splits[name]

    def num_images(self, split="train"):
        return len(self._split(split))

    def to_unit(self, x):
        """uint8 pixels -> float32 in [0, 1]."""
        return tf.cast(x, tf.float32) / self.pixel_max

    def standardize(self, x):
        """Unit-scale images -> ``(x - mean) / std`` with the training split's per-channel statistics."""
        return (x - self._mean) / self._std

    def _pipeline(self, images, captions, batch_size, drop_remainder):
        ds = tf.data.Dataset.from_tensor_slices((images, captions)).batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(lambda x, c: (self.to_unit(x), tf.cast(c, tf.int32)),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return ds.with_options(options).prefetch(tf.data.AUTOTUNE)

    def epoch_plan(self, epoch, seed):
        """``(order, rows)`` of training epoch ``epoch``: the image order and each one's caption row.

        ``order`` is a permutation of the training images fixed by ``(seed, epoch)``; ``rows[k]``
        is the row of ``splits['train'].encoded`` used for image ``order[k]``: one of its
        references, drawn uniformly from a second stream of ``(seed, epoch)``.
        """
        seed, epoch = validation.non_negative_int("seed", seed), validation.non_negative_int("epoch", epoch)
        split = self.splits["train"]
        n = len(split)
        order = np.random.default_rng([seed, epoch]).permutation(n)
        counts = np.diff(split.offsets)
        choice = np.random.default_rng([seed, epoch, 1]).integers(0, counts)
        return order, split.offsets[:-1][order] + choice[order]

    def steps_per_epoch(self, batch_size, drop_remainder=True):
        n, b = len(self.splits["train"]), validation.positive_int("batch_size", batch_size)
        return n // b if drop_remainder else -(-n // b)

    def train_epoch(self, epoch, seed, batch_size, skip_batches=0, drop_remainder=True):
        """``(images (B, H, W, 3) float32 unit scale, captions (B, max_length + 2) int32)`` batches.

        Every training image appears once, in an order fixed by ``(seed, epoch)``, with one of its
        reference captions chosen by ``(seed, epoch)`` (:meth:`epoch_plan`); ``skip_batches``
        starts part-way through the epoch (exact resume).
        """
        b = validation.positive_int("batch_size", batch_size)
        skip = validation.non_negative_int("skip_batches", skip_batches)
        order, rows = self.epoch_plan(epoch, seed)
        order, rows = order[skip * b:], rows[skip * b:]
        split = self.splits["train"]
        return self._pipeline(split.images[order], split.encoded[rows], b, drop_remainder)

    def caption_pairs(self, split, batch_size):
        """Every ``(image, caption)`` pair of ``split`` in order (images repeat): for a validation loss."""
        s = self._split(split)
        b = validation.positive_int("batch_size", batch_size)
        image_of = np.repeat(np.arange(len(s)), np.diff(s.offsets))
        return self._pipeline(s.images[image_of], s.encoded, b, False)

    def evaluation_batches(self, split, batch_size):
        """``(images, first reference caption, image index)`` batches of every image of ``split``, in order.

        One pass gives a validation loss (on each image's first caption) and the images to decode
        for BLEU against all of their references (the index puts decoded captions back in order).
        """
        s = self._split(split)
        b = validation.positive_int("batch_size", batch_size)
        ds = tf.data.Dataset.from_tensor_slices((s.images, s.encoded[s.offsets[:-1]], np.arange(len(s), dtype=np.int64)))
        ds = ds.batch(b).map(lambda x, c, i: (self.to_unit(x), tf.cast(c, tf.int32), i),
                             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return ds.with_options(options).prefetch(tf.data.AUTOTUNE)

    def image_batches(self, split, batch_size):
        """The images of ``split`` in order, float32 unit scale (for generating captions)."""
        s = self._split(split)
        b = validation.positive_int("batch_size", batch_size)
        ds = tf.data.Dataset.from_tensor_slices(s.images).batch(b)
        ds = ds.map(self.to_unit, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    def references(self, split):
        """All reference captions of each image of ``split`` as token lists (:func:`tokenize`), for BLEU."""
        return [[list(t) for t in image_tokens] for image_tokens in self._split(split).tokens]

    def to_json(self):
        return {
            "spec": self.spec,
            "source": self.source,
            "vocab": self.vocab.to_json(),
            "vocab_size": len(self.vocab),
            "max_length": self.max_length,
            "truncate": self.truncate,
            "image_shape": list(self.image_shape),
            "pixel_max": self.pixel_max,
            "mean": list(self.mean),
            "std": list(self.std),
            "num_train": len(self.splits["train"]),
            "num_validation": len(self.splits["validation"]),
            "num_test": len(self.splits["test"]),
            "num_captions": {name: self.splits[name].num_captions for name in SPLITS},
            **self.settings,
        }


def _load_set(spec, image_size, num_images, data_dir):
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"caption data set must be a non-empty string; accepted: {', '.join(ACCEPTED_SPECS)}")
    if spec == SYNTHETIC or spec.startswith(SYNTHETIC + ":"):
        if spec != SYNTHETIC:
            text = spec[len(SYNTHETIC) + 1:]
            if not text.isdigit() or int(text) < 1:
                raise ConfigError(f"data set {spec!r}: synthetic:N needs a positive number of images N")
            if num_images is not None and num_images != int(text):
                raise ConfigError(f"data set {spec!r} and num_images={num_images!r} disagree")
            num_images = int(text)
        size = _image_size(image_size)
        if size is not None and size[0] != size[1]:
            raise ConfigError(f"the synthetic set's images are square; got image_size={image_size!r}")
        return synthetic_captions(num_images=num_images or DEFAULT_SYNTHETIC_IMAGES,
                                  image_size=size[0] if size else 64, seed=0)
    if spec == TFDS_COCO:
        if num_images is not None:
            num_images = validation.positive_int("num_images", num_images)
        return _tfds_coco(data_dir, _image_size(image_size), num_images)
    if num_images is not None:
        raise ConfigError(f"num_images is for the synthetic and tfds sets only, not {spec!r}")
    if spec.startswith(COCO_PREFIX):
        ann, image_dir = parse_coco_spec(spec)
        return load_coco_captions(ann, image_dir, image_size=image_size)
    raise ConfigError(f"unknown caption data set {spec!r}; accepted: {', '.join(ACCEPTED_SPECS)}")


def load_captions(spec=SYNTHETIC, *, max_length=16, min_count=1, validation_fraction=0.1, test_fraction=0.1,
                  split_seed=0, image_size=None, truncate=False, num_images=None, data_dir=None):
    """Load a captioning set, split it by image and build the training vocabulary.

    Args:
      spec: ``synthetic`` (default), ``synthetic:N``, ``coco_captions:ANN.json:IMAGE_DIR`` or
        ``coco_captions`` (tfds; see the module docstring).
      max_length: most words per caption; encoded captions have ``max_length + 2`` ids.
      min_count: words seen fewer times in the training captions become ``<UNK>``.
      validation_fraction, test_fraction: shares of all images held out (rounded; at least one
        image each when > 0); a random permutation fixed by ``split_seed`` decides which.
      image_size: ``(H, W)`` to resize COCO images to (an int ``S`` for the ``S x S`` synthetic set).
      truncate: keep the first ``max_length`` words of longer captions instead of raising
        :class:`DataError` (BLEU references keep every word either way).
      num_images: the synthetic set's size (default 2000).
      data_dir: tfds data directory for ``coco_captions`` (default ``$TFDS_DATA_DIR`` or
        ``~/tensorflow_datasets``).

    Returns:
      :class:`CaptionData`.
    """
    max_length = validation.positive_int("max_length", max_length)
    min_count = validation.positive_int("min_count", min_count)
    split_seed = validation.non_negative_int("split_seed", split_seed)
    fractions = {}
    for name, frac in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if isinstance(frac, bool) or not isinstance(frac, numbers.Real) or not 0.0 <= float(frac) < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {frac!r}")
        fractions[name] = float(frac)
    if sum(fractions.values()) >= 1.0:
        raise ConfigError(f"validation_fraction + test_fraction must be < 1, got {sum(fractions.values())}")
    data = _load_set(spec, image_size, num_images, data_dir)
    n = len(data)
    if data.split_of is not None:
        indices = {name: np.flatnonzero(data.split_of == name) for name in SPLITS}
    else:
        perm = np.random.default_rng(split_seed).permutation(n)
        n_test = _split_count(fractions["test_fraction"], n)
        n_val = min(_split_count(fractions["validation_fraction"], n), n - n_test)
        indices = {"test": np.sort(perm[:n_test]), "validation": np.sort(perm[n_test:n_test + n_val]),
                   "train": np.sort(perm[n_test + n_val:])}
    if len(indices["train"]) == 0:
        raise DataError(f"data set {spec!r} has {n} image(s): none is left for training after the held-out splits")
    tokens = [[tokenize(c) for c in caps] for caps in data.captions]
    vocab = Vocabulary.build([t for i in indices["train"] for t in tokens[i]], min_count=min_count)
    splits = {}
    for name in SPLITS:
        idx = indices[name]
        split_tokens = [tokens[i] for i in idx]
        flat = [t for image_tokens in split_tokens for t in image_tokens]
        encoded = np.zeros((0, max_length + 2), np.int32)
        if flat:
            try:
                encoded = vocab.encode_batch(flat, max_length, truncate=truncate)
            except DataError as exc:
                raise DataError(f"{spec}: {exc}") from None
        offsets = np.concatenate([[0], np.cumsum([len(t) for t in split_tokens], dtype=np.int64)]).astype(np.int64)
        splits[name] = CaptionSplit(
            images=data.images[idx], image_ids=data.image_ids[idx],
            file_names=[data.file_names[i] for i in idx] if data.file_names is not None else None,
            captions=[list(data.captions[i]) for i in idx], tokens=split_tokens, encoded=encoded, offsets=offsets)
    settings = {"min_count": min_count, "split_seed": split_seed, **fractions}
    return CaptionData(spec, data.source, splits, vocab, max_length, bool(truncate), settings)
