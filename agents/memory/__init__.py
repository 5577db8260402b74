"""Sequence models (memory) for recurrent policies, all behind one interface.

* :func:`reset_aware_scan` — the parallel scan with episode resets inside it;
* :class:`SequenceModel` — S5, S4D, GRU, LSTM or MLP layers stacked with a scan over layers:
  ``initialize_carry(batch)``, ``__call__(carry, (x [T, B, H], starts [T, B]))``, ``step``.
"""

from hystax.agents.memory.scan import reset_aware_loop, reset_aware_scan
from hystax.agents.memory.stack import MODELS, SSM_PARAMS, SequenceModel, validate_memory

__all__ = ["MODELS", "SSM_PARAMS", "SequenceModel", "reset_aware_loop", "reset_aware_scan",
           "validate_memory"]
