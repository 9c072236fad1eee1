"""Training: `fit` runs compiled training steps epoch by epoch and reports what happens as events.

- Each step is one replay of `hetero.compile_step` (forward, backward, update). The loss, the model's
  output and the targets of a step are copied to host memory with non-blocking copies and read a couple
  of steps later (`readback_lag`, readback.py), so the host never waits for the step it has just queued.
- Loaders yield (x, y) batches (numpy arrays or device Tensors) and have len() and preferably
  iterate(epoch, start) (hetero.data.DataLoader), so a resumed run starts mid-epoch at the right batch.
- Callbacks are plain callables that receive events (events.py: `StepEvent`, `EpochEndEvent`,
  `CheckpointEvent`, `PausedEvent`, `ResumedEvent`, `DoneEvent`, and `LogEvent` for human text); the CLI,
  the GUI (from a worker thread) and scripts consume the same events.
- A `TrainingControl` (control.py) pauses, resumes or stops the loop from another thread, between steps.
- A NaN or infinite loss stops training (DoneEvent reason "diverged", saying the step and what to try).
- Numbering: epochs and batches are 0-based indices (as in `loader.iterate(epoch, start=batch)`); `step` is
  the number of optimizer steps done so far (1 after the first step), which is also what checkpoints store.
- Determinism: with `seed_everything(seed)` before the model is built and a loader seeded with the same
  seed, training is the same on the same device whether it runs straight through or is stopped, saved with
  `save_checkpoint` and resumed with `load_checkpoint` + `fit(start_epoch=..., start_step=...)`.
- How a run is set up (model, optimizer, schedule, loaders by name) is hetero.recipe's `TrainingRecipe`;
  the names below that come from there are re-exported for existing callers.
"""

from ..recipe import MODEL_NAMES, OPTIMIZER_NAMES, default_lr, make_optimizer, model_kwargs, seed_everything
from .checkpoints import load_checkpoint, save_checkpoint
from .control import TrainingControl
from .evaluate import evaluate
from .events import (
    Callback,
    CheckpointEvent,
    DoneEvent,
    EpochEndEvent,
    LogEvent,
    PausedEvent,
    ResumedEvent,
    StepEvent,
)
from .loop import FitOptions, History, fit

__all__ = [
    "Callback",
    "CheckpointEvent",
    "DoneEvent",
    "EpochEndEvent",
    "FitOptions",
    "History",
    "LogEvent",
    "MODEL_NAMES",
    "OPTIMIZER_NAMES",
    "PausedEvent",
    "ResumedEvent",
    "StepEvent",
    "TrainingControl",
    "default_lr",
    "evaluate",
    "fit",
    "load_checkpoint",
    "make_optimizer",
    "model_kwargs",
    "save_checkpoint",
    "seed_everything",
]
