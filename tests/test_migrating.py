"""Habits of IMDL-BenCo, Community Forensics, AI-GenBench and the aiornot / CIFAKE notebooks:
they work, or they stop with a message that names what aigbench does instead (docs/migrating.md)."""

from __future__ import annotations

import argparse
import logging
import re

import pytest
import timm
import torch
import torchvision

from aigbench.engine import args as flags
from aigbench.engine import build
from aigbench.engine.contract import ForwardSignatureError, check_forward_signature
from aigbench.engine.dist import DistContext
from aigbench.flags import signature_table
from aigbench.model_zoo.aigenbench import TORCHVISION_TWINS
from aigbench.model_zoo.timm_backbone import TimmDetector
from aigbench.registry import MODELS

from conftest import REPO

CPU = DistContext(torch.device("cpu"))
DOC = REPO / "docs" / "migrating.md"
TORCHRUN_FLAGS = {"--nproc_per_node"}  # torchrun's own, named in the advice


def _outputs(image: torch.Tensor, weight: torch.Tensor) -> dict:
    logit = image.mean((1, 2, 3)) * weight
    return {
        "backward_loss": logit.mean(),
        "pred_label": torch.sigmoid(logit),
        "visual_loss": {},
        "visual_image": {},
    }


@MODELS.register_module()
class MigratingBenCoModel(torch.nn.Module):
    """An IMDL-BenCo model: forward takes a mask between the image and the label."""

    built = 0

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        type(self).built += 1
        self.weight = torch.nn.Parameter(torch.ones(()))

    def forward(self, image, mask, label, *args, **kwargs):
        return _outputs(image, self.weight)


@MODELS.register_module()
class MigratingTinyModel(torch.nn.Module):
    """A model with aigbench's forward."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))

    def forward(self, image, label, *args, **kwargs):
        return _outputs(image, self.weight)


def parse_error(capsys, parser: argparse.ArgumentParser, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        flags.parse_args(parser, argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


# ---- forward's signature ------------------------------------------------------------------------


def test_benco_forward_is_refused_when_the_flags_are_parsed_naming_mask(capsys, tmp_path):
    missing = tmp_path / "no_such_data"  # nothing is read: the forward stops the run first
    err = parse_error(
        capsys,
        flags.train_parser(),
        ["--model", "MigratingBenCoModel", "--data_path", str(missing), "--output_dir", str(tmp_path / "out")],
    )
    assert "--model MigratingBenCoModel" in err and "parameter 'mask'" in err
    assert "def forward(self, image, label, *args, **kwargs)" in err
    assert str(missing) not in err


def test_benco_forward_is_refused_by_build_model_before_the_model_is_built(tmp_path):
    args = argparse.Namespace(model="MigratingBenCoModel", width=4, pretrained_path="", output_dir=str(tmp_path))
    before = MigratingBenCoModel.built
    with pytest.raises(ForwardSignatureError, match=r"MigratingBenCoModel\.forward\(image, mask, label.*'mask'"):
        build.build_model(args, CPU)
    assert MigratingBenCoModel.built == before  # refused before __init__ ran


def test_forward_signature_messages_name_the_parameter():
    class Keywordless(torch.nn.Module):
        def forward(self, image, label):
            return {}

    class ExtraRequired(torch.nn.Module):
        def forward(self, image, label, edge_mask, **kwargs):
            return {}

    class OneArgument(torch.nn.Module):
        def forward(self, image, **kwargs):
            return {}

    with pytest.raises(ForwardSignatureError, match="no keyword argument 'path'.*Add \\*\\*kwargs"):
        check_forward_signature(Keywordless)
    with pytest.raises(ForwardSignatureError, match="cannot fill its parameter 'edge_mask' \\(required"):
        check_forward_signature(ExtraRequired())  # an instance works as well as a class
    with pytest.raises(ForwardSignatureError, match="takes 1 positional argument"):
        check_forward_signature(OneArgument)
    with pytest.raises(ForwardSignatureError, match="defines no forward"):
        check_forward_signature(torch.nn.Module)


def test_every_registered_model_and_a_plain_forward_pass_the_check():
    zoo = [MODELS.get(n) for n in MODELS.list() if MODELS.get(n).__module__.startswith("aigbench.")]
    assert len(zoo) > 20
    for cls in [*zoo, MODELS.get("resnet18_tune"), MigratingTinyModel]:
        check_forward_signature(cls)
    model = MigratingTinyModel()
    out = model(torch.zeros(2, 3, 8, 8), torch.zeros(2), path=["a", "b"], generator=["", ""], index=torch.arange(2))
    assert out["pred_label"].shape == (2,)


# ---- AI-GenBench's generic names -----------------------------------------------------------------


def n_params(module: torch.nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


def test_resnet18_probe_is_a_frozen_timm_resnet18_with_a_linear_head():
    model = MODELS.get("resnet18_probe")(image_size=32)
    reference = timm.create_model("resnet18", pretrained=False, num_classes=0)
    assert isinstance(model, TimmDetector) and model.mode == "probe"
    assert type(model.backbone) is type(reference)
    assert n_params(model.backbone) == n_params(reference) == 11_176_512
    assert n_params(model, trainable=True) == 512 + 1  # the head only
    assert not model.backbone.training


def test_resnet50_tune_is_timm_resnet50_not_the_clip_resnet():
    cls = MODELS.get("resnet50_tune")
    assert cls is not MODELS.get("RN50_tune") and cls.timm_name == "resnet50"
    model = cls()
    reference = timm.create_model("resnet50", pretrained=False, num_classes=0)
    assert type(model.backbone) is type(reference)
    assert n_params(model, trainable=True) == n_params(reference) + 2048 + 1  # everything trains
    assert MODELS.get("resnet50_tune") is cls and "resnet50_tune" in MODELS
    assert None not in MODELS  # bench predict asks this of a config without a model


def test_generic_name_takes_its_flags_and_timm_preprocessing(tmp_path):
    args = flags.parse_args(
        flags.train_parser(), ["--model", "resnet18_tune", "--drop_rate", "0.1", "--output_dir", str(tmp_path)]
    )
    assert args.image_size == 224 and args.drop_rate == 0.1  # timm's resnet18 pretrained_cfg
    assert args.preprocess["mean"] == pytest.approx([0.485, 0.456, 0.406])


def test_torchvision_weights_load_into_a_name_timm_shares(tmp_path, aigbench_log):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    model = MODELS.get("resnet18_probe")(pretrained_path=str(tmp_path / "r18.pth"), image_size=32)
    assert model.pretrained is True
    assert [r for r in aigbench_log.records if r.levelno == logging.WARNING] == []


def test_torchvision_only_and_misspelt_backbones_name_timms_model():
    with pytest.raises(KeyError, match="torchvision's name.*'vit_base_patch16_224'.*vit_base_patch16_224_tune"):
        MODELS.get("vit_b_16_tune")
    with pytest.raises(KeyError, match="'resnt50' is not a timm model name.*'resnet50_probe'"):
        MODELS.get("resnt50_probe")
    assert "vit_b_16_tune" not in MODELS
    for torchvision_name, timm_name in TORCHVISION_TWINS.items():
        assert timm.is_model(timm_name) and not timm.is_model(torchvision_name)


# ---- random weights warn ---------------------------------------------------------------------------


def random_weight_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "random" in r.getMessage()]


def test_tune_run_without_pretrained_path_warns(aigbench_log, tmp_path):
    args = flags.parse_args(
        flags.train_parser(), ["--model", "resnet18_tune", "--image_size", "32", "--output_dir", str(tmp_path)]
    )
    build.build_model(args, CPU)
    msgs = random_weight_warnings(aigbench_log)
    assert len(msgs) == 1
    assert "resnet18_tune without --pretrained_path" in msgs[0] and "from scratch" in msgs[0]

    aigbench_log.clear()
    TimmDetector("resnet18", mode="tune", image_size=32)
    MODELS.get("dinov2_vits14_tune")(image_size=28)
    msgs = random_weight_warnings(aigbench_log)
    assert len(msgs) == 2
    assert "TimmDetector --mode tune" in msgs[0] and "dinov2_vits14_tune" in msgs[1]


# ---- other tools' flags ---------------------------------------------------------------------------


TINY = ["--model", "MigratingTinyModel"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--world_size", "2"],
            "--world_size (IMDL-BenCo): aigbench has no such flag; the number of processes is "
            "torchrun's: torchrun --nproc_per_node N train.py",
        ),
        (["--if_resizing"], "--if_resizing (IMDL-BenCo): did you mean --resize_mode resize?"),
        (["--val_frac", "0.1"], "--val_frac (Community Forensics): did you mean --val_split?"),
        (["--warmup_frac=0.2"], "--warmup_frac (Community Forensics): did you mean --warmup_fraction?"),
        (["--additional_train_data", "x"], "did you mean --data_path?"),
        (["--trainer.max_epochs", "3"], "did you mean --epochs?"),
        (["--if_not_amp"], "did you mean --no-amp?"),
        (["--checkpoint_path", "ckpts"], "this script has no such flag; test.py --output_dir RUN --checkpoint"),
        (["--modle", "x"], "--modle: did you mean --model"),
        (["--epoch", "3"], "--epoch: did you mean --epochs?"),
        (["--nonsense_flag"], "--nonsense_flag: not a flag of this script; --help lists them all"),
    ],
)
def test_unknown_train_flags_name_aigbenchs_flag(capsys, tmp_path, argv, expected):
    err = parse_error(capsys, flags.train_parser(), [*TINY, "--output_dir", str(tmp_path), *argv])
    assert f"unrecognized arguments: {' '.join(argv)}" in err
    assert expected in err


def test_unknown_test_flags_are_judged_against_the_test_script(capsys, tmp_path):
    err = parse_error(capsys, flags.test_parser(), [*TINY, "--checkpoint_path", "ckpts", "--test_data_path", "x"])
    assert "--checkpoint_path (IMDL-BenCo): did you mean --checkpoint?" in err
    assert "--test_data_path (IMDL-BenCo): did you mean --test_data_json?" in err


def aigbench_options() -> set[str]:
    """Every option string of train.py, test.py, test_robust.py, the zoo's models and `bench`."""
    import click

    from aigbench.cli.main import cli

    out = set(TORCHRUN_FLAGS)
    for parser in (flags.train_parser(), flags.test_parser(), flags.robust_parser()):
        out |= {s for a in parser._actions for s in a.option_strings}
    for name in [*MODELS.list(), "resnet18_tune"]:
        for row in signature_table(MODELS.get(name)):
            out |= set(row[0].split("/"))
    commands = [cli]
    while commands:
        command = commands.pop()
        out |= {o for p in command.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}
        commands += list(getattr(command, "commands", {}).values())
    return out


def test_foreign_flag_advice_names_only_flags_that_exist_and_the_docs_list_them():
    options = aigbench_options()
    doc = DOC.read_text(encoding="utf-8")
    for name, (_tools, use, note) in flags.FOREIGN_FLAGS.items():
        named = re.findall(r"(?<![\w-])--[A-Za-z][\w.-]*", f"{use} {note}")
        assert set(named) <= options, (name, set(named) - options)
        assert re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", doc), f"docs/migrating.md lacks {name}"


def test_migrating_doc_has_a_table_per_tool_and_names_existing_flags():
    doc = DOC.read_text(encoding="utf-8")
    tools = ["IMDL-BenCo", "Community Forensics", "AI-GenBench", "aiornot notebook", "CIFAKE notebook"]
    options = aigbench_options()
    for tool in tools:
        section = doc.split(f"## {tool}\n", 1)[1].split("\n## ", 1)[0]
        rows = [line for line in section.splitlines() if line.startswith("|")]
        assert rows[0] == f"| {tool} | aigbench | notes |", rows[0]
        assert len(rows) >= 6
        for row in rows[2:]:
            aigbench_cell = row.split(" | ")[1]
            named = set(re.findall(r"(?<![\w-])--[A-Za-z][\w.-]*", aigbench_cell))
            assert named <= options, (tool, named - options)
    assert "(docs/migrating.md)" in (REPO / "README.md").read_text(encoding="utf-8")


def test_label_map_refuses_mask_folders_and_names_the_data_does_not_have(tmp_path):
    """A BenCo / CASIA tree (``Tp/`` tampered images, ``Au/`` authentic ones, ``Gt/`` masks)."""
    import argparse
    import shutil

    from aigbench.datasets.layouts import DEMO_ROOT, DatasetError, parse_label_map
    from aigbench.engine.build import load_data

    for folder, cls in (("Au", "REAL"), ("Tp", "FAKE"), ("Gt", "FAKE")):
        (tmp_path / "CASIA" / folder).mkdir(parents=True)
        for name in sorted((DEMO_ROOT / "test" / cls).iterdir())[:3]:
            shutil.copy(name, tmp_path / "CASIA" / folder / name.name)
    with pytest.raises(DatasetError, match="'Gt' is a folder of segmentation masks"):
        parse_label_map("Au:0,Gt:1")
    args = argparse.Namespace(layout="auto", label_map="Au:0,Tampered:1")
    with pytest.raises(DatasetError, match="'Tampered'.*folders include: Au, Gt, Tp"):
        load_data(args, str(tmp_path / "CASIA"), "train")
    args.label_map = "Au:0,Tp:1"
    assert sorted({s.label for s in load_data(args, str(tmp_path / "CASIA"), "train")}) == [0, 1]
