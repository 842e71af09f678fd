"""The course's update rules as Keras 2 optimizers, and the trainer's optimizer factory.

Each class subclasses ``tf.keras.optimizers.Optimizer`` (the tf_keras 2.11+ optimizer API), so it
works with ``model.compile``, with a custom ``tf.function`` loop, under any ``tf.distribute``
strategy (the base class all-reduces the gradients and places slot variables next to their
weights) and inside ``tf.keras.mixed_precision.LossScaleOptimizer``. The Keras base class also
provides ``clipnorm``, ``clipvalue``, ``global_clipnorm``, decoupled ``weight_decay`` and EMA.

The classes carry a ``Course`` prefix so that they never shadow Keras's own ``SGD``/``Adam`` in a
reader's namespace or in a saved model's config (they register as ``cs231n_tf>CourseAdam`` ...).
Hyperparameter names and defaults are the course's (:mod:`cs231n_tf.optim.rules`), and the tests
prove each class takes the same steps as its rule.

Where Keras's built-ins compute the same thing, and where they do not:

============================  =========================================================================
``CourseSGD``                 ``tf.keras.optimizers.SGD(lr)``: identical.
``CourseSGDMomentum``         ``SGD(lr, momentum=mu)``: identical (``v = mu*v - lr*g; w += v``).
``CourseNesterov``            ``SGD(lr, momentum=mu, nesterov=True)``: the same update written the
                              other way (``w += mu*v - lr*g`` equals ``w += -mu*v_prev + (1+mu)*v``).
``CourseAdaGrad``             ``Adagrad`` starts its accumulator at 0.1 (not 0) and divides by
                              ``sqrt(cache + eps)`` (not ``sqrt(cache) + eps``); equal when Keras gets
                              ``initial_accumulator_value=0`` and both ``epsilon=0``.
``CourseRMSProp``             ``RMSprop`` divides by ``sqrt(cache + eps)`` (course: ``sqrt(cache) +
                              eps``), its ``rho`` defaults to 0.9 (course 0.99); equal with ``eps=0``.
``CourseAdam``                ``Adam`` adds eps to the *uncorrected* ``sqrt(v)`` by default; with
                              ``adaptive_epsilon=True`` it is the course's update exactly.
============================  =========================================================================
"""

import inspect
import numbers

import tensorflow as tf

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, InputTypeError

_register = tf.keras.utils.register_keras_serializable(package="cs231n_tf")


def _check(name, value, low, high=None, high_open=False):
    """Return ``float(value)`` after checking it lies in ``[low, high]`` (or ``[low, high)``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a real number, got {value!r}")
    too_high = high is not None and (value >= high if high_open else value > high)
    if value < low or too_high:
        accepted = f">= {low}" if high is None else f"in [{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(f"{name} must be {accepted}, got {value!r}")
    return float(value)


class CourseOptimizer(tf.keras.optimizers.Optimizer):
    """Shared machinery: the learning rate, zero-initialised slot variables and the config.

    A subclass lists its slot names in ``_slots``, its extra hyperparameters in ``_hyper_names``
    and implements ``_apply(gradient, variable, lr)``.
    """

    _slots = ()
    _hyper_names = ()

    def __init__(self, learning_rate, name, **kwargs):
        super().__init__(name=name, **kwargs)
        self._learning_rate = self._build_learning_rate(learning_rate)

    def build(self, var_list):
        """Create one zero slot per name in ``_slots`` for every trainable variable."""
        super().build(var_list)
        if getattr(self, "_built", False):
            return
        self._built = True
        self._slot_variables = {
            slot: [self.add_variable_from_reference(var, slot) for var in var_list]
            for slot in self._slots
        }

    def _slot(self, slot, variable):
        return self._slot_variables[slot][self._index_dict[self._var_key(variable)]]

    def update_step(self, gradient, variable):
        """Apply one step of the rule to ``variable``."""
        if isinstance(gradient, tf.IndexedSlices):
            # The course's rules decay their whole state every step, so a sparse gradient (from
            # an embedding) is applied as the dense gradient it stands for.
            gradient = tf.convert_to_tensor(gradient)
        lr = tf.cast(self.learning_rate, variable.dtype)
        self._apply(gradient, variable, lr)

    def _apply(self, gradient, variable, lr):
        raise NotImplementedError

    def get_config(self):
        config = super().get_config()
        config["learning_rate"] = self._serialize_hyperparameter(self._learning_rate)
        config.update({key: getattr(self, key) for key in self._hyper_names})
        return config


@_register
class CourseSGD(CourseOptimizer):
    """Vanilla SGD, the course's ``sgd``: ``w -= learning_rate * dw``."""

    def __init__(self, learning_rate=1e-2, name="CourseSGD", **kwargs):
        super().__init__(learning_rate, name, **kwargs)

    def _apply(self, gradient, variable, lr):
        variable.assign_sub(lr * gradient)


@_register
class CourseSGDMomentum(CourseOptimizer):
    """The course's ``sgd_momentum``: ``v = momentum * v - learning_rate * dw; w += v``."""

    _slots = ("velocity",)
    _hyper_names = ("momentum",)

    def __init__(self, learning_rate=1e-2, momentum=0.9, name="CourseSGDMomentum", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.momentum = _check("momentum", momentum, 0.0, 1.0, high_open=True)

    def _apply(self, gradient, variable, lr):
        v = self._slot("velocity", variable)
        v.assign(self.momentum * v - lr * gradient)
        variable.assign_add(v)


@_register
class CourseNesterov(CourseOptimizer):
    """The course's ``nesterov_momentum`` (lecture 7's change of variables).

    ``v_prev = v; v = momentum * v - learning_rate * dw; w += -momentum * v_prev + (1 + momentum) * v``.
    """

    _slots = ("velocity",)
    _hyper_names = ("momentum",)

    def __init__(self, learning_rate=1e-2, momentum=0.9, name="CourseNesterov", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.momentum = _check("momentum", momentum, 0.0, 1.0, high_open=True)

    def _apply(self, gradient, variable, lr):
        v = self._slot("velocity", variable)
        v_prev = tf.identity(v)
        v.assign(self.momentum * v_prev - lr * gradient)
        variable.assign_add(-self.momentum * v_prev + (1.0 + self.momentum) * v)


@_register
class CourseAdaGrad(CourseOptimizer):
    """The course's AdaGrad: ``cache += dw**2; w -= learning_rate * dw / (sqrt(cache) + epsilon)``."""

    _slots = ("cache",)
    _hyper_names = ("epsilon",)

    def __init__(self, learning_rate=1e-2, epsilon=1e-7, name="CourseAdaGrad", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.epsilon = _check("epsilon", epsilon, 0.0)

    def _apply(self, gradient, variable, lr):
        cache = self._slot("cache", variable)
        cache.assign_add(gradient * gradient)
        variable.assign_sub(lr * gradient / (tf.sqrt(cache) + self.epsilon))


@_register
class CourseRMSProp(CourseOptimizer):
    """The course's ``rmsprop``: a leaky AdaGrad cache.

    ``cache = decay_rate * cache + (1 - decay_rate) * dw**2;
    w -= learning_rate * dw / (sqrt(cache) + epsilon)``.
    """

    _slots = ("cache",)
    _hyper_names = ("decay_rate", "epsilon")

    def __init__(self, learning_rate=1e-2, decay_rate=0.99, epsilon=1e-8, name="CourseRMSProp",
                 **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.decay_rate = _check("decay_rate", decay_rate, 0.0, 1.0)
        self.epsilon = _check("epsilon", epsilon, 0.0)

    def _apply(self, gradient, variable, lr):
        cache = self._slot("cache", variable)
        cache.assign(self.decay_rate * cache + (1.0 - self.decay_rate) * gradient * gradient)
        variable.assign_sub(lr * gradient / (tf.sqrt(cache) + self.epsilon))


@_register
class CourseAdam(CourseOptimizer):
    """The course's ``adam``, bias-corrected with ``t = iterations + 1`` (first step ``t = 1``).

    ``m = beta1*m + (1-beta1)*dw; v = beta2*v + (1-beta2)*dw**2;
    w -= learning_rate * (m / (1-beta1**t)) / (sqrt(v / (1-beta2**t)) + epsilon)``.

    Like Keras's ``Adam``, ``iterations`` also counts the steps a ``LossScaleOptimizer`` skipped
    for non-finite gradients.
    """

    _slots = ("m", "v")
    _hyper_names = ("beta1", "beta2", "epsilon")

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, name="CourseAdam",
                 **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.beta1 = _check("beta1", beta1, 0.0, 1.0, high_open=True)
        self.beta2 = _check("beta2", beta2, 0.0, 1.0, high_open=True)
        self.epsilon = _check("epsilon", epsilon, 0.0)

    def _apply(self, gradient, variable, lr):
        dtype = variable.dtype
        m = self._slot("m", variable)
        v = self._slot("v", variable)
        t = tf.cast(self.iterations + 1, dtype)
        m.assign(self.beta1 * m + (1.0 - self.beta1) * gradient)
        v.assign(self.beta2 * v + (1.0 - self.beta2) * gradient * gradient)
        # tf.constant in the variable's dtype keeps float64 runs exact (no float32 detour).
        m_hat = m / (1.0 - tf.pow(tf.constant(self.beta1, dtype), t))
        v_hat = v / (1.0 - tf.pow(tf.constant(self.beta2, dtype), t))
        variable.assign_sub(lr * m_hat / (tf.sqrt(v_hat) + self.epsilon))


# name -> (class, default keyword arguments). The course's rules under their short names; Keras's
# own implementations under ``keras_*`` for comparison and production use.
_OPTIMIZERS = {
    "sgd": (CourseSGD, {}),
    "momentum": (CourseSGDMomentum, {}),
    "nesterov": (CourseNesterov, {}),
    "adagrad": (CourseAdaGrad, {}),
    "rmsprop": (CourseRMSProp, {}),
    "adam": (CourseAdam, {}),
    "adamw": (tf.keras.optimizers.AdamW, {}),
    "keras_sgd": (tf.keras.optimizers.SGD, {}),
    "keras_momentum": (tf.keras.optimizers.SGD, {"momentum": 0.9}),
    "keras_nesterov": (tf.keras.optimizers.SGD, {"momentum": 0.9, "nesterov": True}),
    "keras_adagrad": (tf.keras.optimizers.Adagrad, {}),
    "keras_rmsprop": (tf.keras.optimizers.RMSprop, {}),
    "keras_adam": (tf.keras.optimizers.Adam, {}),
}

OPTIMIZER_NAMES = tuple(_OPTIMIZERS)


def _accepted_options(cls):
    names = set()
    for klass in (cls, tf.keras.optimizers.Optimizer):
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                names.add(p.name)
    return names - {"self", "learning_rate"}


def get_optimizer(name, learning_rate=None, **options):
    """Make an optimizer by name for ``model.compile`` or the trainer.

    Args:
      name: one of :data:`OPTIMIZER_NAMES`: ``sgd, momentum, nesterov, adagrad, rmsprop, adam``
        (the course's rules, ``Course*`` classes), ``adamw`` (``tf.keras.optimizers.AdamW``) and
        ``keras_sgd, keras_momentum, keras_nesterov, keras_adagrad, keras_rmsprop, keras_adam``
        (Keras's built-ins; ``keras_momentum``/``keras_nesterov`` use momentum 0.9).
      learning_rate: a positive float or a ``tf.keras.optimizers.schedules.LearningRateSchedule``;
        ``None`` keeps the optimizer's default.
      **options: the optimizer's hyperparameters (``momentum``, ``decay_rate``, ``beta1``, ...)
        and Keras's base options, among them ``clipnorm`` (per-tensor norm), ``clipvalue``
        (element-wise), ``global_clipnorm`` (norm over all gradients) and ``weight_decay``.

    Raises:
      ConfigError: unknown name or option, or a non-positive learning rate.
      InputTypeError: ``learning_rate`` neither a number nor a schedule.
    """
    if name not in _OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; accepted: {', '.join(OPTIMIZER_NAMES)}")
    cls, defaults = _OPTIMIZERS[name]
    unknown = sorted(set(options) - _accepted_options(cls))
    if unknown:
        raise ConfigError(
            f"optimizer {name!r} does not accept {', '.join(unknown)}; accepted: "
            f"{', '.join(sorted(_accepted_options(cls)))}"
        )
    kwargs = {**defaults, **options}
    if learning_rate is not None:
        if isinstance(learning_rate, tf.keras.optimizers.schedules.LearningRateSchedule):
            kwargs["learning_rate"] = learning_rate
        elif isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool):
            kwargs["learning_rate"] = validation.positive_number("learning_rate", learning_rate)
        else:
            raise InputTypeError(
                "learning_rate must be a float or a tf.keras.optimizers.schedules."
                f"LearningRateSchedule, got {type(learning_rate).__name__}"
            )
    return cls(**kwargs)
