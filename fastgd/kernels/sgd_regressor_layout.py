"""The arrays of ``sgd_regressor_epochs``: which slot holds what.

``fastgd.SGDRegressor``'s kernel (numba, Cython, and the pure-Python loop of
the reference and the numpy backend) reads its options from one float64
``config`` array and keeps its running scalars in one float64 ``state``
array, so that one call can run many epochs and hand everything back. The
slots are named here once; ``fastgd_ext/_sgd_regressor.pyx`` mirrors them in
an enum (tests/test_sgd_regressor.py checks that the two agree).

The codes follow scikit-learn's numbering of its penalties and learning rates.
"""

from __future__ import annotations

# Losses (scikit-learn's names).
SQUARED_ERROR, HUBER, EPSILON_INSENSITIVE, SQUARED_EPSILON_INSENSITIVE = 0, 1, 2, 3
LOSS_CODES = {
    "squared_error": SQUARED_ERROR,
    "huber": HUBER,
    "epsilon_insensitive": EPSILON_INSENSITIVE,
    "squared_epsilon_insensitive": SQUARED_EPSILON_INSENSITIVE,
}
# Penalties.
NO_PENALTY, L1, L2, ELASTICNET = 0, 1, 2, 3
PENALTY_CODES = {None: NO_PENALTY, "l1": L1, "l2": L2, "elasticnet": ELASTICNET}
# Learning rates.
CONSTANT, OPTIMAL, INVSCALING, ADAPTIVE = 1, 2, 3, 4
RATE_CODES = {"constant": CONSTANT, "optimal": OPTIMAL, "invscaling": INVSCALING, "adaptive": ADAPTIVE}

# config: read only.
C_LOSS = 0  # a loss code
C_EPSILON = 1  # huber's threshold, or the insensitive band's half width
C_PENALTY = 2  # a penalty code
C_ALPHA = 3
C_L1_RATIO = 4  # the L1 share of the penalty (0 for l2, 1 for l1)
C_RATE = 5  # a learning-rate code
C_ETA0 = 6
C_POWER_T = 7
C_OPTIMAL_INIT = 8  # "optimal": the step count t0 with eta = 1 / (alpha * (t0 + t - 1))
C_FIT_INTERCEPT = 9  # 0 or 1
C_INTERCEPT_DECAY = 10  # the intercept's share of a step (1, or 0.01 for sparse X)
C_AVERAGE = 11  # 0: no averaging; k: average the iterates from step t = k on
C_TOL = 12  # -inf: no stopping rule
C_PATIENCE = 13  # n_iter_no_change
C_STOPPING_RULE = 14  # 1: the kernel applies the rule to the training loss; 0: the caller decides
C_TRAIN_COUNT = 15  # samples per epoch (the rule compares mean objectives)
C_WSCALE_MIN = 16  # fold the scale into the weights below this (1e-9 float64, 1e-6 float32)
C_SHUFFLE = 17  # 0 or 1
CONFIG_SIZE = 18

# state: read and written.
S_INTERCEPT = 0
S_WSCALE = 1  # the weights are wscale * coef (L2 shrinks only this scalar)
S_AVERAGE_A = 2  # the averaged weights are (average_coef + a * coef) / b
S_AVERAGE_B = 3
S_AVERAGE_INTERCEPT = 4
S_U = 5  # the L1 penalty every weight could have received so far
S_T = 6  # the step counter of the learning-rate schedules (starts at 1)
S_ETA = 7  # the current step size ("adaptive" divides it by 5)
S_BEST = 8  # the stopping rule's best epoch objective so far
S_BAD_EPOCHS = 9  # epochs in a row without improvement
S_SUMLOSS = 10  # the last epoch's sum of losses (each before its step)
S_NONFINITE = 11  # 1: the last epoch ended with non-finite parameters
S_CONVERGED = 12  # 1: the stopping rule ended the run
# The squared and L1 norms of the weights as scikit-learn tracks them for the
# objective: set from the row's features after each step that moves the
# weights (for a dense row, every feature; for a sparse row, only its
# stored ones), scaled with the L2 shrink, not changed by the L1 truncation.
S_SQ_NORM = 13
S_L1_NORM = 14
S_OBJECTIVE = 15  # the last epoch's sum of loss + alpha * penalty(tracked norms), per step
STATE_SIZE = 16
