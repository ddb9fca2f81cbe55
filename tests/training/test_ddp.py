"""DDP on 2 CPU processes (gloo) matches one process with the same global batch."""

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
def test_ddp_two_cpu_processes_match_single_process(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(tmp_path)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["ids"] and r1["ids"]
    for epoch in range(2):  # disjoint shares that cover the data once per epoch
        a, b = r0["ids"][epoch * 8 : (epoch + 1) * 8], r1["ids"][epoch * 8 : (epoch + 1) * 8]
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
