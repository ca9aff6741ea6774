"""mdlearn.inference and the predict / export commands: depth for anyone's photos (Chapter 9)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mdlearn.cli import main
from mdlearn.errors import FormatError, MdlearnError, UsageError
from mdlearn.inference import (EXPORT_FORMATS, Prediction, checkpoint_intrinsics, export_model, load_image,
                               parse_intrinsics, predict_image, write_prediction)
from mdlearn.models import build_model
from mdlearn.runtime import seed_everything
from mdlearn.train import Trainer, TrainConfig, make_optimizer

SIZE = (96, 72)  # (width, height) of the small test network


def tiny(dataset="nyu", size=SIZE):
    seed_everything(0)
    return build_model(dataset, size, fc_hidden=32).eval()


class _Known(torch.nn.Module):
    """Stands in for a network: log depth = a * (input column of the unit) + b * (input row)."""

    def __init__(self, net, a=0.01, b=0.0):
        super().__init__()
        self.net, self.config, self.a, self.b = net, net.config, a, b

    def output_grid(self):
        return self.net.output_grid()

    def forward(self, image, scale="fine"):
        rows, cols = self.net.output_grid()
        grid = self.a * cols[None, :].double() + self.b * rows[:, None].double()
        return grid.float()[None, None].expand(image.shape[0], 1, -1, -1)


def test_parse_intrinsics_accepts_four_numbers_and_says_what_it_expects():
    assert parse_intrinsics("518.9, 519.5,325.6,253.7") == (518.9, 519.5, 325.6, 253.7)
    for bad in ("1,2,3", "a,b,c,d", "0,1,2,3", "1,2,3,4,5", "nan,1,1,1"):
        with pytest.raises(UsageError, match="fx,fy,cx,cy"):
            parse_intrinsics(bad)


def test_load_image_converts_and_names_the_bad_file(tmp_path):
    Image.fromarray(np.full((5, 7), 9, np.uint8)).save(tmp_path / "grey.png")
    img = load_image(tmp_path / "grey.png")
    assert img.shape == (5, 7, 3) and img.dtype == np.uint8 and (img == 9).all()
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    with pytest.raises(FormatError, match="junk.jpg: not a readable image"):
        load_image(tmp_path / "junk.jpg")
    with pytest.raises(UsageError, match="missing.png: no such image file"):
        load_image(tmp_path / "missing.png")


def test_the_output_grid_lands_where_its_units_look():
    # log depth linear in the input column: after resizing back, a photo pixel gets exactly the
    # value of its position in the input (linear interpolation of a linear function)
    net = tiny()
    known = _Known(net, a=0.01, b=0.02)
    H, W = 150, 200
    pred = predict_image(known, np.zeros((H, W, 3), np.uint8))
    assert pred.depth.shape == (H, W) and (pred.depth > 0).all()
    rows, cols = (t.numpy() for t in net.output_grid())
    win, hin = SIZE
    x = (np.arange(W) + 0.5) * win / W - 0.5  # input column of each photo column
    y = (np.arange(H) + 0.5) * hin / H - 0.5
    inner_x = (x >= cols[0]) & (x <= cols[-1])
    inner_y = (y >= rows[0]) & (y <= rows[-1])
    expect = np.exp(0.01 * x[None, inner_x] + 0.02 * y[inner_y, None])
    np.testing.assert_allclose(pred.depth[np.ix_(inner_y, inner_x)], expect, rtol=1e-5)
    # the border band takes the nearest unit's value
    np.testing.assert_allclose(pred.depth[0, 0], np.exp(0.01 * cols[0] + 0.02 * rows[0]), rtol=1e-5)


def test_kitti_rows_the_fine_network_never_sees_get_no_depth():
    net = tiny("kitti", (288, 86))
    H = 90
    pred = predict_image(net, np.zeros((H, 300, 3), np.uint8))
    first = net.config.input_size[1] - net.config.fine_rows
    # a photo row is seen when its centre lies below the top edge of input row `first`
    top = (np.arange(H) + 0.5) * 86 / H - 0.5 < first - 0.5
    assert (pred.depth[top] == 0).all() and (pred.depth[~top] > 0).all()


def test_intrinsics_given_or_the_training_camera_rescaled():
    net = tiny()
    img = np.zeros((144, 192, 3), np.uint8)  # twice the input size
    assert predict_image(net, img, intrinsics=(1, 2, 3, 4)).intrinsics == (1, 2, 3, 4)
    k = predict_image(net, img, input_intrinsics=(80.0, 81.0, 47.5, 35.5)).intrinsics
    assert k == pytest.approx((160.0, 162.0, 95.5, 71.5))  # pixel centres: (c + 0.5) * 2 - 0.5
    assert np.isnan(predict_image(net, img).intrinsics).all()


def _prediction(depth, k=(10.0, 10.0, 2.0, 1.5)):
    h, w = depth.shape
    img = np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)
    return Prediction(depth=depth.astype(np.float32), image=img, intrinsics=k, source="photo.jpg")


def test_written_outputs_round_trip_and_are_never_replaced_silently(tmp_path):
    from plyfile import PlyData

    depth = np.array([[1.0, 2.5, 0.0, 3.0], [0.5, 70.0, 1.234, 2.0], [4.0, 4.0, 4.0, 4.0]])
    pred = _prediction(depth)
    out = write_prediction(pred, tmp_path, "photo")
    png = np.asarray(Image.open(out["png"]))
    assert png.dtype == np.uint16
    np.testing.assert_array_equal(png, np.where(depth > 65.535, 0, np.round(depth * 1000)))
    assert out["clipped"] == 1
    np.testing.assert_array_equal(np.load(out["npy"]), depth.astype(np.float32))
    assert Image.open(out["preview"]).size[0] > 400
    v = PlyData.read(str(out["ply"]))["vertex"]
    assert len(v) == int((depth > 0).sum())
    np.testing.assert_allclose(np.sort(v["z"]), np.sort(depth[depth > 0]).astype(np.float32))
    i = int(np.argmax(v["z"]))  # the 70 m pixel is at row 1, column 1
    assert v["x"][i] == pytest.approx((1 - 2.0) / 10 * 70) and v["y"][i] == pytest.approx((1 - 1.5) / 10 * 70)
    assert (v["red"][i], v["green"][i], v["blue"][i]) == tuple(pred.image[1, 1])
    before = out["npy"].read_bytes()
    with pytest.raises(MdlearnError, match="exists; refusing to replace"):
        write_prediction(_prediction(depth * 2), tmp_path, "photo")
    assert out["npy"].read_bytes() == before
    write_prediction(_prediction(depth * 2), tmp_path, "photo", overwrite=True)
    assert np.load(out["npy"])[0, 0] == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["photo.depth.png", "photo.depth.npy", "photo.preview.png", "photo.ply"])  # no temporary left


def test_no_camera_no_point_cloud(tmp_path):
    out = write_prediction(_prediction(np.ones((3, 4)), k=(float("nan"),) * 4), tmp_path, "p")
    assert "ply" not in out and not (tmp_path / "p.ply").exists()


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_exports_match_pytorch_in_their_own_runtime(tmp_path, fmt):
    net = tiny()
    path = tmp_path / f"net.{fmt}"
    report = export_model(net, path, fmt)
    assert report["max_abs_diff"] < 1e-4 and path.is_file()
    x = torch.rand(3, 3, SIZE[1], SIZE[0])  # another batch size than the export's example
    with torch.no_grad():
        ref = net(x).numpy()
    if fmt == "onnx":
        import onnxruntime as ort

        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    else:
        got = torch.jit.load(str(path))(x).detach().numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4)
    with pytest.raises(MdlearnError, match="exists"):
        export_model(net, path, fmt)
    with pytest.raises(UsageError, match="unknown export format"):
        export_model(net, tmp_path / "x", "tflite")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real (tiny, briefly trained) checkpoint that records its training camera."""
    from test_train import RandomDepthDataset

    from mdlearn.train import make_loader

    path = tmp_path_factory.mktemp("ckpt") / "coarse.pt"
    net = tiny()
    net.train()
    cfg = TrainConfig(stage="coarse", samples=8, batch_size=4, progress=False, checkpoint_path=str(path))
    Trainer(net, make_optimizer(net, "coarse"), make_loader(RandomDepthDataset(8), 4), cfg,
            meta={"input_intrinsics": [86.4, 86.4, 47.5, 35.5]}).fit()
    return path


def test_predict_command_writes_every_output_and_names_bad_inputs(tmp_path, checkpoint, capsys):
    from mdlearn.train import read_checkpoint

    assert checkpoint_intrinsics(read_checkpoint(checkpoint)) == (86.4, 86.4, 47.5, 35.5)
    photos = []
    for i, size in enumerate([(64, 48), (90, 120)]):
        photos.append(tmp_path / f"p{i}.png")
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (*size, 3), dtype=np.uint8)).save(photos[-1])
    out = tmp_path / "out"
    assert main(["predict", *map(str, photos), "--checkpoint", str(checkpoint), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "metres only for scenes and cameras like the training data" in text
    assert np.load(out / "p1.depth.npy").shape == (90, 120)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"p{i}.{e}" for i in range(2) for e in ("depth.png", "depth.npy", "preview.png", "ply"))
    # bad inputs: one line, nothing written
    (tmp_path / "bad.png").write_bytes(b"\x89PNG but not really")
    for argv, status, fragment in [
        ([str(tmp_path / "bad.png")], 1, "bad.png: not a readable image"),
        ([str(tmp_path / "none.png")], 2, "none.png: no such image file"),
        ([str(photos[0]), "--intrinsics", "1,2"], 2, "--intrinsics must be four numbers"),
        ([str(photos[0])], 1, "exists; refusing to replace"),
    ]:
        assert main(["predict", *argv, "--checkpoint", str(checkpoint), "--out", str(out), "--quiet"]) == status
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], err
    assert main(["predict", str(photos[0]), "--checkpoint", str(tmp_path / "p0.png"), "--out",
                 str(tmp_path / "o2")]) == 1
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_export_command(tmp_path, checkpoint, capsys):
    out = tmp_path / "net.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    assert "its runtime matches PyTorch within" in capsys.readouterr().out and out.is_file()
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
