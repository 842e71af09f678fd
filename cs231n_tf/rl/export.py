"""Policy export of an RL run (DQN, Double DQN, REINFORCE, A2C) to SavedModel and TFLite, action-checked.

The serving module maps ``observations`` (a batch, the environment's observation dtype) to
``actions`` (int64, the greedy action: argmax of the Q-values or of the logits) and the network's
own output, ``q_values`` (DQN runs) or ``logits`` (policy-gradient runs). It is written through the
package's exporter (:func:`~cs231n_tf.export.exporter.export_module` and
:func:`~cs231n_tf.export.exporter.export_signature_tflite`, each reloaded and compared with the
module before it is put in place); on top of that, the TFLite model and the SavedModel are run on a
batch of observations a random policy meets in the run's environment and must pick the same
action as the Keras network on every one. ``export.json`` in the output directory reports both.
"""

import os

import numpy as np
import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.engine import rundir
from cs231n_tf.errors import ExportError
from cs231n_tf.fileio import atomic_write_json
from cs231n_tf.rl import dqn, pg
from cs231n_tf.rl.loop import observation_batch

REPORT_FILE = "export.json"
TFLITE_FILE = "policy.tflite"


class PolicyServing(tf.Module):
    """``serve(observations) -> {"actions", output_name}``: the greedy action and the network's outputs."""

    def __init__(self, network, observation_shape, observation_dtype, output_name):
        super().__init__(name="policy_serving")
        self.network = network
        self.output_name = output_name
        spec = tf.TensorSpec((None,) + tuple(observation_shape), tf.as_dtype(observation_dtype), name="observations")
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, observations):
        outputs = tf.cast(self.network(observations, training=False), tf.float32)
        return {"actions": tf.argmax(outputs, axis=1, output_type=tf.int64), self.output_name: outputs}


def load_network(run_dir, checkpoint=None):
    """``(config, network, output name, checkpoint path)`` of any RL run: its Q-network or policy network."""
    task = rundir.require_task(run_dir, (dqn.NAME, pg.NAME))
    if task == dqn.NAME:
        config, network, path = dqn.load_q_network(run_dir, checkpoint)
        return config, network, "q_values", path
    config, network, path = pg.load_policy(run_dir, checkpoint)
    return config, network, "logits", path


def export_run(run_dir, out=None, checkpoint=None, examples=256, saved_models_root="saved_models"):
    """Export a run's greedy policy to ``out/saved_model/`` and ``out/policy.tflite``; returns the report.

    ``out`` defaults to ``saved_models/<run name>/``. ``examples`` observations (seeded by the
    run's seed) are the verification batch; any disagreement in the chosen action raises
    :class:`~cs231n_tf.errors.ExportError` before the report is written.
    """
    from cs231n_tf.export import TFLiteRunner, export_module, export_signature_tflite

    examples = validation.positive_int("examples", examples)
    config, network, output_name, path = load_network(run_dir, checkpoint)
    observations = observation_batch(config.env, examples, config.seed)
    module = PolicyServing(network, observations.shape[1:], observations.dtype, output_name)
    out = os.path.abspath(out or os.path.join(saved_models_root, os.path.basename(os.path.normpath(run_dir))))
    inputs = {"observations": observations}
    saved = export_module(module, os.path.join(out, "saved_model"), inputs)
    lite = export_signature_tflite(module, module.serve, os.path.join(out, TFLITE_FILE), inputs)
    keras_actions = np.argmax(network(observations, training=False).numpy(), axis=1)
    loaded = tf.saved_model.load(os.path.join(out, "saved_model")).signatures["serving_default"]
    picked = {"saved_model": loaded(observations=tf.constant(observations))["actions"].numpy(),
              "tflite": TFLiteRunner(model_path=lite["path"]).run(observations=observations)["actions"]}
    agreement = {name: float(np.mean(actions == keras_actions)) for name, actions in picked.items()}
    for name, fraction in agreement.items():
        if fraction < 1.0:
            raise ExportError(f"the {name} export picks a different action from the Keras network on "
                              f"{round((1 - fraction) * examples)} of {examples} observations")
    report = {"run_dir": os.path.abspath(run_dir), "env": config.env, "algo": config.algo, "checkpoint": path,
              "outputs": ["actions", output_name], "examples": examples,
              "verified_on": f"{examples} observations of a uniformly random policy in {config.env} (seed "
                             f"{config.seed})", "action_agreement": agreement,
              "saved_model": saved, "tflite": lite}
    atomic_write_json(os.path.join(out, REPORT_FILE), report)
    return report
