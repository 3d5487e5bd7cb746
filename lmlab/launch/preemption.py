"""Checkpoint on SLURM's pre-timeout or preemption signal, then let submitit requeue the job.

SLURM sends the job's `--signal` (submitit: USR2) before the time limit and, with
`preempt_send_user_signal`, when a higher-priority job preempts it; `scancel` sends SIGTERM.
A signal handler must not write a checkpoint in the middle of an optimizer step, so the handler
only raises a flag; the next train-batch end (when the weights are consistent) saves the
checkpoint, marks the run, and then hands over to the handler that was installed before this one:
submitit's, which dumps the job for resubmission, runs `scontrol requeue` and exits. With no
earlier handler (a plain process), training stops cleanly and `stopped_by` names the signal, so
the caller records the run as preempted instead of completed. In a multi-process job whose earlier
handler returns (submitit's does on every rank but zero), the process exits instead (SystemExit(0)):
rank zero is gone or going, and one more collective would fail against it.

Lightning's own SLURM requeue is not used (the trainer passes SLURMEnvironment(auto_requeue=False)).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Callable

import lightning as L

log = logging.getLogger("lmlab.launch")

SIGNALS = (signal.SIGUSR2, signal.SIGTERM)


class RequeueOnSignal(L.Callback):
    """On SIGUSR2 or SIGTERM: checkpoint at the next batch end, mark the run, hand over.

    save_checkpoint(trainer) is called on every rank (Lightning's checkpointing is collective);
    mark_status(status, reason) only on global rank zero.
    """

    def __init__(self, save_checkpoint: Callable[[L.Trainer], None], mark_status: Callable[[str, str], None]):
        self.save_checkpoint = save_checkpoint
        self.mark_status = mark_status
        self.received: signal.Signals | None = None  # set by the handler, acted on at batch end
        self.stopped_by: str | None = None  # the signal's name once acted on; None: not stopped
        self._previous: dict[signal.Signals, object] = {}

    def _on_signal(self, signum: int, frame) -> None:
        self.received = signal.Signals(signum)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.warning("not on the main thread: cannot catch SIGUSR2/SIGTERM, runs will not checkpoint on preemption")
            return
        for sig in SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._on_signal)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.stopped_by is not None or not self._any_rank_signalled(trainer):
            return
        sig = self.received or signal.SIGUSR2  # a rank that saw no signal follows the others
        log.warning("%s received: checkpointing at step %d before handing over", sig.name, trainer.global_step)
        self.save_checkpoint(trainer)
        if trainer.is_global_zero:
            self.mark_status("preempted", sig.name)
        self.stopped_by = sig.name
        trainer.should_stop = True  # reached only if the previous handler returns instead of exiting
        if self._hand_over(sig) and trainer.world_size > 1:
            # The launcher owns the job now and may have ended rank 0 (submitit requeues and exits
            # there, and returns elsewhere): a further collective would fail against a dead peer.
            raise SystemExit(0)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _any_rank_signalled(self, trainer: L.Trainer) -> bool:
        """All ranks must checkpoint at the same step, though each sees its signal at its own time."""
        if trainer.world_size == 1:
            return self.received is not None
        return bool(trainer.strategy.reduce_boolean_decision(self.received is not None, all=False))

    def _hand_over(self, sig: signal.Signals) -> bool:
        """Call the handler that was there before ours (submitit's requeues the job and exits);
        False if there was none."""
        previous = self._previous.get(sig)
        if not callable(previous):
            return False
        previous(int(sig), None)
        return True
