"""Reference learners, written plainly, that the JAX learners are checked and timed against:
one file per learner, importable by the tests and the benchmarks alike.

- :mod:`.dynlin_ucb`: DynLin-UCB (DLB) in numpy, one seed or seeds side by side;
- :mod:`.lp_rounding_ucb`: LP-rounding UCB (LSD) in numpy, its filler LP by HiGHS;
- :mod:`.isi_comb_ucb1`: ISI-CombUCB1 (LSD) in numpy, every block sequence valued exactly;
- :mod:`.lsd_states`: the arm-state helpers both LSD references use;
- :mod:`.rls`: dense recursive least squares, Losse-FTL's O(D²) baseline (in jax, to be timed
  like FTL).
"""

from hystax.experiments.reference.dynlin_ucb import numpy_dynlin_ucb
from hystax.experiments.reference.isi_comb_ucb1 import numpy_isi_comb_ucb1
from hystax.experiments.reference.lp_rounding_ucb import (
    numpy_choose_arm,
    numpy_filler_lp,
    numpy_lp_rounding_ucb,
)
from hystax.experiments.reference.rls import rls_init, rls_predict, rls_update_batch

__all__ = ["numpy_choose_arm", "numpy_dynlin_ucb", "numpy_filler_lp", "numpy_isi_comb_ucb1",
           "numpy_lp_rounding_ucb", "rls_init", "rls_predict", "rls_update_batch"]
