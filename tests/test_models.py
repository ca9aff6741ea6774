"""mdlearn.models: the coarse and fine networks of Fig. 1 (Chapters 6-7)."""

import pytest
import torch

from mdlearn.errors import MdlearnError, UsageError
from mdlearn.models import (COARSE_CONV_KEYS, IMAGENET_MEAN, IMAGENET_STD, build_model, canonical_description,
                            count_parameters, layer_table, load_pretrained_coarse, model_from_description)


def _meta_model(dataset, size=None, **kw):
    with torch.device("meta"):
        return build_model(dataset, size, **kw)


@pytest.mark.parametrize("dataset, out_wh, fc_in, coarse5", [
    ("nyu", (74, 55), 12288, (256, 6, 8)),
    ("kitti", (142, 27), 17 * 4 * 256, (256, 4, 17)),
])
def test_paper_sizes(dataset, out_wh, fc_in, coarse5):
    model = _meta_model(dataset).eval()
    w, h = model.config.input_size
    x = torch.zeros(2, 3, h, w, device="meta")
    assert model.coarse.fc6.in_features == fc_in
    assert model.coarse.fc7.out_features == out_wh[0] * out_wh[1]
    assert tuple(model.coarse.features(x).shape) == (2, *coarse5)
    assert tuple(model(x, scale="coarse").shape) == (2, 1, out_wh[1], out_wh[0])
    assert tuple(model(x).shape) == (2, 1, out_wh[1], out_wh[0])


def test_paper_sizes_in_the_layer_table():
    rows = {r["module"]: r for r in layer_table(_meta_model("nyu"))}
    # the sizes printed in Fig. 1 (width x height)
    assert rows["coarse.pool1"]["size"] == "37x27"
    assert rows["coarse.pool2"]["size"] == "18x13"
    assert rows["coarse.conv4"]["shape"] == (384, 13, 18)
    assert rows["coarse.pool5"]["size"] == "8x6"
    assert rows["coarse.fc6"]["params"] == 12288 * 4096 + 4096
    assert rows["coarse.unflatten"]["size"] == "74x55"
    assert rows["fine.pool1"]["shape"] == (63, 55, 74)
    assert rows["fine.concat"]["shape"] == (64, 55, 74)
    assert rows["fine.conv4"]["shape"] == (1, 55, 74)
    assert rows["fine.conv4"]["receptive_field"] == 43 and rows["fine.conv4"]["stride"] == 4
    assert rows["coarse.pool5"]["stride"] == 32


def test_layer_table_counts_every_parameter_once():
    model = build_model("nyu", (152, 114), fc_hidden=64)
    rows = layer_table(model, (152, 114))
    assert sum(r["params"] for r in rows) == count_parameters(model)
    assert rows[0]["layer"] == "input" and rows[-1]["layer"] == "Fine 4"
    with pytest.raises(UsageError, match="differs from the model"):
        layer_table(model, (304, 228))


def test_fine_pool_3_gives_the_45_pixel_receptive_field_at_the_same_size():
    model = _meta_model("nyu", fine_pool=3)
    rows = {r["module"]: r for r in layer_table(model)}
    assert rows["fine.conv4"]["receptive_field"] == 45
    assert rows["fine.conv4"]["size"] == "74x55"


@pytest.mark.parametrize("dataset, size, out_wh", [("nyu", (152, 114), (36, 26)), ("kitti", (288, 86), (70, 12))])
def test_small_input_sizes_follow_from_the_arithmetic(dataset, size, out_wh):
    model = build_model(dataset, size, fc_hidden=32).eval()
    assert model.config.output_size() == out_wh
    x = torch.rand(2, 3, size[1], size[0])
    assert tuple(model(x).shape) == (2, 1, out_wh[1], out_wh[0])
    assert tuple(model(x, scale="coarse").shape) == (2, 1, out_wh[1], out_wh[0])
    assert model.coarse.fc6.in_features == 256 * model.config.coarse_feature_size()[0] * model.config.coarse_feature_size()[1]


def test_output_grid_is_centred_on_the_fine_receptive_fields():
    model = _meta_model("nyu")
    rows, cols = model.output_grid()
    assert rows[:3].tolist() == [5, 9, 13] and len(rows) == 55 and len(cols) == 74
    assert cols[-1] == 5 + 4 * 73 < 304
    # KITTI: the fine network sees the bottom 116 of 172 rows
    k = _meta_model("kitti")
    krows, kcols = k.output_grid()
    assert krows[0] == 172 - 116 + 5 and krows[-1] < 172 and len(kcols) == 142


def test_bad_sizes_and_arguments_are_usage_errors():
    with pytest.raises(UsageError, match="too small"):
        build_model("nyu", (60, 40))
    with pytest.raises(UsageError, match="dataset"):
        build_model("make3d")
    with pytest.raises(UsageError, match="fine_pool"):
        build_model("nyu", fine_pool=4)
    model = build_model("nyu", (152, 114), fc_hidden=16)
    with pytest.raises(UsageError, match=r"expected images \(B, 3, 114, 152\)"):
        model(torch.zeros(1, 3, 228, 304))
    with pytest.raises(UsageError, match="scale"):
        model(torch.zeros(1, 3, 114, 152), scale="medium")


def test_the_fine_forward_sends_no_gradient_into_the_coarse_network():
    model = build_model("nyu", (152, 114), fc_hidden=16)
    model(torch.rand(2, 3, 114, 152)).sum().backward()
    assert all(p.grad is None for p in model.coarse.parameters())
    assert all(p.grad is not None for p in model.fine.parameters())


def test_frozen_coarse_stays_in_eval_mode():
    model = build_model("nyu", (152, 114), fc_hidden=16)
    model.freeze_coarse(True)
    model.train()
    assert model.fine.training and not model.coarse.training
    assert not any(p.requires_grad for p in model.coarse.parameters())
    model.freeze_coarse(False)
    model.train()
    assert model.coarse.training


def test_description_round_trips():
    model = build_model("kitti", (288, 86), fine_pool=3, dropout=0.3, fc_hidden=16)
    again = model_from_description(model.describe())
    assert again.describe() == model.describe()
    assert model.describe()["input_size"] == [288, 86]


def test_input_is_normalised_per_channel_before_both_stacks():
    torch.manual_seed(0)
    model = build_model("nyu", (152, 114), fc_hidden=16, input_mean=(0.5, 0.25, 0.75), input_std=(2.0, 4.0, 0.5)).eval()
    img = torch.rand(2, 3, 114, 152)
    mean = torch.tensor([0.5, 0.25, 0.75]).view(1, 3, 1, 1)
    std = torch.tensor([2.0, 4.0, 0.5]).view(1, 3, 1, 1)
    seen = (img - mean) / std
    assert torch.allclose(model.normalise(img), seen)
    coarse = model.coarse(seen)
    assert torch.allclose(model(img, scale="coarse"), coarse, atol=1e-6)
    assert torch.allclose(model(img), model.fine(model.fine_input(seen), coarse), atol=1e-6)
    # the statistics are configuration, not weights: not in the state_dict, in the description
    assert not any("input_" in k for k in model.state_dict())
    assert model.describe()["input_std"] == [2.0, 4.0, 0.5]
    default = build_model("nyu", (152, 114), fc_hidden=16)
    assert default.describe()["input_mean"] == list(IMAGENET_MEAN)
    assert default.describe()["input_std"] == list(IMAGENET_STD)
    with pytest.raises(UsageError, match="input_mean / input_std"):
        build_model("nyu", input_std=(1.0, 0.0, 1.0))
    with pytest.raises(UsageError, match="input_mean / input_std"):
        build_model("nyu", input_mean=(0.5, 0.5))


def test_descriptions_from_before_normalisation_mean_raw_input():
    old = build_model("nyu", (152, 114), fc_hidden=16).describe()
    del old["input_mean"], old["input_std"]
    rebuilt = model_from_description(old)
    assert rebuilt.describe() == canonical_description(old)
    img = torch.rand(1, 3, 114, 152)
    assert torch.equal(rebuilt.normalise(img), img)


def test_load_pretrained_coarse(tmp_path):
    model = build_model("nyu", (152, 114), fc_hidden=16)
    donor = build_model("nyu", (304, 228), fc_hidden=16)  # conv shapes do not depend on the input size
    path = tmp_path / "alexnet_like.pt"
    torch.save({k: v for k, v in donor.coarse.state_dict().items() if k in COARSE_CONV_KEYS}, path)
    fc6_before = model.coarse.fc6.weight.clone()
    load_pretrained_coarse(model, path)
    for i in range(1, 6):
        assert torch.equal(getattr(model.coarse, f"conv{i}").weight, getattr(donor.coarse, f"conv{i}").weight)
    assert torch.equal(model.coarse.fc6.weight, fc6_before)
    # a "coarse." prefix is accepted
    torch.save({f"coarse.{k}": v for k, v in donor.coarse.state_dict().items() if k in COARSE_CONV_KEYS}, path)
    load_pretrained_coarse(model, path)


def test_load_pretrained_coarse_names_every_mismatch_and_loads_nothing(tmp_path):
    model = build_model("nyu", (152, 114), fc_hidden=16)
    state = {k: v.clone() + 1 for k, v in model.coarse.state_dict().items() if k in COARSE_CONV_KEYS}
    state["conv2.weight"] = torch.zeros(256, 48, 5, 5)  # AlexNet's grouped conv2
    del state["conv5.bias"]
    state["fc8.weight"] = torch.zeros(1000, 4096)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(MdlearnError) as e:
        load_pretrained_coarse(model, path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    assert "missing conv5.bias" in msg and "unexpected fc8.weight" in msg and "conv2.weight has shape (256, 48, 5, 5)" in msg
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a tensor file")
    with pytest.raises(MdlearnError, match="garbage.pt: not a readable torch state_dict"):
        load_pretrained_coarse(model, garbage)
    with pytest.raises(MdlearnError, match="no such"):
        load_pretrained_coarse(model, tmp_path / "absent.pt")
