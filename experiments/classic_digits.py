"""The classic classifiers of lectures 2-4 on the embedded digits data (8x8 grey, 10 classes).

Data: the package's ``digits`` data set, ``cs231n_tf.data.load("digits", split_seed=seed)``:
scikit-learn's 1,797 handwritten digits, split (stratified) into train / validation / test as every
other experiment of the package sees them. Pixels are divided by 16 and centred with the training
mean, then flattened to 64 features.

Model selection uses the training and validation splits only, as in assignment 1:

- k-NN (L2): k by 5-fold cross-validation on the training split (shuffled once with the seed,
  because ``cross_validate`` cuts contiguous folds); the smallest k among the best mean accuracies.
- LinearSVM and SoftmaxClassifier (minibatch SGD, ``reg * sum(W**2)``): learning rate and
  regularisation from a grid, the model with the best validation accuracy.
- TwoLayerNet (affine-ReLU-affine, ``0.5 * reg * sum(W**2)``, Adam via ``train_network``): the same,
  with the parameters of its best validation epoch.

Each chosen model is scored once on the test split. scikit-learn's k-NN and logistic regression
on the same split are printed as reference points.

    python experiments/classic_digits.py
"""

import argparse
import itertools
import os
import platform
import time

import cs231n_tf  # noqa: F401  (selects Keras 2 before TensorFlow resolves tf.keras)
import numpy as np
import tensorflow as tf
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from cs231n_tf.classic import KNearestNeighbor, LinearSVM, SoftmaxClassifier, TwoLayerNet, accuracy, train_network
from cs231n_tf.data import load

LINEAR_GRID = {"learning_rate": [1e-1, 3e-1, 1.0, 3.0], "reg": [1e-4, 1e-3, 1e-2]}
NET_GRID = {"learning_rate": [3e-3, 1e-2, 3e-2], "reg": [1e-4, 1e-3, 1e-2]}
KS = [1, 3, 5, 7, 10, 15, 20]


def load_features(seed):
    """``(x_train, y_train, x_val, y_val, x_test, y_test)``: (N, 64) float32 centred features."""
    splits = load("digits", split_seed=seed)
    a = splits.arrays
    scale = splits.info.pixel_max

    def flat(x):
        return (x.reshape(len(x), -1) / scale).astype(np.float32)

    x_train, x_val, x_test = flat(a["x_train"]), flat(a["x_validation"]), flat(a["x_test"])
    mean = x_train.mean(axis=0)
    return (x_train - mean, a["y_train"], x_val - mean, a["y_validation"], x_test - mean, a["y_test"])


def grid(spec):
    return [dict(zip(spec, values)) for values in itertools.product(*spec.values())]


def fit_linear(cls, x, y, setting, args):
    clf = cls()
    clf.train(x, y, num_iters=args.iters, batch_size=200, seed=args.seed, **setting)
    return clf


def fit_net(x, y, x_val, y_val, setting, args):
    net = TwoLayerNet(input_dim=x.shape[1], hidden_dim=args.hidden, num_classes=10, weight_scale=1e-2,
                      seed=args.seed, reg=setting["reg"])
    data = {"x_train": x, "y_train": y, "x_val": x_val, "y_val": y_val}
    train_network(net, data, update="adam", learning_rate=setting["learning_rate"], num_epochs=args.epochs,
                  batch_size=100, seed=args.seed, lr_decay=0.95)
    return net


def search(fit, settings, score):
    """The setting whose model scores best (first one on ties), with its model and score."""
    best = None
    for setting in settings:
        model = fit(setting)
        value = score(model)
        print(f"  {setting} -> val {value:.4f}")
        if best is None or value > best[2]:
            best = (setting, model, value)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="data split, shuffles, initialisation")
    parser.add_argument("--iters", type=int, default=1500, help="SGD iterations for the linear classifiers")
    parser.add_argument("--epochs", type=int, default=30, help="epochs for the two-layer net")
    parser.add_argument("--hidden", type=int, default=100, help="hidden units of the two-layer net")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    x_train, y_train, x_val, y_val, x_test, y_test = load_features(args.seed)
    print(f"digits: {len(x_train)} train, {len(x_val)} validation, {len(x_test)} test")
    rows = []

    order = np.random.default_rng(args.seed).permutation(len(x_train))
    folds = KNearestNeighbor().cross_validate(x_train[order], y_train[order], KS, num_folds=5)
    means = {k: float(np.mean(v)) for k, v in folds.items()}
    # Rounded so that equal fold accuracies summed in a different order still count as a tie.
    best_k = max(KS, key=lambda k: (round(means[k], 9), -k))
    print("k-NN 5-fold cross-validation on the training split (accuracy per fold):")
    for k in KS:
        print(f"  k={k:2d}: mean {means[k]:.4f}, folds " + " ".join(f"{a:.4f}" for a in folds[k]))
    knn = KNearestNeighbor().train(x_train, y_train)
    rows.append(("k-NN (L2, no-loop distances)", f"k={best_k}", f"{means[best_k]:.4f} (5-fold CV)",
                 float(np.mean(knn.predict(x_test, k=best_k) == y_test))))

    for cls in (LinearSVM, SoftmaxClassifier):
        print(f"{cls.__name__} search ({args.iters} SGD iterations, batch 200):")
        setting, best, val = search(lambda s, cls=cls: fit_linear(cls, x_train, y_train, s, args),
                                    grid(LINEAR_GRID), lambda m: float(np.mean(m.predict(x_val) == y_val)))
        rows.append((cls.__name__, f"lr={setting['learning_rate']:g}, reg={setting['reg']:g}", f"{val:.4f}",
                     float(np.mean(best.predict(x_test) == y_test))))

    print(f"TwoLayerNet search (hidden {args.hidden}, Adam, {args.epochs} epochs, batch 100):")
    setting, best, val = search(lambda s: fit_net(x_train, y_train, x_val, y_val, s, args), grid(NET_GRID),
                                lambda m: accuracy(m, x_val, y_val))
    rows.append((f"TwoLayerNet (hidden {args.hidden}, Adam, {args.epochs} epochs)",
                 f"lr={setting['learning_rate']:g}, reg={setting['reg']:g}", f"{val:.4f}",
                 accuracy(best, x_test, y_test)))

    sk_knn = KNeighborsClassifier(n_neighbors=best_k, algorithm="brute").fit(x_train, y_train)
    rows.append(("scikit-learn KNeighborsClassifier (reference)", f"k={best_k}", "-", sk_knn.score(x_test, y_test)))
    sk_lr = LogisticRegression(max_iter=2000).fit(x_train, y_train)
    rows.append(("scikit-learn LogisticRegression (reference)", "C=1.0", "-", sk_lr.score(x_test, y_test)))

    print(f"\nmachine: {os.cpu_count()}-core CPU, Python {platform.python_version()}, TensorFlow {tf.__version__}; "
          f"{time.perf_counter() - start:.0f} s\n")
    print("| classifier | chosen setting | validation acc. | test acc. |")
    print("|---|---|---|---:|")
    for name, setting, val, test in rows:
        print(f"| {name} | {setting} | {val} | {test:.4f} |")


if __name__ == "__main__":
    main()
