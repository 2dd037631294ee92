import pytest
import torch

from aigbench.engine.contract import NonFiniteLossError, OutputContractError, check_finite_loss, validate_output


def good(b=4):
    return {
        "backward_loss": torch.tensor(0.5),
        "pred_label": torch.rand(b),
        "visual_loss": {"bce": torch.tensor(0.5), "other": 1.0},
        "visual_image": {"x": torch.rand(b, 3, 8, 8), "map": torch.rand(1, 8, 8)},
    }


def test_valid_output_passes():
    validate_output(good(), 4)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda o: o.pop("visual_image"), r"missing key\(s\) \['visual_image'\]"),
        (lambda o: o.update(backward_loss=torch.rand(4)), r"\['backward_loss'\] must be a scalar.*got shape \[4\]"),
        (
            lambda o: o.update(pred_label=torch.rand(4, 1)),
            r"\['pred_label'\] must have shape \[4\].*got shape \[4, 1\].*squeeze",
        ),
        (lambda o: o.update(pred_label=torch.rand(3)), r"\['pred_label'\] must have shape \[4\].*got shape \[3\]"),
        (lambda o: o.update(pred_label=torch.randn(4) * 10), r"\['pred_label'\] must be probabilities.*sigmoid"),
        (lambda o: o.update(pred_label=torch.ones(4, dtype=torch.long)), r"float tensor"),
        (
            lambda o: o.update(visual_loss={"v": torch.rand(2)}),
            r"\['visual_loss'\]\['v'\] must be a scalar, got shape \[2\]",
        ),
        (lambda o: o.update(visual_loss={"v": "x"}), r"\['visual_loss'\]\['v'\] must be a number"),
        (
            lambda o: o.update(visual_image={"m": torch.rand(4, 8, 8, 3)}),
            r"\['visual_image'\]\['m'\].*got shape \[4, 8, 8, 3\]",
        ),
    ],
)
def test_each_violation_names_key_and_shapes(mutate, message):
    out = good()
    mutate(out)
    with pytest.raises(OutputContractError, match=message):
        validate_output(out, 4, "MyModel")


def test_not_a_dict():
    with pytest.raises(OutputContractError, match="must be a dict"):
        validate_output(torch.rand(4), 4)


def test_non_finite_loss():
    check_finite_loss(torch.tensor(1.0), "here")
    with pytest.raises(NonFiniteLossError, match="nan at epoch 3, step 7"):
        check_finite_loss(torch.tensor(float("nan")), "epoch 3, step 7")
    with pytest.raises(NonFiniteLossError, match="inf"):
        check_finite_loss(torch.tensor(float("inf")), "x")
