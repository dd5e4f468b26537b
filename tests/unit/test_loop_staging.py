"""Staged evaluation's two decisions: which problems come first, and whether a version is worth the rest."""

from __future__ import annotations

from sica.loop.staging import first_stage, promising


def test_first_stage_spreads_over_the_mix_and_is_stable():
    mix = [f"humaneval/{i}" for i in range(6)] + [f"bugfix/{i}" for i in range(4)]
    assert first_stage(mix, 4) == ["humaneval/0", "humaneval/2", "humaneval/5", "bugfix/1"]
    assert first_stage(mix, 4) == first_stage(list(mix), 4)
    assert first_stage(mix, 20) == mix


def test_promising_when_it_cannot_be_told_worse():
    reference = {"a": 0.8, "b": 0.8, "c": 0.8, "d": 0.8}
    assert promising({"a": 0.9, "b": 0.7, "c": 0.8, "d": 0.6}, reference)  # mean 0.75, interval reaches 0.8
    assert not promising({"a": 0.1, "b": 0.1, "c": 0.2, "d": 0.1}, reference)
    assert promising({"a": 0.8}, reference) and not promising({"a": 0.7}, reference)  # one problem: no interval
    assert promising({"a": 0.0}, None) and promising({"x": 0.0}, reference)  # nothing to compare with
