"""RequeueOnSignal on a real Lightning fit: the signal is acted on at a batch end, never mid-step."""

from __future__ import annotations

import os
import signal

import lightning as L
import torch

from lmlab.launch.preemption import RequeueOnSignal


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.randn(400, 4), batch_size=4)


class SignalAtStep(L.Callback):
    """Sends a signal to this process at the end of one step, as SLURM would at any moment."""

    def __init__(self, step: int, sig: signal.Signals):
        self.step, self.sig = step, sig

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.sig)


def fit(sig: signal.Signals, at_step: int = 5, max_steps: int = 50):
    saved, marked = [], []
    requeue = RequeueOnSignal(lambda trainer: saved.append(trainer.global_step),
                              lambda status, reason: marked.append((status, reason)))
    # The signal callback runs first and Python runs the handler as os.kill returns: the flag is up
    # before RequeueOnSignal's hook of the same batch end, which checkpoints that step.
    trainer = L.Trainer(max_steps=max_steps, callbacks=[SignalAtStep(at_step, sig), requeue], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Tiny())
    return trainer, requeue, saved, marked


def test_usr2_without_an_earlier_handler_checkpoints_marks_and_stops_cleanly():
    before = signal.getsignal(signal.SIGUSR2)
    trainer, requeue, saved, marked = fit(signal.SIGUSR2)
    assert saved == [5] and marked == [("preempted", "SIGUSR2")]
    assert requeue.stopped_by == "SIGUSR2" and trainer.global_step == 5  # stopped long before max_steps
    assert signal.getsignal(signal.SIGUSR2) is before  # restored at teardown


def test_the_earlier_handler_gets_the_signal_after_the_checkpoint():
    order = []
    previous = lambda signum, frame: order.append(("previous", signal.Signals(signum).name))  # noqa: E731
    signal.signal(signal.SIGUSR2, previous)
    try:
        saved, marked = [], []
        requeue = RequeueOnSignal(lambda trainer: order.append(("save", trainer.global_step)),
                                  lambda status, reason: order.append((status, reason)))
        trainer = L.Trainer(max_steps=50, callbacks=[SignalAtStep(3, signal.SIGUSR2), requeue], logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(Tiny())
        assert order == [("save", 3), ("preempted", "SIGUSR2"), ("previous", "SIGUSR2")]
        assert signal.getsignal(signal.SIGUSR2) is previous
    finally:
        signal.signal(signal.SIGUSR2, signal.SIG_DFL)


def test_an_earlier_handler_that_exits_ends_the_fit_with_the_checkpoint_written():
    """submitit's handler requeues and calls sys.exit: the exit leaves fit, the checkpoint is already there."""
    saved = []

    def requeue_and_exit(signum, frame):
        raise SystemExit(-1)

    signal.signal(signal.SIGUSR2, requeue_and_exit)
    try:
        requeue = RequeueOnSignal(lambda trainer: saved.append(trainer.global_step), lambda *a: None)
        trainer = L.Trainer(max_steps=50, callbacks=[SignalAtStep(2, signal.SIGUSR2), requeue], logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        try:
            trainer.fit(Tiny())
            raise AssertionError("fit should have ended with SystemExit")
        except SystemExit:
            pass
        assert saved == [2] and trainer.global_step == 2
    finally:
        signal.signal(signal.SIGUSR2, signal.SIG_DFL)


def test_no_signal_trains_to_the_end_without_a_checkpoint():
    saved, marked = [], []
    requeue = RequeueOnSignal(lambda t: saved.append(t.global_step), lambda *a: marked.append(a))
    trainer = L.Trainer(max_steps=20, callbacks=[requeue], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Tiny())
    assert trainer.global_step == 20 and saved == [] and marked == [] and requeue.stopped_by is None
