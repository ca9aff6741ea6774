"""mdlearn.data.crops: the one definition of every evaluation crop, checked against the public numbers."""

import numpy as np
import pytest

from mdlearn import evaluation
from mdlearn.data import crops
from mdlearn.data.crops import (CROPS, KITTI_CROP_EIGEN, KITTI_CROP_GARG, NYU_CROP_EIGEN, NYU_CROP_TOOLBOX,
                                FractionCrop, PixelCrop, get_crop)
from mdlearn.errors import UsageError


def test_nyu_crops_in_both_conventions():
    # BTS & co. slice [45:471, 41:601] in Python; the toolbox writes mask(45:471, 41:601) in MATLAB
    assert NYU_CROP_EIGEN.bounds((480, 640)) == (45, 471, 41, 601)
    assert NYU_CROP_TOOLBOX.bounds((480, 640)) == (44, 471, 40, 601)
    common, toolbox = NYU_CROP_EIGEN.mask(480, 640), NYU_CROP_TOOLBOX.mask(480, 640)
    assert common.sum() == 426 * 560 and toolbox.sum() == 427 * 561
    assert (common <= toolbox).all()  # the toolbox mask is the common one plus a row and a column
    assert toolbox[44, 40] and not common[44, 40] and common[45, 41] and not common[471, 601]
    assert not toolbox[471, 601] and toolbox[470, 600]


def test_matlab_ranges_are_converted_once():
    # MATLAB a:b (1-based, inclusive) selects the same elements as Python [a-1:b]
    a = np.arange(480 * 640).reshape(480, 640)
    matlab_rows = np.arange(45, 471 + 1) - 1  # the 1-based indices 45..471, as 0-based positions
    matlab_cols = np.arange(41, 601 + 1) - 1
    rows, cols = NYU_CROP_TOOLBOX.slices(480, 640)
    assert np.array_equal(a[rows, cols], a[np.ix_(matlab_rows, matlab_cols)])


def test_pixel_crops_refuse_other_sizes():
    with pytest.raises(UsageError, match="nyu_eigen is defined for 480x640 images, got 240x320"):
        NYU_CROP_EIGEN.mask(240, 320)
    with pytest.raises(UsageError, match="at least 2 dimensions"):
        NYU_CROP_EIGEN.bounds((640,))
    with pytest.raises(UsageError, match="do not fit a 4x4 image"):
        PixelCrop("bad", 0, 5, 0, 2, (4, 4))
    with pytest.raises(UsageError, match="0 <= start < end <= 1"):
        FractionCrop("bad", 0.5, 0.4, 0.0, 1.0)


def test_kitti_crops_match_the_published_pixels():
    assert KITTI_CROP_GARG.slices(375, 1242) == (slice(153, 371), slice(44, 1197))
    assert KITTI_CROP_EIGEN.slices(375, 1242) == (slice(124, 342), slice(44, 1197))
    assert KITTI_CROP_GARG.mask(375, 1242).sum() == 218 * 1153
    # fractions truncate on every size, as evaluate_kitti.py does
    assert KITTI_CROP_GARG.bounds((1, 352, 1216)) == (int(0.40810811 * 352), int(0.99189189 * 352),
                                                      int(0.03594771 * 1216), int(0.96405229 * 1216))


def test_one_definition_used_by_the_protocols():
    assert set(CROPS) == {"nyu_eigen", "nyu_toolbox", "garg", "eigen"}
    assert get_crop("garg") is KITTI_CROP_GARG
    with pytest.raises(UsageError, match="unknown crop 'nope'"):
        get_crop("nope")
    assert evaluation.nyu_eigen.crop is NYU_CROP_EIGEN and evaluation.nyu_toolbox.crop is NYU_CROP_TOOLBOX
    assert evaluation.nyu_paper.crop is NYU_CROP_TOOLBOX
    assert evaluation.kitti_garg.crop is KITTI_CROP_GARG and evaluation.kitti_eigen.crop is KITTI_CROP_EIGEN
    # no second copy of the numbers left in the data modules
    from mdlearn.data import kitti, nyu
    for mod in (kitti, nyu):
        assert not [n for n in vars(mod) if "CROP" in n.upper()], mod.__name__


def test_protocol_masks_equal_the_crop_masks():
    gt = np.ones((480, 640))
    assert np.array_equal(evaluation.nyu_toolbox.valid_mask(gt), NYU_CROP_TOOLBOX.mask(480, 640))
    assert np.array_equal(evaluation.kitti_garg.valid_mask(np.ones((375, 1242))), KITTI_CROP_GARG.mask(375, 1242))
