"""Finite MDPs and planning (lecture 14): the Bellman optimality backup, value and policy iteration.

A finite MDP is given in gymnasium's transition-table format, the one ``FrozenLake``, ``Taxi`` and
``CliffWalking`` expose as ``env.unwrapped.P``::

    P[s][a] = [(probability, next_state, reward, terminated), ...]

States are ``0..S-1`` and every state has the same actions ``0..A-1``. A transition with
``terminated=True`` ends the episode: the value of its next state is not counted. Gymnasium gives
terminal states (FrozenLake's holes and goal) self-loops with ``terminated=True`` and reward 0,
so their value is 0.

:class:`TabularMDP` turns the table into dense arrays once: the expected reward
``r[s, a] = sum p * reward`` and the continuation ``C[s, a, s'] = sum p * (1 - terminated)`` (the
probability of landing in ``s'`` without the episode ending). The lecture's backup

    V_{i+1}(s) = max_a sum_{s'} p(s' | s, a) [r(s, a, s') + gamma V_i(s')]

is then ``Q = r + gamma C V`` followed by a max over actions (:func:`bellman_optimality_backup`).

Tie-breaking is deterministic: the greedy policy (:func:`greedy_policy`) takes the *lowest* action
index among the actions whose Q is within ``TIE_TOLERANCE * max(1, |max_a Q|)`` of the best one,
so value iteration (whose V is within ``tol`` of V*) and policy iteration (exact V of its final
policy) return the same policy whenever true ties are exact, as FrozenLake's symmetric moves are.

``gamma`` must be in (0, 1]. With ``gamma = 1`` the values are finite only if every state can reach
a terminating transition; :meth:`TabularMDP.check_terminating` refuses the MDP otherwise, and value
iteration stops with :class:`~cs231n_tf.errors.DataError` after ``max_iterations`` sweeps rather
than looping forever.
"""

import math
import numbers

import numpy as np

from cs231n_tf import validation
from cs231n_tf.errors import ConfigError, DataError

TIE_TOLERANCE = 1e-9
PROBABILITY_TOLERANCE = 1e-6
DEFAULT_MAX_ITERATIONS = 100_000


def check_gamma(gamma):
    """``gamma`` as a float in (0, 1]; anything else raises :class:`ConfigError`."""
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not math.isfinite(gamma) \
            or not 0.0 < gamma <= 1.0:
        raise ConfigError(f"gamma must be a number in (0, 1], got {gamma!r}")
    return float(gamma)


def _entries(P, what):
    """``P``'s items as ``(index, value)`` in index order; a dict must have keys ``0..n-1``."""
    if isinstance(P, dict):
        if set(P) != set(range(len(P))):
            raise DataError(f"the transition table's {what} must be numbered 0..{len(P) - 1}, got keys "
                            f"{sorted(map(repr, P))[:6]}")
        return [(k, P[k]) for k in range(len(P))]
    if isinstance(P, (list, tuple)):
        return list(enumerate(P))
    raise DataError(f"the transition table {what} must be a dict or list, got {type(P).__name__}")


class TabularMDP:
    """A validated gymnasium transition table as dense arrays.

    Attributes: ``n_states`` S, ``n_actions`` A, ``reward`` ``[S, A]`` (expected immediate reward),
    ``continuation`` ``[S, A, S]`` (probability of the next state without termination) and
    ``terminates`` ``[S, A]`` (probability that the step ends the episode).

    Bad tables raise :class:`DataError`: probabilities that are negative or do not sum to 1 (to
    ``1e-6``), next states out of range, states with different action counts, non-finite rewards.
    """

    def __init__(self, P):
        states = _entries(P, "states")
        if not states:
            raise DataError("the transition table has no states")
        n_states = len(states)
        n_actions = None
        reward = continuation = terminates = None
        for s, row in states:
            actions = _entries(row, f"actions of state {s}")
            if n_actions is None:
                n_actions = len(actions)
                if n_actions == 0:
                    raise DataError(f"state {s} of the transition table has no actions")
                reward = np.zeros((n_states, n_actions))
                continuation = np.zeros((n_states, n_actions, n_states))
                terminates = np.zeros((n_states, n_actions))
            elif len(actions) != n_actions:
                raise DataError(f"state {s} has {len(actions)} actions but state 0 has {n_actions}; "
                                "every state needs the same actions")
            for a, transitions in actions:
                total = 0.0
                for item in transitions:
                    try:
                        p, s_next, r, done = item
                    except (TypeError, ValueError):
                        raise DataError(f"P[{s}][{a}] has {item!r}; expected (probability, next_state, reward, "
                                        "terminated)") from None
                    if isinstance(s_next, bool) or not isinstance(s_next, numbers.Integral) \
                            or not 0 <= s_next < n_states:
                        raise DataError(f"P[{s}][{a}] goes to state {s_next!r}; states are 0..{n_states - 1}")
                    if not isinstance(p, numbers.Real) or not math.isfinite(p) or p < 0:
                        raise DataError(f"P[{s}][{a}] has probability {p!r}; probabilities must be >= 0")
                    if not isinstance(r, numbers.Real) or not math.isfinite(r):
                        raise DataError(f"P[{s}][{a}] has reward {r!r}; rewards must be finite numbers")
                    total += p
                    reward[s, a] += p * r
                    if done:
                        terminates[s, a] += p
                    else:
                        continuation[s, a, int(s_next)] += p
                if abs(total - 1.0) > PROBABILITY_TOLERANCE:
                    raise DataError(f"the probabilities of P[{s}][{a}] sum to {total!r}, not 1")
        self.n_states, self.n_actions = n_states, n_actions
        self.reward, self.continuation, self.terminates = reward, continuation, terminates

    def check_terminating(self):
        """Raise :class:`DataError` if some state cannot reach a terminating transition under any policy.

        Backward reachability: a state is *able* if some action terminates with positive
        probability, or reaches an able state with positive probability. Returns the levels (steps
        of that backward search) the proper initial policy of :func:`policy_iteration` is built from.
        """
        level = np.full(self.n_states, -1)
        level[(self.terminates > 0).any(axis=1)] = 0
        k = 0
        while True:
            able = level >= 0
            reach = ((self.continuation[:, :, able] > 0).any(axis=2)).any(axis=1) & ~able
            if not reach.any():
                break
            k += 1
            level[reach] = k
        stuck = np.flatnonzero(level < 0)
        if stuck.size:
            raise DataError(f"with gamma=1 the values are finite only if every state can end the episode; "
                            f"states {stuck[:10].tolist()} never reach a terminating transition: use gamma < 1")
        return level

    def proper_policy(self, level):
        """A policy that terminates with probability 1: each state moves down a level with positive probability."""
        policy = np.zeros(self.n_states, dtype=np.int64)
        for s in range(self.n_states):
            if level[s] == 0:
                policy[s] = int(np.argmax(self.terminates[s] > 0))
            else:
                lower = level == level[s] - 1
                policy[s] = int(np.argmax((self.continuation[s][:, lower] > 0).any(axis=1)))
        return policy


def as_mdp(P):
    """``P`` as a :class:`TabularMDP` (a table is validated; an MDP passes through)."""
    return P if isinstance(P, TabularMDP) else TabularMDP(P)


def _values(mdp, V):
    V = np.asarray(V, dtype=np.float64)
    if V.shape != (mdp.n_states,):
        raise DataError(f"V must have one value per state, shape ({mdp.n_states},), got {V.shape}")
    return V


def q_values(P, V, gamma):
    """``Q[s, a] = sum_{s'} p(s' | s, a) [r + gamma V(s') (1 - terminated)]``, shape ``[S, A]``."""
    mdp = as_mdp(P)
    gamma = check_gamma(gamma)
    return mdp.reward + gamma * mdp.continuation @ _values(mdp, V)


def bellman_optimality_backup(P, V, gamma):
    """One sweep of the lecture's backup ``V'(s) = max_a sum_{s'} p(s'|s,a) [r + gamma V(s')]``, shape ``[S]``."""
    return q_values(P, V, gamma).max(axis=1)


def greedy_policy(Q):
    """``argmax_a Q[s, a]`` per state, ties (within ``TIE_TOLERANCE``) to the lowest action index."""
    Q = np.asarray(Q, dtype=np.float64)
    best = Q.max(axis=1, keepdims=True)
    tied = Q >= best - TIE_TOLERANCE * np.maximum(1.0, np.abs(best))
    return np.argmax(tied, axis=1).astype(np.int64)


def policy_evaluation(P, policy, gamma):
    """The exact value ``V^pi`` of a deterministic ``policy`` ``[S]``: solves ``(I - gamma C_pi) V = r_pi``.

    A policy that never terminates from some state under ``gamma = 1`` makes the system singular:
    :class:`DataError`.
    """
    mdp = as_mdp(P)
    gamma = check_gamma(gamma)
    policy = np.asarray(policy)
    if policy.shape != (mdp.n_states,) or not np.issubdtype(policy.dtype, np.integer) \
            or policy.min() < 0 or policy.max() >= mdp.n_actions:
        raise DataError(f"policy must be {mdp.n_states} actions in 0..{mdp.n_actions - 1}")
    states = np.arange(mdp.n_states)
    system = np.eye(mdp.n_states) - gamma * mdp.continuation[states, policy]
    try:
        V = np.linalg.solve(system, mdp.reward[states, policy])
    except np.linalg.LinAlgError:
        V = None
    # With gamma < 1 the system is strictly diagonally dominant (rows of C sum to <= 1), never singular.
    if V is None or not np.all(np.isfinite(V)) or (gamma == 1.0 and np.linalg.cond(system) > 1e12):
        raise DataError("the policy's values are unbounded: with gamma=1 it loops forever without terminating "
                        "(a non-terminating cycle with positive reward makes every value infinite); use gamma < 1")
    return V


def value_iteration(P, gamma, tol=1e-10, max_iterations=DEFAULT_MAX_ITERATIONS):
    """Optimal ``(V [S], policy [S])`` by repeating :func:`bellman_optimality_backup` from ``V = 0``.

    Stops when ``||V_{k+1} - V*||_inf <= tol`` is guaranteed: for ``gamma < 1`` when the change of
    a sweep is at most ``tol (1 - gamma) / gamma`` (the contraction bound), for ``gamma = 1`` when
    it is at most ``tol``. Not converging within ``max_iterations`` sweeps raises
    :class:`DataError`. The policy is :func:`greedy_policy` of the final Q. :func:`solve` also
    returns the number of sweeps.
    """
    return solve(P, gamma, "value_iteration", tol=tol, max_iterations=max_iterations)[:2]


def policy_iteration(P, gamma, max_iterations=DEFAULT_MAX_ITERATIONS):
    """Optimal ``(V [S], policy [S])`` by exact evaluation and greedy improvement (Howard).

    Starts from action 0 everywhere (``gamma < 1``) or from a policy that surely terminates
    (``gamma = 1``); an action changes only when it is better by more than the tie tolerance, so the
    iteration cannot cycle between tied policies. Returns V of the final policy and
    :func:`greedy_policy` of its Q (the same tie-breaking as :func:`value_iteration`).
    """
    return solve(P, gamma, "policy_iteration", max_iterations=max_iterations)[:2]


def solve(P, gamma, algo="value_iteration", tol=1e-10, max_iterations=DEFAULT_MAX_ITERATIONS):
    """``(V, policy, iterations)`` of ``algo`` (``value_iteration`` or ``policy_iteration``) on ``P``."""
    validation.one_of("algo", algo, ALGOS)
    mdp = as_mdp(P)
    gamma = check_gamma(gamma)
    tol = validation.positive_number("tol", tol)
    max_iterations = validation.positive_int("max_iterations", max_iterations)
    level = mdp.check_terminating() if gamma == 1.0 else None
    if algo == "value_iteration":
        threshold = tol if gamma == 1.0 else tol * (1.0 - gamma) / gamma
        V = np.zeros(mdp.n_states)
        for iteration in range(1, max_iterations + 1):
            new = bellman_optimality_backup(mdp, V, gamma)
            change = float(np.max(np.abs(new - V)))
            V = new
            if change <= threshold:
                break
        else:
            raise DataError(f"value_iteration did not converge in max_iterations={max_iterations} sweeps "
                            f"(last change {change:.3g}, needs <= {threshold:.3g}); raise max_iterations or tol")
    else:
        policy = np.zeros(mdp.n_states, dtype=np.int64) if level is None else mdp.proper_policy(level)
        states = np.arange(mdp.n_states)
        for iteration in range(1, max_iterations + 1):
            V = policy_evaluation(mdp, policy, gamma)
            Q = q_values(mdp, V, gamma)
            current = Q[states, policy]
            best = Q.max(axis=1)
            better = best > current + TIE_TOLERANCE * np.maximum(1.0, np.abs(best))
            if not better.any():
                break
            policy = np.where(better, np.argmax(Q, axis=1), policy)
        else:
            raise DataError(f"policy_iteration did not converge in max_iterations={max_iterations} iterations")
    return V, greedy_policy(q_values(mdp, V, gamma)), iteration


ALGOS = ("value_iteration", "policy_iteration")
