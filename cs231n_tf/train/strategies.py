"""``tf.distribute`` strategies by name.

- ``default``: the default (no-op) strategy, one device.
- ``one_device``: ``OneDeviceStrategy`` on the first GPU, else the CPU.
- ``mirrored``: ``MirroredStrategy`` over every local GPU (or the CPU's logical devices when there
  are several and no GPU, which is how the tests exercise multi-replica training on a CPU).
- ``multi_worker``: ``MultiWorkerMirroredStrategy``; reads the cluster from ``TF_CONFIG``. It must
  be created before any other TensorFlow op runs in the process.
- ``tpu``: ``TPUStrategy`` on the TPU found by ``TPUClusterResolver`` (``--tpu`` address or the
  environment's default).
"""

import tensorflow as tf

from cs231n_tf.errors import ConfigError

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")


def make_strategy(name="default", tpu=None):
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        # Host memory is shared, so reducing on one device is as fast as collectives here, and it
        # lets several strategies live in one process (a search's trials, a test suite): collective
        # instance keys restart with every strategy and clash between strategies on the same devices.
        return tf.distribute.MirroredStrategy(devices=cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.NotFoundError, tf.errors.UnavailableError) as exc:
        raise ConfigError(f"strategy 'tpu': no TPU found ({exc})") from exc
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy):
    """Whether this process writes checkpoints, logs and reports (worker 0 / the chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_id(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    return f"{resolver.task_type}-{resolver.task_id}" if resolver is not None and resolver.task_type else "local"
