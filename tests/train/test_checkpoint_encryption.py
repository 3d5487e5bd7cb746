"""Checkpoints of a run on encrypted data are encrypted too: they resume and load with the data's key,
and a missing or wrong key or a flipped byte is one line naming the checkpoint; no key in any file."""

from __future__ import annotations

import json
import shutil

import pytest

from lmlab import crypto
from lmlab.cli import main
from lmlab.data.prepare import compose_prepare_config, run_prepare
from lmlab.errors import ConfigError, DataError
from lmlab.runs.load import load_model, load_state
from lmlab.train.run import Run
from tests.conftest import compose
from tests.data.corpus_bits import paragraphs

pytestmark = pytest.mark.slow

KEY = bytes(range(7, 39))
ENV = "LMLAB_TEST_CKPT_KEY"
RUN = ["model.size=14k", "model.seq_len=32", "trainer.global_batch_size=8", "trainer.micro_batch_size=8",
       "budget.tokens=4096", "trainer.val_tokens=1024", "trainer.ckpt_every_steps=8", "trainer.log_every_steps=4",
       "trainer.progress_bar=false", "trainer.threads=1", "logger=none", "data.name=tiny", "data.prepare=false"]


@pytest.fixture(scope="module")
def encrypted_run(tmp_path_factory):
    """A completed 16-step run on encrypted data (checkpoints at steps 8 and 16) and its overrides."""
    root = tmp_path_factory.mktemp("enc")
    src = root / "docs.jsonl"
    src.write_text("".join(json.dumps({"text": p}) + "\n" for p in paragraphs(30, 60, seed=5)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV, KEY.hex())
        run_prepare(compose_prepare_config([f"data_dir={root / 'data'}", "source=local", f"source.paths=[{src}]",
                                            "source.name=tiny", "tokenizer.vocab_size=300", f"encrypt.key=env:{ENV}"]))
        overrides = [f"paths.data_dir={root / 'data'}", f"paths.runs_dir={root / 'runs'}", *RUN]
        run = Run(compose(overrides))
        result = run.execute()
    assert result["status"] == "completed" and result["steps"] == 16
    return run.record.dir, overrides, result


def test_checkpoints_are_encrypted_and_a_resume_from_them_ends_where_the_run_did(encrypted_run, tmp_path, monkeypatch):
    run_dir, overrides, result = encrypted_run
    for name in ("last.ckpt", "previous.ckpt"):
        blob = (run_dir / "checkpoints" / name).read_bytes()
        assert crypto.is_encrypted(blob) and b"state_dict" not in blob and b"global_step" not in blob
    monkeypatch.setenv(ENV, KEY.hex())
    assert load_state(run_dir / "checkpoints" / "previous.ckpt")["global_step"] == 8  # the data's key, found by itself
    model, _, _ = load_model(run_dir)
    assert sum(p.numel() for p in model.parameters()) > 0

    # The same run interrupted after step 8: it resumes from the encrypted previous checkpoint.
    copy = tmp_path / "runs" / run_dir.parent.name / run_dir.name
    shutil.copytree(run_dir, copy)
    (copy / "result.json").unlink()
    (copy / "checkpoints" / "last.ckpt").unlink()
    resumed = Run(compose([*[o for o in overrides if not o.startswith("paths.runs_dir")],
                           f"paths.runs_dir={tmp_path / 'runs'}"]))
    assert resumed.record.dir == copy
    again = resumed.execute()
    assert again["steps"] == 16 and again["final_val_loss"] == pytest.approx(result["final_val_loss"], abs=1e-6)
    assert crypto.is_encrypted((copy / "checkpoints" / "last.ckpt").read_bytes())


def test_no_key_material_in_any_file_of_the_run(encrypted_run):
    run_dir, _, _ = encrypted_run
    forms = [KEY, KEY.hex().encode(), KEY.hex().upper().encode(), __import__("base64").b64encode(KEY)]
    for path in (p for p in run_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not any(form in data for form in forms), path
    assert f"env:{ENV}" in (run_dir.parent.parent.parent / "data" / "tiny" / "manifest.json").read_text()


def _compress(run_dir, capsys) -> tuple[int, str]:
    code = main(["compress", str(run_dir), "--method", "int8", "--json"])
    return code, capsys.readouterr().err.strip()


def test_a_missing_key_a_wrong_key_and_a_flipped_byte_are_one_line_naming_the_checkpoint(encrypted_run, tmp_path,
                                                                                         monkeypatch, capsys):
    run_dir, _, _ = encrypted_run
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    monkeypatch.delenv(ENV, raising=False)
    code, err = _compress(run_dir, capsys)
    assert code == 2 and "\n" not in err and f"checkpoint {ckpt}: encrypted; encryption key env:{ENV}: " \
                                               f"environment variable {ENV} is not set" in err
    with pytest.raises(ConfigError, match=f"checkpoint {ckpt}: encrypted"):
        load_state(ckpt)

    other = bytes(32)
    with pytest.raises(DataError, match=rf"checkpoint {ckpt}: encrypted with another key \(key id "
                                        rf"{crypto.key_id(KEY)}\), the given key has id {crypto.key_id(other)}"):
        load_state(ckpt, key=other)
    monkeypatch.setenv(ENV, other.hex())
    code, err = _compress(run_dir, capsys)
    assert code == 2 and "\n" not in err and f"checkpoint {ckpt}: encrypted; encryption key env:{ENV}: key id" in err

    monkeypatch.setenv(ENV, KEY.hex())
    flipped = tmp_path / "runs" / run_dir.parent.name / run_dir.name
    shutil.copytree(run_dir, flipped)
    blob = bytearray((flipped / "checkpoints" / "last.ckpt").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (flipped / "checkpoints" / "last.ckpt").write_bytes(bytes(blob))
    code, err = _compress(flipped, capsys)
    assert code == 2 and "\n" not in err
    assert err.endswith(f"checkpoint {flipped / 'checkpoints' / 'last.ckpt'}: tampered or corrupt (authentication failed)")
    with pytest.raises(DataError, match="not encrypted by lmlab"):  # with the key configured, plaintext is refused
        plain = tmp_path / "plain.ckpt"
        __import__("torch").save({"global_step": 1}, plain)
        load_state(plain, key=KEY)
