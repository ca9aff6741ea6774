"""mdlearn.errors: every exception in one module, and one type for one kind of mistake everywhere."""

import importlib
import pkgutil

import numpy as np
import pytest

import mdlearn
from mdlearn import errors
from mdlearn.errors import MdlearnError, UsageError


def test_every_exception_class_lives_in_mdlearn_errors():
    stray = []
    for info in pkgutil.walk_packages(mdlearn.__path__, "mdlearn."):
        if info.name.endswith("__main__"):
            continue
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if (info.name != "mdlearn.errors" and isinstance(obj, type) and issubclass(obj, BaseException)
                    and obj.__module__ == info.name):
                stray.append(f"{info.name}.{name}")
    assert stray == []
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), MdlearnError)
    from mdlearn.losses import NonFiniteLossError

    assert NonFiniteLossError is errors.NonFiniteLossError


def test_usage_errors_are_value_errors_for_old_callers():
    assert issubclass(UsageError, ValueError) and issubclass(errors.FormatError, ValueError)


def _kinect_value():
    from mdlearn.data.kinect import register_depth

    register_depth(np.full((120, 160), 700, np.uint16), value="metres")


def _prepare_value(tmp_path):
    from mdlearn.data.nyu_prepare import prepare_nyu_raw

    prepare_nyu_raw(tmp_path, tmp_path / "out", value="metres")


def test_the_same_wrong_argument_raises_the_same_type(tmp_path):
    # the registration's value option, checked by the sensor module and by the prepare job
    for call in (_kinect_value, lambda: _prepare_value(tmp_path)):
        with pytest.raises(UsageError, match="value must be 'rgb' or 'toolbox', got 'metres'"):
            call()


@pytest.mark.parametrize("call,msg", [
    ("kinect_aspect", "does not have the aspect ratio of 640x480"),
    ("kd_pixel", "unknown pixel rule 'middle'"),
    ("kd_rule", "unknown conflict rule 'first'"),
    ("kd_direction", "direction must be 'clockwise' or 'counterclockwise'"),
    ("stationary", "unknown stationary rule 'parked'"),
    ("oxts_shape", "OXTS packets"),
    ("room_scale", "scale must be positive"),
    ("device", "device 'gpu' is not a device"),
])
def test_impossible_arguments_are_usage_errors(call, msg):
    from mdlearn.data import kitti
    from mdlearn.data import kitti_depth as kd
    from mdlearn.data.kinect import NYU_KINECT
    from mdlearn.runtime import default_device

    calls = {
        "kinect_aspect": lambda: NYU_KINECT.for_size(640, 640),
        "kd_pixel": lambda: kd.project_scan(np.zeros((1, 4), np.float32), _calib(), size=(8, 6), pixel="middle"),
        "kd_rule": lambda: kd.resolve_conflicts(np.array([0]), np.array([1.0]), rule="first"),
        "kd_direction": lambda: kd.sweep_time_offsets(np.zeros((1, 4), np.float32), direction="up"),
        "stationary": lambda: kitti.stationary_mask(np.zeros((2, len(kitti.OXTS_FIELDS))), rule="parked"),
        "oxts_shape": lambda: kitti.stationary_mask(np.zeros((2, 3))),
        "room_scale": lambda: _room().scaled(-1.0),
        "device": lambda: default_device("gpu"),
    }
    with pytest.raises(UsageError, match=msg):
        calls[call]()


def _calib():
    from mdlearn.data.kitti import Calibration

    P = np.hstack([np.diag([5.0, 5.0, 1.0]), np.zeros((3, 1))])
    return Calibration({c: P for c in range(4)}, np.eye(3), np.eye(4), {c: (8, 6) for c in range(4)})


def _room():
    from mdlearn.synthetic.indoor import sample_room

    return sample_room(0, 0)
