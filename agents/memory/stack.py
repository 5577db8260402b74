"""``SequenceModel``: a stack of memory layers behind one interface.

>>> model = SequenceModel("s5", d_model=64, num_layers=2)
>>> carry = model.initialize_carry(batch=8)                   # [layers, 8, ...]
>>> params = model.init(key, carry, (x, starts))              # x [T, 8, 64], starts [T, 8]
>>> carry, y = model.apply(params, carry, (x, starts))        # y [T, 8, 64]
>>> carry, y_t = model.apply(params, carry, x_t, start_t, method="step")   # one step

Each layer is ``x + mix(core(norm(x)))``: ``core`` one of S5, S4D (reset-aware parallel
scan), GRU, LSTM (sequential scan with resets) or a memoryless MLP; ``mix`` is GELU then a
GLU ``out1(y) * sigmoid(out2(y))`` for the SSMs and the identity for the others; ``norm`` an
optional LayerNorm. The layers are stacked with ``nn.scan`` over a layer axis, so compile
time does not grow with depth.
"""

from __future__ import annotations

import flax.linen as nn
import numpy as np
import jax
import jax.numpy as jnp
from hystax.agents.memory.rnn import GRULayer, LSTMLayer, MLPLayer
from hystax.agents.memory.ssm import C_INITS, DISCRETIZATIONS, S4D_INITS, S4DLayer, S5Layer

from hystax.core.errors import require, unknown_name

MODELS = ("s5", "s4d", "gru", "lstm", "mlp")
GLUS = ("full", "half", "none")
SSM_PARAMS = ("lambda_re", "log_neg_lambda_re", "lambda_im", "b", "log_step")
"""Parameter names of the SSM layers' own dynamics (Λ, B, log Δ)."""


class _Block(nn.Module):
    """One residual layer; scanned over the layer axis by :class:`SequenceModel`."""

    model: str
    d_model: int
    state_size: int
    blocks: int
    conj_sym: bool
    discretization: str
    clip_eigs: bool
    s4d_init: str
    layer_norm: bool
    glu: str
    ffn: int
    dt_min: float
    dt_max: float
    c_init: str

    def core(self) -> nn.Module:
        if self.model == "s5":
            return S5Layer(self.d_model, self.state_size, self.blocks, self.conj_sym,
                           self.discretization, self.clip_eigs, self.dt_min, self.dt_max,
                           self.c_init, name="core")
        if self.model == "s4d":
            return S4DLayer(self.d_model, self.state_size, self.s4d_init, self.discretization,
                            self.dt_min, self.dt_max, name="core")
        layer = {"gru": GRULayer, "lstm": LSTMLayer, "mlp": MLPLayer}[self.model]
        return layer(self.d_model, name="core")

    @nn.compact
    def __call__(self, x, carry, starts):
        y = nn.LayerNorm()(x) if self.layer_norm else x
        carry, y = self.core()(carry, y, starts)
        if self.model in ("s5", "s4d"):
            y = nn.gelu(y)
            if self.glu == "full":
                y = nn.Dense(self.d_model)(y) * nn.sigmoid(nn.Dense(self.d_model)(y))
            elif self.glu == "half":
                y = y * nn.sigmoid(nn.Dense(self.d_model)(y))
        x = x + y
        if self.ffn:
            h = nn.LayerNorm()(x) if self.layer_norm else x
            h = nn.Dense(self.ffn * self.d_model)(h)
            x = x + nn.Dense(self.d_model)(nn.gelu(h))
        return x, carry


class SequenceModel(nn.Module):
    """A stack of ``num_layers`` memory layers of width ``d_model`` (time-major).

    Attributes:
      model: "s5", "s4d", "gru", "lstm" or "mlp".
      d_model: feature width H of inputs and outputs.
      num_layers: stacked layers (scanned, one compile for any depth).
      state_size: SSM states P per layer (S5; S4D: per channel); even with conj_sym.
      blocks: S5's HiPPO-N blocks on the diagonal (divides state_size).
      conj_sym: keep half of S5's conjugate eigenvalue pairs.
      discretization: "zoh" or "bilinear" (SSMs).
      clip_eigs: clamp S5's Re Λ <= -1e-4, so that |Λ̄| < 1 however Λ is trained (default;
        without it a 1M-step PPO run drove Re Λ to +0.76 and its state to inf).
      s4d_init: "lin" or "inv".
      layer_norm: pre-LayerNorm in each layer.
      glu: the SSMs' output mixing after the GELU: "full" (W1 y * sigmoid(W2 y)), "half"
        (y * sigmoid(W y)) or "none".
      ffn: expansion of a residual feed-forward sub-layer per layer (0: none).
      dt_min, dt_max: range of the SSMs' step sizes Δ (log-uniform at init).
      c_init: S5's C: "complex_normal" or "trunc_normal".
    """

    model: str = "s5"
    d_model: int = 64
    num_layers: int = 1
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

    def __post_init__(self):
        validate_memory(**self._block_settings(), num_layers=self.num_layers)
        super().__post_init__()

    def _block_settings(self) -> dict:
        return dict(model=self.model, d_model=self.d_model, state_size=self.state_size,
                    blocks=self.blocks, conj_sym=self.conj_sym,
                    discretization=self.discretization, clip_eigs=self.clip_eigs,
                    s4d_init=self.s4d_init, layer_norm=self.layer_norm, glu=self.glu,
                    ffn=self.ffn, dt_min=self.dt_min, dt_max=self.dt_max, c_init=self.c_init)

    def carry_spec(self, batch: int) -> jax.ShapeDtypeStruct:
        """Shape and dtype of the carry for ``batch`` sequences: ``[num_layers, batch, ...]``."""
        half = self.state_size // 2
        per_layer = {
            "s5": (batch, half if self.conj_sym else self.state_size),
            "s4d": (batch, self.d_model * half),
            "gru": (batch, self.d_model),
            "lstm": (batch, 2, self.d_model),  # (cell, hidden)
            "mlp": (batch, 1),  # unused
        }[self.model]
        dtype = jnp.complex64 if self.model in ("s5", "s4d") else jnp.float32
        return jax.ShapeDtypeStruct((self.num_layers, *per_layer), dtype)

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
        y, carry = layers(**self._block_settings(), name="layers")(
            x.astype(jnp.float32), carry, starts.astype(bool))
        return carry, y

    def step(self, carry, x, start):
        """One step for acting: ``x [B, H]``, ``start [B]`` -> ``(carry, y [B, H])``."""
        carry, y = self(carry, (jnp.asarray(x)[None], jnp.asarray(start)[None]))
        return carry, y[0]


def validate_memory(model, d_model, num_layers, state_size, blocks=1, conj_sym=True,
                    discretization="zoh", s4d_init="lin", glu="full", ffn=0, dt_min=0.01,
                    dt_max=1.0, c_init="complex_normal", **_) -> None:
    """Raise HystaxError on a memory setting that cannot work (the fields of
    :class:`SequenceModel`; others are ignored)."""
    if model not in MODELS:
        raise unknown_name("memory model", model, MODELS)
    for name, value in (("d_model", d_model), ("num_layers", num_layers),
                        ("state_size", state_size), ("blocks", blocks)):
        require(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0,
                f"{name} must be a positive integer, got {value!r}")
    require(isinstance(ffn, (int, np.integer)) and not isinstance(ffn, bool) and ffn >= 0,
            f"ffn must be a non-negative integer (0: no feed-forward sub-layer), got {ffn!r}")
    for name, value, choices in (("discretization", discretization, DISCRETIZATIONS),
                                 ("s4d_init", s4d_init, S4D_INITS), ("glu", glu, GLUS),
                                 ("c_init", c_init, C_INITS)):
        require(value in choices, f"unknown {name} {value!r}; choose from {', '.join(choices)}")
    require(all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                for v in (dt_min, dt_max)) and 0 < dt_min <= dt_max < np.inf,
            f"the SSM step range needs 0 < dt_min <= dt_max < inf, got dt_min={dt_min!r}, "
            f"dt_max={dt_max!r}")
    if model == "s5":
        require(state_size % blocks == 0,
                f"S5 state_size {state_size} is not divisible by blocks {blocks}")
        require(not conj_sym or (state_size // blocks) % 2 == 0,
                f"S5 with conj_sym needs an even block size, got state_size {state_size} / "
                f"blocks {blocks}")
    if model == "s4d":
        require(state_size % 2 == 0, f"S4D state_size must be even, got {state_size}")
