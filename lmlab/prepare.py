"""`lmlab-prepare` (== `python -m lmlab.prepare`): the Hydra app on conf/prepare.yaml.

    lmlab-prepare                                   # the bundled corpus into ${data_dir}/sotu
    lmlab-prepare source=local source.paths='texts/*.jsonl' source.name=mine tokenizer.vocab_size=8192
    lmlab-prepare source=hub source.path=wikitext source.config=wikitext-2-raw-v1 source.name=wt2
"""

from __future__ import annotations

import sys

import hydra

from lmlab.config import check_command_line
from lmlab.data.prepare import CONF_DIR, compose_prepare_config, run_prepare
from lmlab.errors import LmlabError


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="prepare")
def _app(cfg) -> None:
    try:
        out = run_prepare(cfg)
    except LmlabError as err:  # bad input: one clear line, no traceback
        print(f"lmlab-prepare: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(out)


def main() -> None:
    check_command_line(sys.argv[1:], lambda overrides, dirs: compose_prepare_config(overrides), "lmlab-prepare")
    _app()


if __name__ == "__main__":
    main()
