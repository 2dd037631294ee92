"""Every rank takes the same branch: a NaN on one rank stops all of them (none waits alone in a
collective), and the epoch's statistics are averaged also when one rank has none.

Two gloo processes on the CPU, started by multiprocessing; a hang fails the test by timeout."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod

import pytest
import torch
from test_training_recipe import NaNAt

from test_trust_runs import fake_loader

TIMEOUT_S = 90


class AlwaysNaN(NaNAt):
    """Non-finite loss on every forward."""

    def forward(self, image, label, *args, **kwargs):
        self.bad = self.calls
        return super().forward(image, label, *args, **kwargs)


def _worker(rank: int, world: int, init_file: str, case: str, results) -> None:
    import torch.distributed as dist

    from aigbench.engine.amp import AmpPolicy
    from aigbench.engine.contract import NonFiniteLossError
    from aigbench.engine.dist import DistContext, all_reduce_mean
    from aigbench.engine.loop import train_one_epoch

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    ctx = DistContext(torch.device("cpu"), rank=rank, world_size=world)
    try:
        if case == "mean":
            values = {"loss": 1.0, "acc": 0.5} if rank == 0 else {}
            if rank == 2:
                values = {"loss": 4.0, "bce": 2.0}
            results.put((rank, all_reduce_mean(values, ctx.device, weight=[10, 0, 30][rank])))
            return
        scaling = case == "float16"
        model = (AlwaysNaN() if rank == 1 else NaNAt()) if scaling else NaNAt(bad=3 if rank == 1 else -1)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler("cpu", enabled=True) if scaling else None
        try:
            result = train_one_epoch(
                ddp,
                fake_loader(n_batches=40 if scaling else 8),
                opt,
                None,
                scaler,
                ctx,
                0,
                amp=AmpPolicy("cpu", None),
                show_progress=False,
                validate=False,
                sync_every=4 if case == "interval" else None,
            )
            results.put((rank, ("finished", result.global_step)))
        except NonFiniteLossError as e:
            results.put((rank, ("stopped", e.global_step)))
    finally:
        dist.destroy_process_group()


def _run(tmp_path, case: str, world: int = 2) -> dict:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, world, str(tmp_path / "rdzv"), case, results)) for r in range(world)]
    for p in procs:
        p.start()
    got = {}
    try:
        for _ in range(world):
            rank, value = results.get(timeout=TIMEOUT_S)
            got[rank] = value
    except queue_mod.Empty:
        pytest.fail(f"{case}: ranks {sorted(set(range(world)) - set(got))} never finished (a rank waits alone)")
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    return got


@pytest.mark.parametrize("case", ["every_step", "interval"])
def test_a_nan_on_one_rank_stops_every_rank_at_the_same_step(tmp_path, case):
    got = _run(tmp_path, case)
    assert got[0] == got[1]
    assert got[0][0] == "stopped"
    assert got[0][1] == (3 if case == "every_step" else 0)  # before stepping / the last good check


def test_float16_overflows_on_one_rank_stop_every_rank_together(tmp_path):
    from aigbench.engine.amp import MAX_SKIPPED_STEPS

    got = _run(tmp_path, "float16")
    assert got[0] == got[1]
    assert got[0][0] == "stopped"
    assert got[0][1] == MAX_SKIPPED_STEPS  # those steps were taken (and skipped by the scaler), the next stops


def test_epoch_statistics_are_weighted_by_images_and_need_not_exist_on_every_rank(tmp_path):
    got = _run(tmp_path, "mean", world=3)
    expected = {"loss": (10 * 1.0 + 30 * 4.0) / 40, "acc": 0.5, "bce": 2.0}
    for rank in range(3):
        assert got[rank] == pytest.approx(expected)
