"""s2c_ops.distributed: a collective's tensors are let go of before it returns; a group of one rank."""
import threading
import time

import pytest
import torch

from s2c_ops.distributed import ProcessGroup, Ranks, lending

needs_use_count = pytest.mark.skipif(not hasattr(torch.Tensor, "_use_count"), reason="torch without Tensor._use_count")


@needs_use_count
def test_lending_waits_until_another_holder_lets_go():
    """A reference taken during the block (as gloo's worker threads take one) is waited for on leaving."""
    t = torch.zeros(4)
    alone = t._use_count()  # 1, or 2 on torch versions whose tensors count their PyObject
    held = []

    def release_later():
        time.sleep(0.05)
        held.clear()

    start = time.monotonic()
    with lending([t]):
        held.append(t.view(4))  # one more C++ reference to t
        assert t._use_count() > alone
        threading.Thread(target=release_later).start()
    assert time.monotonic() - start >= 0.045
    assert t._use_count() == alone


@needs_use_count
def test_lending_gives_up_after_its_timeout_and_ignores_other_devices():
    t = torch.zeros(4)
    alone = t._use_count()
    start = time.monotonic()
    with lending([t], timeout=0.05):
        kept = t.view(4)
    assert 0.045 <= time.monotonic() - start < 2
    assert kept is not None and t._use_count() > alone
    with lending([torch.zeros(2, device="meta")], timeout=0):
        pass


@needs_use_count
def test_a_gloo_collective_has_let_go_when_lending_ends(tmp_path):
    import torch.distributed as dist

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        for _ in range(20):
            t = torch.ones(3)
            alone = t._use_count()
            with lending([t]):
                dist.all_reduce(t)
            assert t._use_count() == alone
    finally:
        dist.destroy_process_group()


def test_a_group_of_one_rank_does_nothing():
    with ProcessGroup(Ranks()) as group:
        assert not group.active
        group.barrier()
        assert group.sum(torch.tensor([2, 3])).tolist() == [2, 3]
        assert group.gather(torch.tensor([5])).tolist() == [[5]]
