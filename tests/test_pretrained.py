"""The pretrained EfficientNet-Lite0 end to end: `predict`, `finetune --model`, `export --model`.

The weights are the packaged ImageNet ones (converted once into a per-module cache directory).
"""

import json
import os

import numpy as np
import pytest

from cs231n_tf import cli
from cs231n_tf.data.photos import write_crop_folder
from cs231n_tf.models import build
from cs231n_tf.train import transfer
from cs231n_tf.train.evaluate import load_run

CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CS231N_TF_CACHE", str(tmp_path_factory.mktemp("weights-cache")))
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_crop_folder(str(tmp_path_factory.mktemp("photos")), names=("chelsea", "coffee", "rocket"),
                             per_class=5, size=32, seed=0)


def test_predict_cli_finds_the_cat_and_the_espresso(capsys):
    assert cli.main(["predict", "--model", "efficientnet_lite0", "--json", "--top", "3",
                     "photo:chelsea", "photo:coffee"]) == 0
    result = json.loads(capsys.readouterr().out)
    cat, coffee = (p["top"] for p in result["predictions"])
    assert cat[0]["index"] in CATS and cat[0]["probability"] > 0.3
    assert coffee[0]["index"] == ESPRESSO and coffee[0]["name"] == "espresso" and coffee[0]["probability"] > 0.3
    assert all(a["probability"] >= b["probability"] for a, b in zip(cat, cat[1:]))
    assert result["source"] == {"model": "efficientnet_lite0", "weights": "imagenet", "input_size": [224, 224]}


def test_predict_table_output_and_user_mistakes(tmp_path, capsys):
    assert cli.main(["predict", "--model", "efficientnet_lite0", "--top", "1", "--image-size", "160",
                     "photo:coffee"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "photo:coffee" and out[1].split()[:2] == ["1.", "espresso"]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    for argv, message in (
            (["predict", "--model", "resnet18", "photo:coffee"], "has no pretrained weights"),
            (["predict", "--model", "efficientnet_lite0", "--weights", "jft", "photo:coffee"], "offers weights"),
            (["predict", "--model", "efficientnet_lite0", "photo:teapot"], "unknown photo 'teapot'"),
            (["predict", "--model", "efficientnet_lite0", str(tmp_path / "none.png")], "does not exist"),
            (["predict", "--model", "efficientnet_lite0", str(bad)], "cannot decode image"),
            (["predict", "photo:coffee"], "one of the arguments --run --model is required"),
            (["finetune", "--model", "squeezenet1_1", "--dataset", "digits", "--out", str(tmp_path / "o")],
             "has no pretrained weights")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_finetune_from_imagenet_keeps_frozen_batchnorm_and_reopens(folder, tmp_path, capsys):
    out = str(tmp_path / "ft")
    result = transfer.finetune(None, f"folder:{folder}", out, model="efficientnet_lite0", head_epochs=1,
                               finetune_epochs=1, unfreeze_blocks=2, lr=1e-3, finetune_lr=1e-4, batch_size=8,
                               validation_fraction=0.0, log=lambda *_: None)
    ft = result.metrics["finetune"]
    assert ft["source_model"] == "efficientnet_lite0" and ft["source_weights"] == "imagenet"
    assert ft["finetune"]["unfrozen_blocks"] == ["block7a", "top"]
    assert ft["head"]["trainable_params"] == 1280 * 3 + 3
    assert ft["head"]["trainable_params"] < ft["finetune"]["trainable_params"]

    run = load_run(out)
    assert run.config.preprocessing == "model" and run.config.model_options == {"weights": "imagenet"}
    info = run.run_config["data"]
    np.testing.assert_allclose(info["mean"], [127 / 255] * 3)
    np.testing.assert_allclose(info["std"], [128 / 255] * 3)
    # The frozen body kept the ImageNet weights and batch statistics; the new head is 3-way.
    reference = build("efficientnet_lite0", input_shape=(32, 32, 3), num_classes=3, weights="imagenet")
    for name in ("stem_conv", "stem_bn", "block6d_bn", "block7a_bn"):
        for got, want in zip(run.model.get_layer(name).get_weights(), reference.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)
    assert not np.array_equal(run.model.get_layer("top_conv").get_weights()[0],
                              reference.get_layer("top_conv").get_weights()[0])

    assert cli.main(["predict", "--run", out, "--json", os.path.join(folder, "coffee", "0000.png")]) == 0
    top = json.loads(capsys.readouterr().out)["predictions"][0]["top"]
    assert sorted(c["name"] for c in top) == ["chelsea", "coffee", "rocket"]
    assert abs(sum(c["probability"] for c in top) - 1.0) < 1e-5


def test_export_pretrained_tflite_is_verified_on_photo_crops(tmp_path):
    from cs231n_tf.export import export_pretrained

    report = export_pretrained("efficientnet_lite0", format="tflite", quantize="none", out=str(tmp_path),
                               image_size=64)
    assert os.path.isfile(report["path"]) and report["path"].endswith("model_none.tflite")
    with open(report["path"] + ".report.json") as f:
        assert json.load(f)["prediction_agreement"] == report["prediction_agreement"]
    assert report["examples"] == 70 and "accuracy" not in report
    assert report["prediction_agreement"] == 1.0 and report["max_abs_diff"] < 1e-3
    assert 4 * 4.6e6 < report["size_bytes"] < 4 * 4.8e6  # 4.69M float32 weights (with batchnorm statistics)
    assert [n for n in os.listdir(tmp_path) if n.startswith(".tmp")] == []
