"""Synthetic worlds rendered in the real datasets' formats, with exactly known ground truth.

Chapter 1 introduces the indoor world (:mod:`mdlearn.synthetic.indoor`) and its dataset writer
(:mod:`mdlearn.synthetic.nyu_sync`).
"""

from .indoor import Room, View, look_pose, render, render_view, sample_pose, sample_room

__all__ = ["Room", "View", "look_pose", "render", "render_view", "sample_pose", "sample_room"]
