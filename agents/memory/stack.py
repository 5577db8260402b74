"""``SequenceModel``: a stack of memory layers behind one interface.

>>> model = SequenceModel(MemoryConfig("s5", layers=2, d_model=64))
>>> carry = model.initialize_carry(batch=8)                   # [layers, 8, ...]
>>> params = model.init(key, carry, (x, starts))              # x [T, 8, 64], starts [T, 8]
>>> carry, y = model.apply(params, carry, (x, starts))        # y [T, 8, 64]
>>> carry, y_t = model.apply(params, carry, x_t, start_t, method="step")   # one step

Each layer is ``x + mix(core(norm(x)))``: ``core`` the cell of ``MODELS[config.model]``
(S5, S4D, LRU, S6 and minGRU on the reset-aware parallel scan, GRU and LSTM on a sequential
scan with resets, a memoryless MLP); ``mix`` is GELU then a GLU ``out1(y) * sigmoid(out2(y))``
for the SSMs (S5, S4D, LRU, S6) and the identity for the others; ``norm`` an optional
LayerNorm. The layers are stacked with ``nn.scan`` over a layer axis, so compile time does
not grow with depth.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from hystax.agents.memory.cells import MODELS
from hystax.agents.memory.config import MemoryConfig
from hystax.core.errors import require


class _Block(nn.Module):
    """One residual layer; scanned over the layer axis by :class:`SequenceModel`."""

    config: MemoryConfig

    @nn.compact
    def __call__(self, x, carry, starts):
        config = self.config
        y = nn.LayerNorm()(x) if config.layer_norm else x
        cell = MODELS[config.model]
        carry, y = cell.layer(config, "core")(carry, y, starts)
        if cell.ssm:
            y = nn.gelu(y)
            if config.glu == "full":
                y = nn.Dense(config.d_model)(y) * nn.sigmoid(nn.Dense(config.d_model)(y))
            elif config.glu == "half":
                y = y * nn.sigmoid(nn.Dense(config.d_model)(y))
        x = x + y
        if config.ffn:
            h = nn.LayerNorm()(x) if config.layer_norm else x
            h = nn.Dense(config.ffn * config.d_model)(h)
            x = x + nn.Dense(config.d_model)(nn.gelu(h))
        return x, carry


class SequenceModel(nn.Module):
    """A stack of ``config.layers`` memory layers of width ``config.d_model`` (time-major).

    Attributes:
      config: the :class:`MemoryConfig` (its model may not be "none"); ``model``,
        ``d_model`` and ``num_layers`` read it.
    """

    config: MemoryConfig

    def __post_init__(self):
        require(isinstance(self.config, MemoryConfig),
                f"SequenceModel takes a MemoryConfig, got {type(self.config).__name__}")
        require(self.config.model in MODELS,
                f"SequenceModel needs a memory model ({', '.join(MODELS)}), got "
                f"{self.config.model!r}")
        super().__post_init__()

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def d_model(self) -> int:
        return self.config.d_model

    @property
    def num_layers(self) -> int:
        return self.config.layers

    def carry_spec(self, batch: int) -> jax.ShapeDtypeStruct:
        """Shape and dtype of the carry for ``batch`` sequences: ``[num_layers, batch, ...]``."""
        cell = MODELS[self.model]
        return jax.ShapeDtypeStruct((self.num_layers, *cell.state(self.config, batch)),
                                    cell.dtype)

    def initialize_carry(self, batch: int) -> jax.Array:
        """The zero state for ``batch`` sequences."""
        spec = self.carry_spec(batch)
        return jnp.zeros(spec.shape, spec.dtype)

    @nn.compact
    def __call__(self, carry, inputs):
        """``(carry, (x [T, B, H], starts [T, B])) -> (carry, y [T, B, H])``."""
        x, starts = inputs
        x, starts = jnp.asarray(x), jnp.asarray(starts)
        require(x.ndim == 3 and x.shape[-1] == self.d_model,
                f"{self.model}: inputs must be time-major [T, B, {self.d_model}], "
                f"got shape {x.shape}")
        require(starts.shape == x.shape[:2],
                f"{self.model}: starts must have shape [T, B] = {x.shape[:2]}, got {starts.shape}")
        expected = self.carry_spec(x.shape[1])
        require(getattr(carry, "shape", None) == expected.shape
                and getattr(carry, "dtype", None) == expected.dtype,
                f"{self.model}: carry must be {expected.dtype.name}{list(expected.shape)} "
                f"(from initialize_carry({x.shape[1]})), got "
                f"{getattr(getattr(carry, 'dtype', None), 'name', type(carry).__name__)}"
                f"{list(getattr(carry, 'shape', []))} — a carry from another model or batch?")
        layers = nn.scan(_Block, variable_axes={"params": 0}, split_rngs={"params": True},
                         in_axes=(0, nn.broadcast), length=self.num_layers)
        y, carry = layers(self.config, name="layers")(
            x.astype(jnp.float32), carry, starts.astype(bool))
        return carry, y

    def step(self, carry, x, start):
        """One step for acting: ``x [B, H]``, ``start [B]`` -> ``(carry, y [B, H])``."""
        carry, y = self(carry, (jnp.asarray(x)[None], jnp.asarray(start)[None]))
        return carry, y[0]
