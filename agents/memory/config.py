"""``MemoryConfig``: every setting of a policy's memory, validated in one place.

>>> MemoryConfig("s5", layers=2, d_model=64)            # passed whole to SequenceModel
>>> ppo.Config(memory=MemoryConfig("gru", d_model=32))  # or memory="gru": the other defaults

Fields keep PPO's flat names where they had one (``d_model``, ``glu``, ...); four are shorter
inside the config: :data:`FLAT_NAMES` maps each flat name (a ``hystax train ppo`` flag,
a ``hystax.train`` keyword, a field of a ``config.json`` written before ``MemoryConfig``) to
its field.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from hystax.agents.algorithm import check_field_types
from hystax.agents.memory.cells import MODELS
from hystax.agents.memory.ssm import C_INITS, DISCRETIZATIONS, S4D_INITS
from hystax.core.errors import require, unknown_name

GLUS = ("full", "half", "none")
NO_MEMORY = "none"
"""The model name of a policy without memory (feed-forward PPO)."""


@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """A stack of memory layers and the recurrent actor-critic around it.

    Attributes:
      model: a name in :data:`~hystax.agents.memory.MODELS` ("s5", "s4d", "lru", "s6", "gru",
        "mingru", "lstm", "mlp"), or "none" for a policy without memory (PPO's feed-forward
        network).
      layers: stacked layers (scanned, one compile for any depth).
      d_model: feature width H of the layers' inputs and outputs.
      state_size: SSM states P per layer (S5, LRU; S4D, S6: per channel); even with conj_sym.
      blocks: S5's HiPPO-N blocks on the diagonal (divides state_size).
      conj_sym: keep half of S5's conjugate eigenvalue pairs.
      discretization: "zoh" or "bilinear" (SSMs).
      clip_eigs: clamp S5's Re Λ <= -1e-4, so that |Λ̄| < 1 however Λ is trained (without it
        a 1M-step PPO run drove Re Λ to +0.76 and its state to inf).
      s4d_init: "lin" or "inv".
      layer_norm: pre-LayerNorm in each layer.
      glu: the SSMs' output mixing after the GELU: "full" (W1 y * sigmoid(W2 y)), "half"
        (y * sigmoid(W y)) or "none".
      ffn: expansion of a residual feed-forward sub-layer per layer (0: none).
      dt_min, dt_max: range of the SSMs' step sizes Δ (log-uniform at init; S6: of softplus
        of Δ's bias, Δ at a zero input).
      c_init: S5's C: "complex_normal" or "trunc_normal".
      encoder_sizes: the MLP before the memory (then a Dense to ``d_model``).
      separate: the actor and the critic each own an encoder and a memory stack.
    """

    model: str = "s5"
    layers: int = 1
    d_model: int = 64
    state_size: int = 64
    blocks: int = 1
    conj_sym: bool = True
    discretization: str = "zoh"
    clip_eigs: bool = True
    s4d_init: str = "lin"
    layer_norm: bool = True
    glu: str = "full"
    ffn: int = 0
    dt_min: float = 0.01
    dt_max: float = 1.0
    c_init: str = "complex_normal"
    encoder_sizes: tuple[int, ...] = (64,)
    separate: bool = True
    FLAT_NAMES: ClassVar[dict[str, str]]  # set below the class

    def __post_init__(self):
        check_field_types(self)
        if self.model != NO_MEMORY and self.model not in MODELS:
            raise unknown_name("memory model", self.model, MODELS)
        for name in ("layers", "d_model", "state_size", "blocks"):
            value = getattr(self, name)
            require(float(value).is_integer() and value > 0,
                    f"{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))  # 64.0 from Python or JSON -> 64
        require(float(self.ffn).is_integer() and self.ffn >= 0,
                f"ffn must be a non-negative integer (0: no feed-forward sub-layer), got "
                f"{self.ffn!r}")
        object.__setattr__(self, "ffn", int(self.ffn))
        sizes = (self.encoder_sizes,) if np.ndim(self.encoder_sizes) == 0 else self.encoder_sizes
        require(all(float(h).is_integer() and h > 0 for h in sizes),
                f"encoder_sizes must be positive integers, got {self.encoder_sizes}")
        object.__setattr__(self, "encoder_sizes", tuple(int(h) for h in sizes))
        for name, choices in (("discretization", DISCRETIZATIONS), ("s4d_init", S4D_INITS),
                              ("glu", GLUS), ("c_init", C_INITS)):
            require(getattr(self, name) in choices,
                    f"unknown {name} {getattr(self, name)!r}; choose from {', '.join(choices)}")
        require(0 < self.dt_min <= self.dt_max < np.inf,
                f"the SSM step range needs 0 < dt_min <= dt_max < inf, got "
                f"dt_min={self.dt_min!r}, dt_max={self.dt_max!r}")
        cell = MODELS.get(self.model)
        if cell is not None and cell.check is not None:
            cell.check(self)


FLAT_NAMES: dict[str, str] = {
    {"model": "memory", "layers": "memory_layers", "blocks": "ssm_blocks",
     "separate": "separate_memory"}.get(f.name, f.name): f.name
    for f in dataclasses.fields(MemoryConfig)}
"""Flat name -> :class:`MemoryConfig` field: ``memory`` -> ``model``, ``memory_layers`` ->
``layers``, ``ssm_blocks`` -> ``blocks``, ``separate_memory`` -> ``separate``, the others as
they are. :func:`~hystax.agents.algorithm.replace_config` routes them into the nested config."""
MemoryConfig.FLAT_NAMES = FLAT_NAMES
