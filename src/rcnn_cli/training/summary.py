"""The last line of ``rcnn train``: what was trained, and, when ``--time-limit`` stopped the run early,
where in the schedule it stopped and how to go on (the model of a run stopped before its lr step is
not the converged one the schedule leads to)."""

from __future__ import annotations

from typing import Any

from rcnn_cli.training.budget import format_duration


def summary_line(result: Any, config: Any, model_path: str, stage: str) -> str:
    """``result``: the TrainResult; ``config``: the TrainConfig trained (fitted to --budget if it was)."""
    done = result.iterations
    if result.time_limited:
        text = f"stopped by --time-limit after {done} of {config.iters} iterations"
        ahead = [step for step in config.lr_steps if step > done]
        if ahead:
            text += f" (before the lr step at {ahead[0]})"
    elif result.budget is not None and result.budget.scaled:
        fit = result.budget
        steps = ", ".join(str(step) for step in fit.fitted.lr_steps) or "none"
        text = (
            f"trained {done} iterations (the {fit.requested.iters}-iteration schedule fitted to --budget "
            f"{format_duration(fit.budget_s)}: x{fit.factor:.3g}, lr step at {steps})"
        )
    else:
        text = f"trained {done} iterations"
    text += f" -> {model_path}"
    last = result.history[-1] if result.history else None
    if last is not None and stage == "rpn":
        text += f" (last loss {last['loss']:.4f}, RPN accuracy {last['rpn_accuracy']:.3f})"
    elif last is not None:
        text += f" (last loss {last['loss']:.4f}, accuracy {last['accuracy']:.3f})"
    if result.time_limited:
        text += "; continue with --resume, or fit the whole schedule into the time with --budget"
    return text
