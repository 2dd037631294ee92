import argparse
from typing import Literal, Optional

import pytest

from aigbench.flags import add_signature_flags, kwargs_from_args, signature_table


class Model:
    def __init__(
        self,
        depth: int,
        width: int = 32,
        dropout: float = 0.1,
        name: str = "m",
        batch_norm: bool = True,
        pretrained: bool = False,
        mode: Literal["probe", "tune"] = "probe",
        scales: list[int] = (1, 2),
        weights: Optional[str] = None,
        *args,
        **kwargs,
    ):
        pass


def parse(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--image_size", type=int, default=32)
    names = add_signature_flags(parser, Model)
    return parser.parse_args(argv), names


def test_types_defaults_and_required():
    args, names = parse(["--depth", "3"])
    assert names == ["depth", "width", "dropout", "name", "batch_norm", "pretrained", "mode", "scales", "weights"]
    kw = kwargs_from_args(Model, args)
    assert kw == {
        "depth": 3,
        "width": 32,
        "dropout": 0.1,
        "name": "m",
        "batch_norm": True,
        "pretrained": False,
        "mode": "probe",
        "scales": (1, 2),
        "weights": None,
    }
    assert "args" not in kw and "kwargs" not in kw
    with pytest.raises(SystemExit):
        parse([])  # --depth is required


def test_values_are_converted():
    args, _ = parse(
        [
            "--depth",
            "3",
            "--width",
            "64",
            "--dropout",
            "0.5",
            "--mode",
            "tune",
            "--scales",
            "4",
            "8",
            "--weights",
            "w.pth",
        ]
    )
    kw = kwargs_from_args(Model, args)
    assert kw["width"] == 64 and kw["dropout"] == 0.5 and kw["mode"] == "tune"
    assert kw["scales"] == [4, 8] and kw["weights"] == "w.pth"
    with pytest.raises(SystemExit):
        parse(["--depth", "3", "--mode", "bogus"])


def test_bool_flags_are_on_off_never_type_bool():
    args, _ = parse(["--depth", "1", "--no-batch_norm", "--pretrained"])
    assert args.batch_norm is False and args.pretrained is True
    with pytest.raises(SystemExit):  # '--pretrained False' must not silently mean True
        parse(["--depth", "1", "--pretrained", "False"])


def test_parameter_named_like_framework_flag_shares_it():
    class Sized:
        def __init__(self, image_size: int = 224):
            pass

    parser = argparse.ArgumentParser()
    parser.add_argument("--image_size", type=int, default=32)
    add_signature_flags(parser, Sized)
    args = parser.parse_args(["--image_size", "64"])
    assert kwargs_from_args(Sized, args) == {"image_size": 64}


def test_signature_table_for_bench_models():
    rows = {r[0]: r for r in signature_table(Model)}
    assert rows["--depth"][2] == "(required)"
    assert "--batch_norm/--no-batch_norm" in rows
    assert rows["--mode"][1] == "{probe,tune}"
