"""Zoo builders through the package's own path: trainer (incl. mixed precision) -> run dir -> TFLite."""

import numpy as np
import pytest

from cs231n_tf.export import export_run
from cs231n_tf.train.trainer import train


@pytest.fixture(scope="module")
def rgb32(tmp_path_factory):
    """60 random 32x32x3 uint8 images in 4 classes, as an ``npz:`` data set."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)
    y = np.arange(60) % 4
    path = tmp_path_factory.mktemp("data") / "rgb32.npz"
    np.savez(path, x_train=x[:44], y_train=y[:44], x_test=x[44:], y_test=y[44:])
    return f"npz:{path}"


@pytest.mark.slow
@pytest.mark.parametrize("name, options, precision", [
    ("resnet20", {}, "mixed_float16"),
    ("squeezenet1_1", {}, None),
    ("fractalnet", {"columns": 2, "filters": (8, 8, 8, 8, 8)}, "mixed_bfloat16"),
])
def test_trains_with_the_package_trainer_and_exports_to_tflite(tmp_path, rgb32, name, options, precision):
    run_dir = str(tmp_path / name)
    result = train(run_dir=run_dir, model=name, model_options=options, dataset=rgb32, epochs=1, batch_size=8,
                   validation_fraction=0.2, mixed_precision=precision, log_every=1)
    m = result.metrics
    assert m["steps"] == 4 and np.isfinite(m["final_train_loss"])
    # The float32 .tflite (normalisation in the graph) reproduces the Keras model rebuilt in float32
    # from the run's float32 master weights, mixed-precision runs included.
    report = export_run(run_dir, format="tflite", out=str(tmp_path / "export"))
    assert report["accuracy"] == pytest.approx(report["keras_accuracy"])
    assert report["max_abs_diff"] < 1e-4
    if precision is None:
        assert report["keras_accuracy"] == pytest.approx(m["test_accuracy"])
