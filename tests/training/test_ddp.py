"""DDP on 2 CPU processes (gloo) matches one process with the same global batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from ddp_worker import make_module
from train_synth import SyntheticDataModule

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.slow
@pytest.mark.parametrize("shares", [(2, 2), (3, 1)], ids=["equal", "unequal"])
def test_ddp_two_cpu_processes_match_single_process(
    tmp_path: Path, shares: tuple[int, int]
) -> None:
    """Each step trains on the same 4 utterances: split over 2 ranks (equally or 3 + 1) or in
    one process. With unequal shares, only a loss normalised by the global utterance count
    gives the single process's gradients (a per-rank mean would weigh rank 1's one utterance
    as much as rank 0's three)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path), ",".join(map(str, shares))],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    per_epoch = [16 * s // sum(shares) for s in shares]
    assert len(r0["ids"]) == 2 * per_epoch[0] and len(r1["ids"]) == 2 * per_epoch[1]
    for epoch in range(2):  # disjoint shares that cover the data once per epoch
        a = r0["ids"][epoch * per_epoch[0] : (epoch + 1) * per_epoch[0]]
        b = r1["ids"][epoch * per_epoch[1] : (epoch + 1) * per_epoch[1]]
        assert not set(a) & set(b) and len(set(a) | set(b)) == 16
    assert r0["agree"] and all(r0["agree"]) and all(r1["agree"])

    L.seed_everything(0, verbose=False)
    single = make_module()
    L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        use_distributed_sampler=False,
    ).fit(single, datamodule=SyntheticDataModule(n_train=16, batch_size=4))
    ddp = torch.load(tmp_path / "weights.pt", weights_only=True)
    for k, v in single.state_dict().items():
        torch.testing.assert_close(ddp[k], v, rtol=1e-4, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")
