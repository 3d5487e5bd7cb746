"""lmlab runs as an EleutherAI lm-evaluation-harness model (the optional extra: pip install -e '.[lm-eval]').

    import lm_eval, lmlab.eval.lm_eval_adapter  # the import registers the model "lmlab"
    lm_eval.simple_evaluate(model="lmlab", model_args="run_dir=runs/default/<run id>", tasks=[...])

or from the shell: `python -m lmlab.eval.lm_eval_adapter --model_args run_dir=<run dir> --tasks ...`
(lm_eval's own command line, with this model registered first). Only the harness's core is needed,
not transformers. Scoring is lmlab.eval.scoring's, so a task scored here and by `lmlab-eval` gives
the same numbers. lmlab's own tasks, written with lmlab.eval.tasks.write_jsonl_task, run in the
harness through `harness_task(name, path)`.
"""

from __future__ import annotations

import sys

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from lmlab.eval.scoring import token_loglikelihoods


def harness_task(name: str, path: str) -> dict:
    """An lm_eval task config for a task file in lmlab's JSONL format (prompt, choices, label index);
    the choices carry their own leading space, so no delimiter is added."""
    return {"task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(path)}},
            "test_split": "test", "output_type": "multiple_choice", "doc_to_text": "{{prompt}}",
            "doc_to_choice": "{{choices}}", "doc_to_target": "{{label}}", "target_delimiter": "",
            "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}]}


@register_model("lmlab")
class LmlabLM(LM):
    """The GPT of an lmlab run directory (its last checkpoint) with the tokenizer of its corpus."""

    def __init__(self, run_dir: str, device: str = "cpu", batch_size: int | str = 64, **_):
        from lmlab.data.shards import read_manifest
        from lmlab.runs.load import load_model

        super().__init__()
        self.model, self.tok, cfg = load_model(run_dir, device)
        self._device = torch.device(device)
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 64
        self.eot = self.tok.token_to_id(read_manifest(cfg["data"]["dir"])["eot_token"])

    def _encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        pairs = [(self._encode(ctx) or [self.eot], self._encode(cont)) for ctx, cont in (r.args for r in requests)]
        logprob, greedy = token_loglikelihoods(self.model, pairs, self.batch_size)
        return [(float(lp), bool(g)) for lp, g in zip(logprob, greedy)]

    def loglikelihood_rolling(self, requests) -> list[float]:
        """The whole text's log-likelihood, in windows of the model's context, after end-of-text."""
        out = []
        for (text,) in (r.args for r in requests):
            windows = [make_disjoint_window(w) for w in get_rolling_token_windows(
                self._encode(text), self.eot, self.model.cfg.seq_len, 1)]
            logprob, _ = token_loglikelihoods(self.model, windows, self.batch_size)
            out.append(float(logprob.sum()))
        return out

    @torch.no_grad()
    def generate_until(self, requests) -> list[str]:
        """Greedy decoding until a stop string, end-of-text or max_gen_toks tokens."""
        out = []
        for context, kwargs in (r.args for r in requests):
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            ids = self._encode(context) or [self.eot]
            start, text = len(ids), ""
            for _ in range(int(kwargs.get("max_gen_toks", 64))):
                logits, _ = self.model(torch.tensor([ids[-self.model.cfg.seq_len:]], device=self._device))
                ids.append(int(logits[0, -1].argmax()))
                if ids[-1] == self.eot:
                    break
                text = self.tok.decode(ids[start:])
                if any(stop in text for stop in until):
                    break
            for stop in until:
                text = text.split(stop)[0]
            out.append(text)
        return out

if __name__ == "__main__":
    from lm_eval.__main__ import cli_evaluate

    sys.argv[1:1] = ["--model", "lmlab"]
    cli_evaluate()
