"""Score a task with a language model: the log-likelihood of every choice after its prompt.

What the harness calls loglikelihood requests: each (prompt, choice) pair is one sequence, the
prompt cut from the left when the pair is longer than the model's context; only the choice's
tokens are scored. From the scores: the prediction (highest total log-likelihood), the
length-normalised prediction (highest log-likelihood per character, the harness's acc_norm), and
the task loss of the right choice (nats per token and per character, as scaling studies fit it),
and, when the choices are also scored after end-of-text alone (a document's start), the prediction
by pointwise mutual information, log p(choice | prompt) - log p(choice) (the harness's
acc_mutual_info, GPT-3's "unconditional normalisation"): small models' raw likelihoods mostly
rank choices by how common they are, PMI by how well they follow the prompt.
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
    unconditional: np.ndarray | None = None  # [examples, choices] log-likelihood after end-of-text alone

    @property
    def pred(self) -> np.ndarray:
        return np.nanargmax(self.logprob, axis=1)

    @property
    def pred_norm(self) -> np.ndarray:
        return np.nanargmax(self.logprob / self.n_chars, axis=1)

    @property
    def pred_pmi(self) -> np.ndarray | None:
        return None if self.unconditional is None else np.nanargmax(self.logprob - self.unconditional, axis=1)

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
    ctx_ids = [e.ids for e in tok.encode_batch(contexts, add_special_tokens=False)]
    cont_ids = [e.ids for e in tok.encode_batch(continuations, add_special_tokens=False)]
    logprob, _ = token_loglikelihoods(model, list(zip(ctx_ids, cont_ids)), batch_size, names)
    return logprob, np.array([len(c) for c in cont_ids])


def token_loglikelihoods(model, pairs: list[tuple[list[int], list[int]]], batch_size: int = 64,
                         names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(total log-likelihood, whether greedy decoding gives it) of each continuation's token ids after
    its context's, the context cut from the left to fit model.seq_len."""
    seq_len = model.cfg.seq_len
    sequences = []
    for i, (ctx, cont) in enumerate(pairs):
        keep = seq_len + 1 - len(cont)  # inputs are the sequence less its last token
        if not cont or keep < 1 or not ctx:
            name = names[i] if names else f"request {i}"
            raise DataError(f"{name}: {len(ctx)} prompt and {len(cont)} choice tokens, expected a non-empty prompt "
                            f"and a choice of 1 to {seq_len} tokens (model.seq_len={seq_len})")
        sequences.append((list(ctx[-keep:]), list(cont)))
    total, greedy = np.zeros(len(sequences)), np.zeros(len(sequences), dtype=bool)
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i][0]) - len(sequences[i][1]))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            total[batch], greedy[batch] = _batch_loglikelihood(model, [sequences[i] for i in batch], device)
    model.train(was_training)
    return total, greedy


def _batch_loglikelihood(model, pairs: list[tuple[list[int], list[int]]], device) -> tuple[np.ndarray, np.ndarray]:
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
    target, scored = target.to(device), scored.to(device)
    logp = -F.cross_entropy(logits.float().flatten(0, 1), target.flatten(), reduction="none").view_as(target)
    greedy = ((logits.argmax(-1) == target) | ~scored).all(1)
    return (logp * scored).sum(1).double().cpu().numpy(), greedy.cpu().numpy()


def score_task(model, tok, task: Task, batch_size: int = 64, eot_id: int | None = None) -> Scores:
    """Every choice after its prompt; with eot_id, also every distinct choice after end-of-text alone."""
    width = max(len(c) for c in task.choices)
    rows = [(i, j) for i, options in enumerate(task.choices) for j in range(len(options))]
    texts = [task.choices[i][j] for i, j in rows]
    lp, nt = loglikelihoods(model, tok, [task.prompts[i] for i, _ in rows], texts, batch_size,
                            [f"task {task.name} example {i} choice {j}" for i, j in rows])
    logprob = np.full((len(task), width), np.nan)
    n_tokens, n_chars = np.ones((len(task), width)), np.ones((len(task), width))
    for (i, j), value, count, text in zip(rows, lp, nt, texts):
        logprob[i, j], n_tokens[i, j], n_chars[i, j] = value, count, len(text)
    unconditional = None
    if eot_id is not None:
        distinct = sorted(set(texts))
        ids = [e.ids for e in tok.encode_batch(distinct, add_special_tokens=False)]
        alone, _ = token_loglikelihoods(model, [([eot_id], c) for c in ids], batch_size)
        value_of = dict(zip(distinct, alone))
        unconditional = np.full((len(task), width), np.nan)
        for (i, j), text in zip(rows, texts):
            unconditional[i, j] = value_of[text]
    return Scores(logprob, n_tokens, n_chars, task.labels, unconditional)
