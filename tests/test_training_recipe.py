"""Training recipes of the field: SGD + OneCycleLR (AI-GenBench), warm-up as a fraction of
training (Community Forensics), gradient clipping, and --init_from (warm-started windows)."""

from __future__ import annotations

import argparse
import copy

import pytest
import torch

from aigbench.engine.dist import DistContext
from aigbench.engine.loop import train_one_epoch
from aigbench.engine.optim import optimizer_from_args, scheduler_from_args

from conftest import data_flags, script
from test_trust_runs import fake_loader


class Tiny(torch.nn.Module):
    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)
        self.scale = scale

    def forward(self, image, label, *args, **kwargs):
        logit = self.lin(image.mean((2, 3))).squeeze(1)
        loss = self.scale * torch.nn.functional.binary_cross_entropy_with_logits(logit, label)
        return {"backward_loss": loss, "pred_label": torch.sigmoid(logit), "visual_loss": {}, "visual_image": {}}


def recipe(**kw) -> argparse.Namespace:
    base = dict(
        lr=1e-3,
        weight_decay=1e-4,
        optimizer="adamw",
        momentum=0.9,
        scheduler="cosine",
        epochs=3,
        warmup_epochs=1.0,
        warmup_fraction=None,
        min_lr=0.0,
    )
    return argparse.Namespace(**{**base, **kw})


def lrs(opt, sched, n):
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_sgd_with_onecycle_is_torchs_onecycle():
    model = Tiny()
    args = recipe(optimizer="sgd", scheduler="onecycle")
    opt = optimizer_from_args(model, args)
    assert isinstance(opt, torch.optim.SGD)
    assert opt.defaults["momentum"] == 0.9 and opt.defaults["weight_decay"] == 1e-4
    sched = scheduler_from_args(opt, args, steps_per_epoch=10)
    ref_model = Tiny()
    ref_opt = torch.optim.SGD(ref_model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=1e-3, total_steps=30)
    assert lrs(opt, sched, 30) == pytest.approx(lrs(ref_opt, ref, 30), rel=1e-12)
    assert opt.param_groups[0]["momentum"] == ref_opt.param_groups[0]["momentum"]  # cycled too


def test_warmup_fraction_counts_steps_of_the_whole_run():
    model = Tiny()
    args = recipe(warmup_fraction=0.2, epochs=5)
    opt = optimizer_from_args(model, args)
    seq = lrs(opt, scheduler_from_args(opt, args, steps_per_epoch=10), 50)
    assert seq[:10] == pytest.approx([1e-3 * (i + 1) / 10 for i in range(10)])  # 20 % of 50 steps
    assert max(seq) == pytest.approx(1e-3) and seq[-1] < 1e-5


def test_clip_grad_bounds_the_norm_of_each_update():
    ctx = DistContext(torch.device("cpu"))
    deltas = {}
    for clip in (0.0, 0.5):
        torch.manual_seed(0)
        model = Tiny(scale=1e4)  # huge gradients
        before = [p.detach().clone() for p in model.parameters()]
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        train_one_epoch(model, fake_loader(n_batches=1), opt, None, None, ctx, 0, show_progress=False, clip_grad=clip)
        deltas[clip] = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert float(deltas[0.5]) == pytest.approx(0.5, rel=1e-4)  # lr 1: the update is the clipped gradient
    assert float(deltas[0.0]) > 10


def test_init_from_starts_from_a_checkpoints_weights(project, subsets):
    flags = [*data_flags(subsets), "--val_split", "0.2", "--epochs", "1", "--image_size", "32", "--device", "cpu"]
    script(project, "train.py", *flags, "--output_dir", "output_dir/a")
    first = project / "output_dir" / "a" / "checkpoint-0.pth"
    # lr 0: the weights stay those loaded, so the new run's checkpoint equals the first run's
    script(
        project,
        "train.py",
        *flags,
        "--output_dir",
        "output_dir/b",
        "--init_from",
        str(first),
        "--lr",
        "0",
        "--min_lr",
        "0",
    )
    a = torch.load(first, weights_only=True)["model"]
    b = torch.load(project / "output_dir" / "b" / "checkpoint-0.pth", weights_only=True)["model"]
    assert a.keys() == b.keys()
    params = [k for k in a if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert all(torch.equal(a[k], b[k]) for k in params)
    counts = [k for k in a if k.endswith("num_batches_tracked")]
    assert counts and all(int(b[k]) == 2 * int(a[k]) for k in counts)  # BatchNorm went on from the loaded state
    proc = script(
        project, "train.py", *flags, "--output_dir", "output_dir/c", "--init_from", "missing.pth", check=False
    )
    assert proc.returncode == 2 and "missing.pth" in proc.stderr


# --------------------------------------------------------------------------- host reads (CUDA hot path)


class NaNAt(torch.nn.Module):
    """A linear model whose loss is NaN on its ``bad``-th forward (0-based)."""

    def __init__(self, bad: int = -1):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(3, 1)
        self.bn = torch.nn.BatchNorm1d(3)
        self.calls, self.bad = 0, bad

    def forward(self, image, label, *args, **kwargs):
        logit = self.lin(self.bn(image.mean((2, 3)))).squeeze(1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, label)
        if self.calls == self.bad:
            loss = loss * float("nan")
        self.calls += 1
        return {
            "backward_loss": loss,
            "pred_label": torch.sigmoid(logit),
            "visual_loss": {"bce": loss.detach()},
            "visual_image": {},
        }


class HostReads:
    """Counts every read of a tensor's value by the host (the calls that wait for a GPU)."""

    def __init__(self, monkeypatch):
        self.n = 0
        for name in ("item", "tolist", "__float__", "__bool__", "__int__"):
            original = getattr(torch.Tensor, name)

            def counted(t, *a, _orig=original, **k):
                self.n += 1
                return _orig(t, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, counted)


def run_epoch(model, sync_every, n_batches=10, opt=None, **kw):
    ctx = DistContext(torch.device("cpu"))
    opt = opt or torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return train_one_epoch(
        model,
        fake_loader(n_batches=n_batches),
        opt,
        None,
        None,
        ctx,
        0,
        show_progress=False,
        validate=False,
        sync_every=sync_every,
        **kw,
    )


def test_reading_scalars_every_few_steps_gives_the_same_epoch():
    a, b = NaNAt(), NaNAt()
    ra, rb = run_epoch(a, 1), run_epoch(b, 4)
    assert ra.global_step == rb.global_step == 10
    assert {k: ra.stats[k] for k in ("loss", "acc", "bce")} == pytest.approx(
        {k: rb.stats[k] for k in ("loss", "acc", "bce")}, rel=1e-6
    )
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_one_host_read_per_interval(monkeypatch):
    counter = HostReads(monkeypatch)
    run_epoch(NaNAt(), 4, n_batches=12)
    reads_every_4 = counter.n
    counter.n = 0
    run_epoch(NaNAt(), 1, n_batches=12)
    assert reads_every_4 <= 3 + 1  # steps 3, 7, 11 (+ the epoch's closing all-reduce)
    assert counter.n >= 12  # every batch when reading each step


def test_nan_between_reads_puts_back_the_last_checked_weights():
    from aigbench.engine.contract import NonFiniteLossError

    model = NaNAt(bad=6)
    seen = []
    model.register_forward_pre_hook(lambda m, a: seen.append({k: v.clone() for k, v in model.state_dict().items()}))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(NonFiniteLossError, match="put back to those of step 4") as e:
        run_epoch(model, 4, opt=opt)
    assert e.value.global_step == 4
    assert not opt.state  # the momentum buffers that the NaN gradients reached are gone
    after_4_steps = seen[4]  # the weights the 5th forward saw
    assert all(torch.equal(v, after_4_steps[k]) for k, v in model.state_dict().items())
    assert all(torch.isfinite(v.float()).all() for v in model.state_dict().values())
    # read every batch (the CPU default): caught before stepping
    model = NaNAt(bad=6)
    with pytest.raises(NonFiniteLossError, match="step 6"):
        run_epoch(model, 1)


@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_fused_optimizers_update_as_torchs_default_implementation(name):
    from aigbench.engine.optim import build_optimizer

    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 1))
    ref = copy.deepcopy(ours)
    opt = build_optimizer(ours, 1e-2, 0.05, name)
    assert opt.defaults["fused"] is True  # CPU float32: torch has fused kernels
    if name == "sgd":
        ref_opt = torch.optim.SGD(ref.parameters(), lr=1e-2, momentum=0.9, weight_decay=0.05)
    else:  # weight decay on the matrices only
        decay = [p for p in ref.parameters() if p.ndim > 1]
        rest = [p for p in ref.parameters() if p.ndim <= 1]
        ref_opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}], lr=1e-2
        )
    assert not ref_opt.defaults["fused"]
    x = torch.randn(32, 6)
    for _ in range(25):
        for model, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad()
            model(x).pow(2).mean().backward()
            o.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_parameters_without_fused_kernels_get_torchs_default_optimizer():
    from aigbench.engine.optim import build_optimizer

    model = torch.nn.Linear(3, 1, dtype=torch.complex64)  # no fused kernel for complex tensors
    opt = build_optimizer(model, 1e-3)
    assert not opt.defaults["fused"]
    model(torch.randn(2, 3, dtype=torch.complex64)).abs().sum().backward()
    opt.step()  # a fused optimizer would raise here
