import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from mdlearn.errors import FormatError
from mdlearn.data.formats import (read_depth_png_kitti, read_depth_png_mm, read_rgb, write_depth_png_kitti,
                                  write_depth_png_mm, write_rgb)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float32, (7, 9), elements=st.floats(0.0, 65.0, width=32)))
def test_depth_png_round_trip_within_half_a_millimetre(tmp_path_factory, depth):
    path = tmp_path_factory.mktemp("d") / "d.png"
    write_depth_png_mm(path, depth)
    back = read_depth_png_mm(path)
    assert back.dtype == np.float32 and back.shape == depth.shape
    assert np.abs(back - depth).max() <= 0.0005 + 1e-6
    assert ((back == 0) == (np.rint(depth * 1000) == 0)).all()  # 0 stays "invalid"


def test_depth_png_is_uint16_millimetres(tmp_path):
    write_depth_png_mm(tmp_path / "d.png", np.array([[0.0, 1.234], [10.0, 0.5]], np.float32))
    raw = np.array(Image.open(tmp_path / "d.png"))
    assert raw.dtype == np.uint16 and raw.tolist() == [[0, 1234], [10000, 500]]


@pytest.mark.parametrize("bad,msg", [
    (np.array([[np.nan, 1.0]]), "NaN"),
    (np.array([[-1.0, 1.0]]), "negative"),
    (np.array([[70.0, 1.0]]), "exceeds"),
    (np.ones(3), "2-D"),
])
def test_depth_writer_rejects_bad_values_naming_the_file(tmp_path, bad, msg):
    with pytest.raises(FormatError, match=msg) as e:
        write_depth_png_mm(tmp_path / "bad.png", bad)
    assert "bad.png" in str(e.value)


def test_depth_reader_errors_name_the_file(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        read_depth_png_mm(tmp_path / "missing.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(FormatError, match=r"rgb\.png.*16-bit"):
        read_depth_png_mm(tmp_path / "rgb.png")
    write_depth_png_mm(tmp_path / "ok.png", np.full((4, 4), 2.0))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"trunc\.png"):
        read_depth_png_mm(tmp_path / "trunc.png")
    with pytest.raises(FormatError, match="plausible"):
        read_depth_png_mm(tmp_path / "ok.png", max_depth=1.0)


def test_rgb_round_trip_png_exact_and_jpg_close(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    write_rgb(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(read_rgb(tmp_path / "a.png"), rgb)
    smooth = np.repeat(np.linspace(0, 255, 24, dtype=np.uint8)[None, :, None], 16, 0).repeat(3, 2)
    write_rgb(tmp_path / "a.jpg", smooth)
    assert np.abs(read_rgb(tmp_path / "a.jpg").astype(int) - smooth).mean() < 3
    with pytest.raises(FormatError, match="suffix"):
        write_rgb(tmp_path / "a.bmp", rgb)
    with pytest.raises(FormatError, match="uint8"):
        write_rgb(tmp_path / "b.png", rgb.astype(np.float32))


def test_read_text_errors_name_the_file_and_what_it_is(tmp_path):
    from mdlearn.data.formats import read_text

    with pytest.raises(FormatError, match=r"calib\.txt: no such calibration file"):
        read_text(tmp_path / "calib.txt", "calibration file")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(FormatError, match=r"bin\.txt: not a readable list file"):
        read_text(tmp_path / "bin.txt", "list file")
    (tmp_path / "ok.txt").write_text("a b\n")
    assert read_text(tmp_path / "ok.txt") == "a b\n"


def test_the_two_depth_encodings_refuse_each_others_files(tmp_path):
    """A KITTI map read as millimetres would give 85 m as 21.76 m; a millimetre map read as KITTI
    would give 10 m as 39 m. mdlearn's writers record the encoding, and each reader refuses the other's."""
    d = np.array([[0.0, 85.0], [2.5, 40.0]], np.float32)
    write_depth_png_kitti(tmp_path / "kitti.png", d)
    write_depth_png_mm(tmp_path / "mm.png", d / 10)
    with pytest.raises(FormatError, match=r"kitti\.png: this depth PNG is .*KITTI.*read_depth_png_kitti"):
        read_depth_png_mm(tmp_path / "kitti.png")
    with pytest.raises(FormatError, match=r"mm\.png: this depth PNG is .*millimetres"):
        read_depth_png_kitti(tmp_path / "mm.png")
    np.testing.assert_allclose(read_depth_png_kitti(tmp_path / "kitti.png"), d, atol=1 / 512)
    np.testing.assert_allclose(read_depth_png_mm(tmp_path / "mm.png"), d / 10, atol=5e-4)
    # a file without the record (the official benchmark's, BTS's) is read by either: the Dataset checks the range
    Image.fromarray(np.rint(d * 256).astype(np.uint16)).save(tmp_path / "plain.png")
    assert read_depth_png_mm(tmp_path / "plain.png").max() == pytest.approx(21.76)
