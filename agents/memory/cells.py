"""The memory cells: one table ``{name: Cell}`` that :class:`~hystax.agents.memory.SequenceModel`
builds its layers from.

A new cell is a layer in a file of its own, ``layer(carry, x [T, B, H], starts [T, B]) ->
(carry, y [T, B, H])`` with the state zeroed where ``starts`` is set, plus one entry in
:data:`MODELS`: how to build it from a :class:`~hystax.agents.memory.MemoryConfig` and the
shape of its state. ``tests/test_memory.py`` then checks it (parallel scan against stepping,
resets, vmapped init) by iterating the table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp

from hystax.agents.memory.lru import LRULayer
from hystax.agents.memory.mingru import MinGRULayer
from hystax.agents.memory.rnn import GRULayer, LSTMLayer, MLPLayer
from hystax.agents.memory.s6 import S6Layer
from hystax.agents.memory.ssm import S4DLayer, S5Layer
from hystax.core.errors import require


class Cell(NamedTuple):
    """How to build one memory cell and what it carries.

    Attributes:
      layer: ``layer(config, name) -> module``, the cell as a flax module named ``name``.
      state: ``state(config, batch) -> shape`` of one layer's carry for ``batch`` sequences.
      dtype: the carry's dtype.
      ssm: a state-space cell: GELU and the GLU of ``config.glu`` follow it, and its
        dynamics' parameters (``SSM_PARAMS``) learn at PPO's ``ssm_lr_scale``.
      check: ``check(config)`` raises HystaxError on a setting the cell cannot take.
    """

    layer: Callable[[Any, str], Any]
    state: Callable[[Any, int], tuple[int, ...]]
    dtype: Any = jnp.float32
    ssm: bool = False
    check: Callable[[Any], None] | None = None


def _s5(config, name):
    return S5Layer(config.d_model, config.state_size, config.blocks, config.conj_sym,
                   config.discretization, config.clip_eigs, config.dt_min, config.dt_max,
                   config.c_init, name=name)


def _check_s5(config) -> None:
    require(config.state_size % config.blocks == 0,
            f"S5 state_size {config.state_size} is not divisible by blocks {config.blocks}")
    require(not config.conj_sym or (config.state_size // config.blocks) % 2 == 0,
            f"S5 with conj_sym needs an even block size, got state_size {config.state_size} / "
            f"blocks {config.blocks}")


def _s4d(config, name):
    return S4DLayer(config.d_model, config.state_size, config.s4d_init, config.discretization,
                    config.dt_min, config.dt_max, name=name)


def _check_s4d(config) -> None:
    require(config.state_size % 2 == 0, f"S4D state_size must be even, got {config.state_size}")


def _s6(config, name):
    return S6Layer(config.d_model, config.state_size, config.dt_min, config.dt_max, name=name)


MODELS: dict[str, Cell] = {
    # S5: P complex states (P/2 kept under conjugate symmetry)
    "s5": Cell(_s5, lambda c, b: (b, c.state_size // 2 if c.conj_sym else c.state_size),
               jnp.complex64, ssm=True, check=_check_s5),
    # S4D: N/2 complex states per channel
    "s4d": Cell(_s4d, lambda c, b: (b, c.d_model * (c.state_size // 2)), jnp.complex64,
                ssm=True, check=_check_s4d),
    # LRU: P complex states; like S5 a linear map of the input, so GELU + GLU follow it
    "lru": Cell(lambda c, name: LRULayer(c.d_model, c.state_size, name=name),
                lambda c, b: (b, c.state_size), jnp.complex64, ssm=True),
    # S6 (Mamba's selective SSM): N = state_size real states per channel; GELU + GLU stand
    # in for Mamba's gate
    "s6": Cell(_s6, lambda c, b: (b, c.d_model * c.state_size), ssm=True),
    "gru": Cell(lambda c, name: GRULayer(c.d_model, name=name), lambda c, b: (b, c.d_model)),
    # minGRU: H real states; gated by its input like a GRU, so no GLU after it
    "mingru": Cell(lambda c, name: MinGRULayer(c.d_model, name=name), lambda c, b: (b, c.d_model)),
    # LSTM: (cell, hidden) stacked
    "lstm": Cell(lambda c, name: LSTMLayer(c.d_model, name=name), lambda c, b: (b, 2, c.d_model)),
    # memoryless: the carry is passed through unused
    "mlp": Cell(lambda c, name: MLPLayer(c.d_model, name=name), lambda c, b: (b, 1)),
}
"""Memory model name -> :class:`Cell` (``hystax list`` names them; ``--memory NAME``)."""
