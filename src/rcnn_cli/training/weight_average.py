"""An exponential moving average of the weights (``rcnn train --ema DECAY``).

After optimizer step t (t = 1, 2, ...) every floating-point parameter's average moves toward the
parameter: θ̄ ← d_t θ̄ + (1 − d_t) θ, with d_t = min(d, (1 + t) / (10 + t)). The ramp keeps the average
close to the weights early on, so it is not anchored at the random initialization; later it spans
about 1 / (1 − d) iterations (500 at d = 0.998). Buffers (frozen BatchNorm statistics) and integer
tensors are copied, not averaged.

Why: trained from scratch on a few hundred photos, the last SGD iterate depends on the seed (the
raccoon tables of docs/BENCHMARKS.md); an average of the last iterates sits in a flatter part of the
loss (Polyak & Juditsky, 1992; Izmailov et al., 2018). ``model.pt`` holds the average; the resume
checkpoint holds both the weights and their average, so a continuation goes on bit for bit.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """The running average θ̄ of ``model``'s state dict, starting at its current values."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.average: dict[str, Tensor] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        """d_t of the next update (the module docstring's ramp)."""
        t = self.updates + 1
        return min(self.decay, (1 + t) / (10 + t))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average toward ``model``'s weights after one optimizer step."""
        d = self.current_decay()
        # Parameters by storage, not name: a model may name its state-dict entries otherwise than
        # its modules (FastRCNN's head layers are "fc6.weight", not "head.fc6.weight").
        parameters = {p.data_ptr() for p in model.parameters()}
        for name, value in model.state_dict().items():
            average = self.average[name]
            if value.data_ptr() in parameters and value.is_floating_point():
                average.lerp_(value, 1.0 - d)  # θ̄ + (1 − d)(θ − θ̄)
            else:
                average.copy_(value)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "average": self.average}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        for name, value in state["average"].items():
            self.average[name].copy_(value)
