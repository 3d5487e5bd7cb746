"""Score a task with a language model: the log-likelihood of every choice after its prompt.

What the harness calls loglikelihood requests: each (prompt, choice) pair is one sequence, the
prompt cut from the left when the pair is longer than the model's context; only the choice's
tokens are scored. From the scores: the prediction (highest total log-likelihood), the
length-normalised prediction (highest log-likelihood per character, the harness's acc_norm), and
the task loss of the right choice (nats per token and per character, as scaling studies fit it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lmlab.errors import DataError
from lmlab.eval.tasks import Task


@dataclass
class Scores:
    logprob: np.ndarray  # [examples, choices] total log-likelihood of each choice (nan: no such choice)
    n_tokens: np.ndarray  # [examples, choices]
    n_chars: np.ndarray  # [examples, choices]
    labels: np.ndarray  # [examples]

    @property
    def pred(self) -> np.ndarray:
        return np.nanargmax(self.logprob, axis=1)

    @property
    def pred_norm(self) -> np.ndarray:
        return np.nanargmax(self.logprob / self.n_chars, axis=1)

    def _right(self, values: np.ndarray) -> np.ndarray:
        return values[np.arange(len(self.labels)), self.labels]

    @property
    def loss_per_token(self) -> np.ndarray:
        """Per example: nats per token of the right choice."""
        return -self._right(self.logprob) / self._right(self.n_tokens)

    @property
    def loss_per_char(self) -> np.ndarray:
        return -self._right(self.logprob) / self._right(self.n_chars)


def loglikelihoods(model, tok, contexts: list[str], continuations: list[str], batch_size: int = 64,
                   names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(total log-likelihood, token count) of each continuation after its context; `names` say which
    request is which in an error."""
    seq_len = model.cfg.seq_len
    ctx_ids = [e.ids for e in tok.encode_batch(contexts, add_special_tokens=False)]
    cont_ids = [e.ids for e in tok.encode_batch(continuations, add_special_tokens=False)]
    sequences = []
    for i, (ctx, cont) in enumerate(zip(ctx_ids, cont_ids)):
        keep = seq_len + 1 - len(cont)  # inputs are the sequence less its last token
        if not cont or keep < 1 or not ctx:
            raise DataError(f"{names[i] if names else f'request {i}'}: {len(ctx)} prompt and {len(cont)} choice tokens, expected a non-empty "
                            f"prompt and a choice of 1 to {seq_len} tokens (model.seq_len={seq_len})")
        sequences.append((ctx[-keep:], cont))
    total = np.zeros(len(sequences))
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i][0]) - len(sequences[i][1]))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            total[batch] = _batch_loglikelihood(model, [sequences[i] for i in batch], device)
    model.train(was_training)
    return total, np.array([len(c) for c in cont_ids])


def _batch_loglikelihood(model, pairs: list[tuple[list[int], list[int]]], device) -> np.ndarray:
    width = max(len(c) + len(x) for c, x in pairs) - 1
    idx = torch.zeros(len(pairs), width, dtype=torch.long)
    target = torch.zeros(len(pairs), width, dtype=torch.long)
    scored = torch.zeros(len(pairs), width, dtype=torch.bool)  # the positions that predict a choice token
    for row, (ctx, cont) in enumerate(pairs):
        seq = torch.tensor(ctx + cont)
        n = len(seq) - 1
        idx[row, :n], target[row, :n] = seq[:-1], seq[1:]
        scored[row, len(ctx) - 1:n] = True
    logits, _ = model(idx.to(device))
    logp = F.log_softmax(logits.float(), dim=-1).gather(-1, target.to(device).unsqueeze(-1)).squeeze(-1)
    return (logp * scored.to(device)).sum(1).double().cpu().numpy()


def score_task(model, tok, task: Task, batch_size: int = 64) -> Scores:
    width = max(len(c) for c in task.choices)
    rows = [(i, j) for i, options in enumerate(task.choices) for j in range(len(options))]
    lp, nt = loglikelihoods(model, tok, [task.prompts[i] for i, _ in rows], [task.choices[i][j] for i, j in rows],
                            batch_size, [f"task {task.name} example {i} choice {j}" for i, j in rows])
    logprob = np.full((len(task), width), np.nan)
    n_tokens = np.ones((len(task), width))
    n_chars = np.ones((len(task), width))
    for (i, j), value, count in zip(rows, lp, nt):
        logprob[i, j], n_tokens[i, j], n_chars[i, j] = value, count, len(task.choices[i][j])
    return Scores(logprob, n_tokens, n_chars, task.labels)
