"""Config schema of `optimizer` and `lr_scheduler` (arguments per type); see masterocr.train.schema.

Arguments go to torch's constructors as written (WarmupCosine's are converted with int()/float()), so an
unknown argument is an error here rather than a TypeError after the model is built; the lists match torch's
signatures (tests/test_config_schema.py checks them against the installed torch).
"""

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, Strict, model_validator
from pydantic_core import PydanticCustomError

from masterocr.train.schema_fields import Bool, Closed, Int, IntText, Num, NumText, absent, tagged_sections

_KERNEL = "torch's implementation switch (default: torch's choice)"


def _decimal(value: Any) -> Any:
    if type(value) is int:  # torch tests isinstance(value, float)
        raise PydanticCustomError("decimal", "must be written with a decimal point, e.g. 0.3 (torch refuses integers)")
    return value


DecimalFraction = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False), BeforeValidator(_decimal)]


class _TorchOptimizerArgs(Closed):
    lr: Num(gt=0) = absent("learning rate (torch's default 0.001)")
    weight_decay: Num(ge=0) = absent("L2 penalty (AdamW: decoupled weight decay)")
    maximize: Bool = absent("maximize the objective instead of minimizing it")
    foreach: Bool | None = Field(None, description=_KERNEL)
    differentiable: Bool = absent("autograd through the optimizer step")
    fused: Bool | None = Field(None, description=_KERNEL)

    @model_validator(mode="after")
    def _kernels(self) -> "_TorchOptimizerArgs":
        if self.fused and (self.foreach or self.differentiable):
            raise ValueError("fused cannot be true together with foreach or differentiable")
        return self


class AdamWArgs(_TorchOptimizerArgs):
    """torch.optim.AdamW keyword arguments."""

    betas: Annotated[list[Num(ge=0, lt=1)], Field(min_length=2, max_length=2)] = absent(
        "coefficients of the running averages [b1, b2]"
    )
    eps: Num(ge=0) = absent("term added to the denominator")
    amsgrad: Bool = absent("use the AMSGrad variant")
    capturable: Bool = absent("safe to capture in a CUDA graph")


class AdamArgs(AdamWArgs):
    """torch.optim.Adam keyword arguments."""

    decoupled_weight_decay: Bool = absent("AdamW-style weight decay")


class SGDArgs(_TorchOptimizerArgs):
    """torch.optim.SGD keyword arguments."""

    momentum: Num(ge=0) = absent("momentum factor")
    dampening: Num(ge=0) = absent("dampening for momentum")
    nesterov: Bool = absent("Nesterov momentum (needs momentum > 0 and dampening 0)")

    @model_validator(mode="after")
    def _nesterov(self) -> "SGDArgs":
        if self.nesterov and (not self.momentum or self.dampening):
            raise ValueError("nesterov needs momentum > 0 and dampening 0")
        return self


OPTIMIZER_ARGS = {"Adam": AdamArgs, "AdamW": AdamWArgs, "SGD": SGDArgs}
OptimizerSection = tagged_sections(OPTIMIZER_ARGS, "optimizer", default="Adam", nulls=("",))


class _DecayArgs(Closed):
    gamma: Num(gt=0) = absent("factor of each decay (default 0.1)")
    last_epoch: Int(ge=-1) = absent("index of the last epoch (-1: start)")


class StepLRArgs(_DecayArgs):
    """torch.optim.lr_scheduler.StepLR (stepped once per epoch)."""

    step_size: Int(ge=1) = Field(description="epochs between decays")


class MultiStepLRArgs(_DecayArgs):
    """torch.optim.lr_scheduler.MultiStepLR (stepped once per epoch)."""

    milestones: list[Int(ge=1)] = Field(description="epochs at which the rate decays")


class OneCycleLRArgs(Closed):
    """torch.optim.lr_scheduler.OneCycleLR (stepped once per optimizer step)."""

    max_lr: Num(gt=0) = Field(description="peak learning rate")
    total_steps: Int(ge=1) = absent("steps of the cycle (default: the run's optimizer steps)")
    epochs: Int(ge=1) = absent("with steps_per_epoch, instead of total_steps")
    steps_per_epoch: Int(ge=1) = absent("with epochs, instead of total_steps")
    pct_start: DecimalFraction = absent("share of the cycle spent increasing the rate (a decimal number in [0, 1])")
    anneal_strategy: Literal["cos", "linear"] = absent("annealing curve")
    cycle_momentum: Bool = absent("cycle the momentum inversely to the rate")
    base_momentum: Num(ge=0) = absent("lowest momentum")
    max_momentum: Num(ge=0) = absent("highest momentum")
    div_factor: Num(gt=0) = absent("initial rate = max_lr / div_factor")
    final_div_factor: Num(gt=0) = absent("final rate = initial rate / final_div_factor")
    three_phase: Bool = absent("a third phase annihilating the rate")
    last_epoch: Int(ge=-1) = absent("index of the last step (-1: start)")


class WarmupCosineArgs(Closed):
    """Linear warm-up then cosine decay to min_ratio (ours; stepped once per optimizer step)."""

    warmup_steps: IntText(ge=0) = absent("steps of linear warm-up (default 0)")
    total_steps: IntText(ge=0) | None = Field(None, description="steps of the schedule (0/null: the run's)")
    min_ratio: NumText(ge=0, le=1) = absent("final rate as a share of lr (default 0.01)")


SCHEDULER_ARGS = {
    "null": dict[str, Any],  # no schedule: the rate stays constant; args are ignored, as by the original
    "StepLR": StepLRArgs,
    "MultiStepLR": MultiStepLRArgs,
    "OneCycleLR": OneCycleLRArgs,
    "WarmupCosine": WarmupCosineArgs,
}
SchedulerSection = tagged_sections(SCHEDULER_ARGS, "lr_scheduler", default="null", nulls=(None, "", "None"))
