import argparse
import importlib.util
import inspect
import sys
from typing import Literal, Optional

import pytest

from aigbench.errors import AigbenchError, ConfigError
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


# ---- annotations resolved one by one, with and without ``from __future__ import annotations`` ----

MODELS_SOURCE = """
from typing import Callable, Literal, Optional, Union


class Typed:
    def __init__(
        self,
        depth: int,
        width: int = 32,
        dropout: float = 0.1,
        name: str = "m",
        batch_norm: bool = True,
        pretrained: bool = False,
        limit: Optional[int] = None,
        scales: list[float] = (1.0, 2.0),
        sizes: tuple[int, ...] = (3, 4),
        mode: Literal["a", "b"] = "a",
        level: Literal[1, 2] = 1,
        steps: "Undefined" = 4,  # an undefined name: takes the default's type
        ratio: "int | 'str'" = 0.5,  # evaluating raises TypeError (like int | None on 3.9): default's type
    ):
        pass


class Unannotated:
    def __init__(self, count=3, label=None, sizes=(1, 2), flip=True):
        pass


class Config:
    pass


class WithDict:
    def __init__(self, cfg: dict = None):
        pass


class WithClass:
    def __init__(self, width: int = 1, cfg: Config = None):
        pass


class WithCallable:
    def __init__(self, fn: Callable[[int], int] = abs):
        pass


class WithUnresolvableNone:
    def __init__(self, thing: "Undefined" = None):
        pass


class WithUnion:
    def __init__(self, size: Union[int, str] = 1):
        pass


class WithListOfDict:
    def __init__(self, parts: list[dict] = ()):
        pass


class WithDictDefault:
    def __init__(self, table={}):  # noqa: B006
        pass
"""

PIPE_SOURCE = """

class PipeDefault:
    def __init__(self, cap: int | None = 7):
        pass


class PipeNone:
    def __init__(self, limit: int | None = None):
        pass
"""

UNSUPPORTED = {
    "WithDict": ("cfg", "dict"),
    "WithClass": ("cfg", "Config"),
    "WithCallable": ("fn", "Callable"),
    "WithUnresolvableNone": ("thing", "Undefined"),
    "WithUnion": ("size", ("Union[int, str]", "int | str")),
    "WithListOfDict": ("parts", "list[dict]"),
    "WithDictDefault": ("table", "dict"),
}


@pytest.fixture(params=["future", "plain"])
def models(request, tmp_path, monkeypatch):
    """The models above, in a module of their own with or without ``from __future__ import annotations``."""
    future = request.param == "future"
    source = MODELS_SOURCE
    if future or sys.version_info >= (3, 10):  # ``int | None`` is a syntax error at runtime on 3.9
        source += PIPE_SOURCE
    if future:
        source = "from __future__ import annotations\n" + source
    name = f"flag_models_{request.param}"
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    assert ("annotations" in vars(module)) == future  # the future import really applies
    return module


def parse_model(cls, argv):
    parser = argparse.ArgumentParser()
    add_signature_flags(parser, cls)
    return kwargs_from_args(cls, parser.parse_args(argv))


def test_each_annotation_gives_its_type(models):
    kw = parse_model(
        models.Typed,
        "--depth 3 --width 16 --dropout 0.5 --name x --limit 5 --scales 0.5 2 --sizes 5 6 7"
        " --mode b --level 2 --steps 9 --ratio 0.25".split(),
    )
    expected = {
        "depth": 3,
        "width": 16,
        "dropout": 0.5,
        "name": "x",
        "batch_norm": True,
        "pretrained": False,
        "limit": 5,
        "scales": [0.5, 2.0],
        "sizes": (5, 6, 7),
        "mode": "b",
        "level": 2,
        "steps": 9,
        "ratio": 0.25,
    }
    assert kw == expected
    assert {k: type(v) for k, v in kw.items()} == {k: type(v) for k, v in expected.items()}
    assert [type(v) for v in kw["scales"]] == [float, float] and [type(v) for v in kw["sizes"]] == [int] * 3


def test_defaults_keep_their_values(models):
    kw = parse_model(models.Typed, ["--depth", "1"])
    assert kw["limit"] is None and kw["scales"] == (1.0, 2.0) and kw["sizes"] == (3, 4)
    assert kw["mode"] == "a" and kw["level"] == 1 and kw["steps"] == 4 and kw["ratio"] == 0.5
    with pytest.raises(SystemExit):
        parse_model(models.Typed, [])  # --depth is required


def test_bool_is_an_on_off_switch(models):
    kw = parse_model(models.Typed, ["--depth", "1", "--no-batch_norm", "--pretrained"])
    assert kw["batch_norm"] is False and kw["pretrained"] is True
    with pytest.raises(SystemExit):
        parse_model(models.Typed, ["--depth", "1", "--pretrained", "False"])


@pytest.mark.parametrize("argv", [["--mode", "c"], ["--level", "3"], ["--level", "x"], ["--width", "1.5"]])
def test_bad_values_are_rejected(models, argv):
    with pytest.raises(SystemExit):
        parse_model(models.Typed, ["--depth", "1", *argv])


def test_unannotated_parameters_take_the_default_type(models):
    kw = parse_model(models.Unannotated, "--count 4 --label 7 --sizes 5 6 --no-flip".split())
    assert kw == {"count": 4, "label": "7", "sizes": (5, 6), "flip": False}
    assert type(kw["count"]) is int and type(kw["label"]) is str and [type(v) for v in kw["sizes"]] == [int, int]


def test_int_or_none(models):
    if not hasattr(models, "PipeDefault"):
        pytest.skip("int | None cannot even be written without the future import on Python 3.9")
    kw = parse_model(models.PipeDefault, ["--cap", "5"])  # 3.9: not evaluable, takes the default's type
    assert kw == {"cap": 5} and type(kw["cap"]) is int
    assert parse_model(models.PipeDefault, []) == {"cap": 7}
    if sys.version_info >= (3, 10):
        assert parse_model(models.PipeNone, []) == {"limit": None}
        kw = parse_model(models.PipeNone, ["--limit", "3"])
        assert kw == {"limit": 3} and type(kw["limit"]) is int
        assert signature_table(models.PipeNone) == [("--limit", "int", "None")]
    else:  # not evaluable and the default None gives no type
        with pytest.raises(ConfigError, match="'limit'.*cannot be evaluated"):
            parse_model(models.PipeNone, [])


@pytest.mark.parametrize("model", sorted(UNSUPPORTED))
def test_types_that_cannot_be_flags_raise(models, model):
    cls = getattr(models, model)
    param, type_names = UNSUPPORTED[model]
    with pytest.raises(ConfigError) as info:
        add_signature_flags(argparse.ArgumentParser(), cls)
    message = str(info.value)
    assert f"model {model}:" in message and f"'{param}'" in message
    assert any(name in message for name in ([type_names] if isinstance(type_names, str) else type_names))
    assert "int, float, str, bool, Literal[...], Optional[T], list[T] or tuple[T, ...]" in message
    assert isinstance(info.value, AigbenchError)  # the scripts print it as one line
    with pytest.raises(ConfigError):
        kwargs_from_args(cls, argparse.Namespace())
    rows = {r[0]: r for r in signature_table(cls)}  # bench models NAME still shows the model
    assert rows[f"--{param}"][1].endswith("(not a flag)")


def test_signature_table_shows_the_resolved_types(models):
    rows = {r[0]: r[1:] for r in signature_table(models.Typed)}
    assert rows == {
        "--depth": ("int", "(required)"),
        "--width": ("int", "32"),
        "--dropout": ("float", "0.1"),
        "--name": ("str", "'m'"),
        "--batch_norm/--no-batch_norm": ("bool", "True"),
        "--pretrained/--no-pretrained": ("bool", "False"),
        "--limit": ("int", "None"),
        "--scales": ("list[float]", "(1.0, 2.0)"),
        "--sizes": ("tuple[int, ...]", "(3, 4)"),
        "--mode": ("{a,b}", "'a'"),
        "--level": ("{1,2}", "1"),
        "--steps": ("int", "4"),
        "--ratio": ("float", "0.5"),
    }
    assert [r[1] for r in signature_table(models.Unannotated)] == ["int", "str", "tuple[int, ...]", "bool"]


def test_adding_the_same_model_twice_shares_its_own_flags(models):
    parser = argparse.ArgumentParser()
    add_signature_flags(parser, models.Typed)
    add_signature_flags(parser, models.Typed)  # every flag now exists with the parameter's own type
    assert kwargs_from_args(models.Typed, parser.parse_args(["--depth", "2"]))["depth"] == 2


def test_fixed_length_tuple_takes_exactly_that_many_values():
    class Pair:
        def __init__(self, layers: tuple[int, int] = (3, 4)):
            pass

    assert parse_model(Pair, ["--layers", "1", "2"]) == {"layers": (1, 2)}
    with pytest.raises(SystemExit):
        parse_model(Pair, ["--layers", "1", "2", "3"])


# ---- parameters named like framework flags ----


def framework_parser():
    """Framework flags of each kind (the generated scripts' parsers have these and more)."""
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--resize_mode", choices=["resize", "crop", "none"], default="resize")
    parser.add_argument("--aug_jpeg_quality", type=int, nargs=2, default=[30, 100])
    parser.add_argument("--verbose", action="count", default=0)
    return parser


def test_framework_flag_of_the_same_type_is_shared():
    class Shares:
        def __init__(
            self,
            image_size: int = 224,
            amp: bool = False,
            seed: Optional[int] = None,
            resize_mode: Literal["resize", "crop", "none", "pad"] = "crop",
            aug_jpeg_quality: tuple[int, int] = (50, 90),
        ):
            pass

    parser = framework_parser()
    add_signature_flags(parser, Shares)
    args = parser.parse_args("--image_size 64 --no-amp --seed 3 --aug_jpeg_quality 10 20".split())
    assert kwargs_from_args(Shares, args) == {
        "image_size": 64,
        "amp": False,
        "seed": 3,
        "resize_mode": "resize",  # the framework flag's default
        "aug_jpeg_quality": (10, 20),
    }


def model_with(name, annotation):
    """A model class whose ``__init__`` takes one parameter ``name: annotation``."""

    def __init__(self, **kwargs):
        pass

    __init__.__signature__ = inspect.Signature(
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=None),
        ]
    )
    return type("Clash", (), {"__init__": __init__})


@pytest.mark.parametrize(
    "annotation, name, flag",
    [
        (str, "seed", "--seed"),
        (float, "seed", "--seed"),
        (bool, "seed", "--seed"),
        (int, "amp", "--amp/--no-amp"),
        (list[int], "image_size", "--image_size"),
        (Literal["resize", "crop"], "resize_mode", "--resize_mode"),  # the framework also allows "none"
        (list[float], "aug_jpeg_quality", "--aug_jpeg_quality"),
        (tuple[int, int, int], "aug_jpeg_quality", "--aug_jpeg_quality"),
        (int, "verbose", "--verbose"),  # not a plain value flag
    ],
)
def test_framework_flag_of_another_type_raises(annotation, name, flag):
    with pytest.raises(ConfigError) as info:
        add_signature_flags(framework_parser(), model_with(name, annotation))
    message = str(info.value)
    assert f"model Clash: parameter '{name}'" in message and flag in message and "rename the parameter" in message


@pytest.mark.parametrize("annotation, name", [(str, "seed"), (int, "amp")])
def test_real_framework_flags_clash_too(annotation, name):
    from aigbench.engine.args import robust_parser, test_parser, train_parser

    for make in (train_parser, test_parser, robust_parser):
        with pytest.raises(ConfigError, match=f"parameter '{name}' .* framework flag --{name}"):
            add_signature_flags(make(), model_with(name, annotation))
        add_signature_flags(make(), model_with("image_size", int))  # the documented sharing still works


def test_parameter_named_help_raises():
    class Helpful:
        def __init__(self, help: str = ""):
            pass

    with pytest.raises(ConfigError, match=r"model Helpful: parameter 'help' clashes with .*-h/--help.*rename"):
        add_signature_flags(argparse.ArgumentParser(), Helpful)


def test_parameter_named_h_is_its_own_flag(capsys):
    # argparse accepts --h next to -h/--help: the two option strings differ, so this is no clash.
    class Short:
        def __init__(self, h: int = 1):
            pass

    parser = argparse.ArgumentParser(allow_abbrev=False)
    add_signature_flags(parser, Short)
    assert kwargs_from_args(Short, parser.parse_args(["--h", "3"])) == {"h": 3}
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["-h"])
    assert info.value.code == 0 and "--h H" in capsys.readouterr().out


def test_option_string_taken_by_another_flag_raises():
    class Sneaky:
        def __init__(self, out: str = "", verbose: bool = False):
            pass

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", dest="output_dir")
    with pytest.raises(ConfigError, match=r"parameter 'out' cannot become the flag --out .*rename the parameter"):
        add_signature_flags(parser, Sneaky)
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-verbose", dest="quiet", action="store_true")
    with pytest.raises(ConfigError, match=r"parameter 'verbose' cannot become the flag --verbose"):
        add_signature_flags(parser, Sneaky)
