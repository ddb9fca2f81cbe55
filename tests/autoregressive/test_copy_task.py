"""Copy-task data: sequence structure, lengths, determinism, masks, padding, the sampler."""

import pytest
import torch

from asr.autoregressive.data import PAD, CopyTask, CopyTaskDataset, EpochBatchSampler, collate_copy


def test_sequences_are_symbols_separator_same_symbols():
    task = CopyTask(max_symbols=12, n_symbols=10, min_symbols=3)
    data = CopyTaskDataset(task, 500, seed=1)
    lengths = set()
    for i in range(len(data)):
        seq = data[i]
        n = (len(seq) - 1) // 2
        lengths.add(n)
        assert len(seq) == 2 * n + 1 and 3 <= n <= 12
        assert seq[n] == task.separator
        assert torch.equal(seq[:n], seq[n + 1 :])
        assert ((seq[:n] >= 1) & (seq[:n] <= 10)).all()
    assert lengths == set(range(3, 13))  # every allowed length occurs in 500 draws
    assert task.vocab_size == 12 and task.max_len == 25


def test_items_depend_only_on_seed_and_index():
    task = CopyTask(max_symbols=20)
    a, b = CopyTaskDataset(task, 100, seed=5), CopyTaskDataset(task, 100, seed=5)
    assert all(torch.equal(a[i], b[i]) for i in (0, 17, 99))
    assert not torch.equal(a[3], CopyTaskDataset(task, 100, seed=6)[3])
    assert sum(torch.equal(a[i], a[i + 1]) for i in range(99)) == 0
    with pytest.raises(IndexError):
        a[100]


def test_symbols_are_uniform():
    task = CopyTask(max_symbols=64, n_symbols=10)
    seqs = [CopyTaskDataset(task, 300, seed=2)[i] for i in range(300)]
    symbols = torch.cat([s[: (len(s) - 1) // 2] for s in seqs])
    freq = torch.bincount(symbols, minlength=11)[1:].double() / len(symbols)
    assert torch.allclose(freq, torch.full((10,), 0.1, dtype=torch.float64), atol=0.015)


def test_collate_pads_and_masks_only_the_copy():
    task = CopyTask(max_symbols=6)
    seqs = [torch.tensor([3, 4, 11, 3, 4]), torch.tensor([1, 2, 5, 11, 1, 2, 5])]
    batch = collate_copy(task, seqs)
    assert batch["tokens"].tolist() == [[3, 4, 11, 3, 4, PAD, PAD], [1, 2, 5, 11, 1, 2, 5]]
    assert batch["loss_mask"].tolist() == [
        [False, False, False, True, True, False, False],
        [False, False, False, False, True, True, True],
    ]


def test_bad_task_settings():
    with pytest.raises(ValueError, match="min_symbols"):
        CopyTask(max_symbols=3, min_symbols=5)
    with pytest.raises(ValueError, match="n_symbols"):
        CopyTask(n_symbols=0)


def test_epoch_batch_sampler_is_a_function_of_seed_and_epoch():
    sampler = EpochBatchSampler(23, 5, shuffle=True, seed=3, drop_last=False)
    first = list(sampler)
    assert len(first) == len(sampler) == 5 and sorted(sum(first, [])) == list(range(23))
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first
    dropped = EpochBatchSampler(23, 5, shuffle=False, drop_last=True)
    assert len(dropped) == 4 and list(dropped)[0] == [0, 1, 2, 3, 4]


def test_epoch_batch_sampler_resumes_at_the_next_batch():
    sampler = EpochBatchSampler(23, 5, shuffle=True, seed=3, drop_last=False)
    sampler.set_epoch(2)
    epoch2 = list(sampler)
    state = sampler.state_dict(consumed=3)  # 3 batches trained on, whatever was prefetched
    resumed = EpochBatchSampler(23, 5, shuffle=True, seed=3, drop_last=False)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # Lightning calls it again when the resumed epoch starts
    assert list(resumed) == epoch2[3:]
    assert list(resumed) == epoch2  # a later pass over the same epoch is whole again
    done = EpochBatchSampler(23, 5, shuffle=True, seed=3)
    done.load_state_dict(sampler.state_dict(consumed=5))  # saved at the epoch's end
    fresh = EpochBatchSampler(23, 5, shuffle=True, seed=3)
    fresh.set_epoch(3)
    assert done.epoch == 3 and list(done) == list(fresh)
    with pytest.raises(ValueError, match="batch_size=5 but this run has 4"):
        EpochBatchSampler(23, 4, shuffle=True, seed=3).load_state_dict(state)
