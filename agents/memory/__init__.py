"""Sequence models (memory) for recurrent policies, all behind one interface.

* :func:`reset_aware_scan` — the parallel scan with episode resets inside it;
* :class:`MemoryConfig` — every memory setting, validated in one place;
* :data:`MODELS` — the memory cells (S5, S4D, LRU, S6, GRU, minGRU, LSTM, MLP), ``{name: Cell}``;
* :class:`SequenceModel` — ``config.layers`` cells stacked with a scan over layers:
  ``initialize_carry(batch)``, ``__call__(carry, (x [T, B, H], starts [T, B]))``, ``step``.
"""

from hystax.agents.memory.cells import MODELS, Cell
from hystax.agents.memory.config import FLAT_NAMES, NO_MEMORY, MemoryConfig
from hystax.agents.memory.scan import reset_aware_loop, reset_aware_scan
from hystax.agents.memory.ssm import SSM_PARAMS
from hystax.agents.memory.stack import SequenceModel

__all__ = ["FLAT_NAMES", "MODELS", "NO_MEMORY", "SSM_PARAMS", "Cell", "MemoryConfig",
           "SequenceModel", "reset_aware_loop", "reset_aware_scan"]
