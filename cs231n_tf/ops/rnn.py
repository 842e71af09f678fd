"""Recurrent networks (lecture 10, assignment 3): vanilla RNN, LSTM, word embeddings, and the
per-time-step affine layer used to score a vocabulary.

Sequences are batch-major, ``x (N, T, D)`` -> ``h (N, T, H)``. Over a whole sequence the input
projection ``x @ wx`` is one matmul; only the recurrence runs step by step (``tf.scan``, so T may
be dynamic inside ``tf.function``). Backpropagation through time is a reverse scan that carries
the gradient flowing into the previous hidden (and cell) state; the weight gradients are then
summed over all steps at once.
"""

import tensorflow as tf

from cs231n_tf.ops._util import (
    check_dim, check_in_range, check_rank, float_tensors, int_tensor, zeros_if_none,
)


def _check_recurrent(op, x, h0, wx, wh, b, gates, x_layout):
    """Validate a recurrent layer's shapes; ``gates`` is 1 (RNN) or 4 (LSTM)."""
    check_rank(x, len(x_layout.split(",")), "x", x_layout)
    check_rank(h0, 2, "prev_h" if x.shape.rank == 2 else "h0", "(N, H)")
    check_rank(wx, 2, "wx", f"(D, {gates}H)" if gates > 1 else "(D, H)")
    check_rank(wh, 2, "wh", f"(H, {gates}H)" if gates > 1 else "(H, H)")
    check_rank(b, 1, "b", f"({gates}H,)" if gates > 1 else "(H,)")
    hidden = wh.shape[0]
    width = None if hidden is None else gates * hidden
    check_dim(x.shape[-1], wx.shape[0], f"{op}: x's D vs wx's first axis (wx shape {wx.shape})")
    check_dim(h0.shape[0], x.shape[0], f"{op}: hidden state's N vs x's N (x shape {x.shape})")
    check_dim(h0.shape[1], hidden, f"{op}: hidden state's H vs wh's first axis (wh shape {wh.shape})")
    for name, size in (("wx", wx.shape[1]), ("wh", wh.shape[1]), ("b", b.shape[0])):
        check_dim(size, width, f"{op}: {name}'s last axis vs {gates} x H = {gates} x {hidden}")


def _sequence_grads(x, h_prev, da, wx):
    """Gradients of ``a_t = x_t @ wx + h_{t-1} @ wh + b`` summed over time.

    ``x (N, T, D)``, ``h_prev (T, N, H)`` and ``da (T, N, G)`` -> ``(dx, dwx, dwh, db)``.
    """
    dx = tf.einsum("tng,dg->ntd", da, wx)
    dwx = tf.einsum("ntd,tng->dg", x, da)
    dwh = tf.einsum("tnh,tng->hg", h_prev, da)
    return dx, dwx, dwh, tf.reduce_sum(da, [0, 1])


def _time_major(x):
    return tf.transpose(x, [1, 0, 2])


def rnn_step(x, prev_h, wx, wh, b):
    """One vanilla RNN step ``next_h = tanh(x @ wx + prev_h @ wh + b)``.

    Shapes: ``x (N, D)``, ``prev_h (N, H)``, ``wx (D, H)``, ``wh (H, H)``, ``b (H,)`` ->
    ``next_h (N, H)``. Backward: ``da = dnext_h * (1 - next_h^2)``, then ``dx = da @ wx^T``,
    ``dprev_h = da @ wh^T``, ``dwx = x^T @ da``, ``dwh = prev_h^T @ da``, ``db = sum_n da``.
    """
    x, prev_h, wx, wh, b = float_tensors(x, prev_h, wx, wh, b)
    _check_recurrent("rnn_step", x, prev_h, wx, wh, b, 1, "(N, D)")

    @tf.custom_gradient
    def _rnn_step(x, prev_h, wx, wh, b):
        next_h = tf.math.tanh(x @ wx + prev_h @ wh + b)

        def grad(dnext_h):
            da = dnext_h * (1 - tf.square(next_h))
            return (
                tf.matmul(da, wx, transpose_b=True),
                tf.matmul(da, wh, transpose_b=True),
                tf.matmul(x, da, transpose_a=True),
                tf.matmul(prev_h, da, transpose_a=True),
                tf.reduce_sum(da, 0),
            )

        return next_h, grad

    return _rnn_step(x, prev_h, wx, wh, b)


def rnn(x, h0, wx, wh, b):
    """Vanilla RNN over a sequence: ``h_t = tanh(x_t @ wx + h_{t-1} @ wh + b)``.

    Shapes: ``x (N, T, D)``, ``h0 (N, H)``, ``wx (D, H)``, ``wh (H, H)``, ``b (H,)`` ->
    ``h (N, T, H)`` (every step's hidden state). Backward through time: the gradient reaching
    ``h_t`` is its upstream ``dh[:, t]`` plus ``da_{t+1} @ wh^T`` from the next step, and
    ``da_t = (that) * (1 - h_t^2)``; ``dh0`` is what flows back out of step 0.
    """
    x, h0, wx, wh, b = float_tensors(x, h0, wx, wh, b)
    _check_recurrent("rnn", x, h0, wx, wh, b, 1, "(N, T, D)")

    @tf.custom_gradient
    def _rnn(x, h0, wx, wh, b):
        x_proj = _time_major(tf.tensordot(x, wx, 1))
        hs = tf.scan(lambda h, xw: tf.math.tanh(xw + h @ wh + b), x_proj, initializer=h0)

        def grad(dh):
            def backward_step(carry, inputs):
                dh_from_next, _ = carry
                dh_t, h_t = inputs
                da = (dh_t + dh_from_next) * (1 - tf.square(h_t))
                return tf.matmul(da, wh, transpose_b=True), da

            zeros = tf.zeros_like(h0)
            dh_prev, da = tf.scan(backward_step, (_time_major(dh), hs), initializer=(zeros, zeros),
                                  reverse=True)
            h_prev = tf.concat([h0[None], hs[:-1]], 0)
            dx, dwx, dwh, db = _sequence_grads(x, h_prev, da, wx)
            return dx, dh_prev[0], dwx, dwh, db

        return _time_major(hs), grad

    return _rnn(x, h0, wx, wh, b)


def _lstm_cell(a, prev_c):
    """The LSTM cell from pre-activations ``a (N, 4H)``, gates ordered ``i, f, o, g``.

    Returns ``(next_h, next_c, gates)``: ``next_c = f * prev_c + i * g``,
    ``next_h = o * tanh(next_c)``.
    """
    a_i, a_f, a_o, a_g = tf.split(a, 4, axis=-1)
    i, f, o, g = tf.math.sigmoid(a_i), tf.math.sigmoid(a_f), tf.math.sigmoid(a_o), tf.math.tanh(a_g)
    next_c = f * prev_c + i * g
    return o * tf.math.tanh(next_c), next_c, (i, f, o, g)


def _lstm_cell_backward(dnext_h, dnext_c, prev_c, next_c, gates):
    """Backward of :func:`_lstm_cell`: ``(da (N, 4H), dprev_c (N, H))``."""
    i, f, o, g = gates
    tanh_c = tf.math.tanh(next_c)
    # The cell state feeds next_h (through o * tanh) as well as the next step's cell.
    dc = dnext_c + dnext_h * o * (1 - tf.square(tanh_c))
    di, df, do, dg = dc * g, dc * prev_c, dnext_h * tanh_c, dc * i
    da = tf.concat([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - tf.square(g))], -1)
    return da, dc * f


def lstm_step(x, prev_h, prev_c, wx, wh, b):
    """One LSTM step (Hochreiter & Schmidhuber 1997).

    Shapes: ``x (N, D)``, ``prev_h``/``prev_c (N, H)``, ``wx (D, 4H)``, ``wh (H, 4H)``,
    ``b (4H,)`` -> ``(next_h, next_c)``, each ``(N, H)``. ``a = x @ wx + prev_h @ wh + b`` is
    split into gates in the order input, forget, output, block input (``i, f, o, g``);
    ``i, f, o`` are sigmoids and ``g`` a tanh.
    """
    x, prev_h, prev_c, wx, wh, b = float_tensors(x, prev_h, prev_c, wx, wh, b)
    _check_recurrent("lstm_step", x, prev_h, wx, wh, b, 4, "(N, D)")
    check_rank(prev_c, 2, "prev_c", "(N, H)")
    check_dim(prev_c.shape[1], prev_h.shape[1], f"lstm_step: prev_c shape {prev_c.shape} vs prev_h's H")

    @tf.custom_gradient
    def _lstm_step(x, prev_h, prev_c, wx, wh, b):
        next_h, next_c, gates = _lstm_cell(x @ wx + prev_h @ wh + b, prev_c)

        def grad(dnext_h, dnext_c):
            dnext_h = zeros_if_none(dnext_h, next_h)
            dnext_c = zeros_if_none(dnext_c, next_c)
            da, dprev_c = _lstm_cell_backward(dnext_h, dnext_c, prev_c, next_c, gates)
            return (
                tf.matmul(da, wx, transpose_b=True),
                tf.matmul(da, wh, transpose_b=True),
                dprev_c,
                tf.matmul(x, da, transpose_a=True),
                tf.matmul(prev_h, da, transpose_a=True),
                tf.reduce_sum(da, 0),
            )

        return (next_h, next_c), grad

    return _lstm_step(x, prev_h, prev_c, wx, wh, b)


def lstm(x, h0, wx, wh, b):
    """LSTM over a sequence, initial cell state zero; gates as :func:`lstm_step`.

    Shapes: ``x (N, T, D)``, ``h0 (N, H)``, ``wx (D, 4H)``, ``wh (H, 4H)``, ``b (4H,)`` ->
    ``h (N, T, H)``. Backward through time carries both ``dh`` and ``dc`` into the previous step.
    """
    x, h0, wx, wh, b = float_tensors(x, h0, wx, wh, b)
    _check_recurrent("lstm", x, h0, wx, wh, b, 4, "(N, T, D)")

    @tf.custom_gradient
    def _lstm(x, h0, wx, wh, b):
        x_proj = _time_major(tf.tensordot(x, wx, 1))
        zeros = tf.zeros_like(h0)

        def forward_step(state, xw):
            h, c = state[0], state[1]
            next_h, next_c, gates = _lstm_cell(xw + h @ wh + b, c)
            return (next_h, next_c) + gates

        hs, cs, *gates = tf.scan(forward_step, x_proj, initializer=(h0, zeros) + (zeros,) * 4)

        def grad(dh):
            def backward_step(carry, inputs):
                dh_from_next, dc_from_next, _ = carry
                dh_t, prev_c, next_c, *step_gates = inputs
                da, dprev_c = _lstm_cell_backward(dh_t + dh_from_next, dc_from_next, prev_c, next_c,
                                                  step_gates)
                return tf.matmul(da, wh, transpose_b=True), dprev_c, da

            c_prev = tf.concat([zeros[None], cs[:-1]], 0)
            dh_prev, _, da = tf.scan(
                backward_step,
                (_time_major(dh), c_prev, cs, *gates),
                initializer=(zeros, zeros, tf.concat([zeros] * 4, -1)),
                reverse=True,
            )
            h_prev = tf.concat([h0[None], hs[:-1]], 0)
            dx, dwx, dwh, db = _sequence_grads(x, h_prev, da, wx)
            return dx, dh_prev[0], dwx, dwh, db

        return _time_major(hs), grad

    return _lstm(x, h0, wx, wh, b)


def word_embedding(x, w):
    """Look up word vectors: ``x (N, T)`` integer indices into ``w (V, D)`` -> ``(N, T, D)``.

    Indices must lie in ``[0, V)``. Backward: ``dw`` is a scatter-add of ``dout`` into the rows
    that were looked up (a word used twice gets both gradients); ``x`` has no gradient.
    """
    (w,) = float_tensors(w)
    x = int_tensor(x, "x")
    check_rank(w, 2, "w", "(V, D)")
    vocab = w.shape[0] if w.shape[0] is not None else tf.shape(w)[0]
    x = check_in_range(x, vocab, "x", "word indices")

    @tf.custom_gradient
    def _embed(w):
        def grad(dout):
            return tf.tensor_scatter_nd_add(
                tf.zeros_like(w), tf.reshape(x, [-1, 1]), tf.reshape(dout, [-1, tf.shape(w)[1]])
            )

        return tf.gather(w, x), grad

    return _embed(w)


def temporal_affine(x, w, b):
    """Affine layer at every time step: ``x (N, T, D)``, ``w (D, M)``, ``b (M,)`` -> ``(N, T, M)``.

    Backward: ``dx = dout @ w^T``; ``dw`` and ``db`` sum over both N and T.
    """
    x, w, b = float_tensors(x, w, b)
    check_rank(x, 3, "x", "(N, T, D)")
    check_rank(w, 2, "w", "(D, M)")
    check_rank(b, 1, "b", "(M,)")
    check_dim(x.shape[2], w.shape[0], f"temporal_affine: x's D vs w's D (w shape {w.shape})")
    check_dim(b.shape[0], w.shape[1], f"temporal_affine: b's length vs w's M (w shape {w.shape})")

    @tf.custom_gradient
    def _temporal_affine(x, w, b):
        def grad(dout):
            dx = tf.tensordot(dout, w, [[2], [1]])
            dw = tf.einsum("ntd,ntm->dm", x, dout)
            return dx, dw, tf.reduce_sum(dout, [0, 1])

        return tf.tensordot(x, w, 1) + b, grad

    return _temporal_affine(x, w, b)
