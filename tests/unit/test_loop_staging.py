"""Staged evaluation's decisions: which problems each look has seen, and whether a version is worth more."""

from __future__ import annotations

from sica.loop.comparison import paired_difference
from sica.loop.staging import dgm_look, sequential_look, spread, stages


def test_spread_covers_the_mix_and_is_stable():
    mix = [f"humaneval/{i}" for i in range(6)] + [f"bugfix/{i}" for i in range(4)]
    assert spread(mix, 4) == ["humaneval/0", "humaneval/2", "humaneval/5", "bugfix/1"]
    assert spread(mix, 4) == spread(list(mix), 4)
    assert spread(mix, 20) == mix


def test_stages_grow_nested_and_end_with_the_whole_mix():
    mix = [f"p{i:02}" for i in range(40)]
    looks = stages(mix, [5, 15])
    assert [len(look) for look in looks] == [5, 15, 40]
    assert set(looks[0]) < set(looks[1]) < set(looks[2])
    assert looks[-1] == mix and all(look == [p for p in mix if p in look] for look in looks)  # in the mix's order
    assert stages(mix[:10], [5, 15]) == [spread(mix[:10], 5), mix[:10]]  # a stage as large as the mix is the mix
    assert stages(mix[:3], [5, 15]) == [mix[:3]]


def test_paired_difference_is_over_shared_problems_only():
    a = {"x": 0.9, "y": 0.8, "z": 0.7, "only-a": 0.0}
    b = {"x": 0.5, "y": 0.5, "z": 0.4, "only-b": 1.0}
    difference = paired_difference(a, b)
    assert difference.n == 3 and abs(difference.mean - 1.0 / 3) < 1e-9 and difference.better
    assert paired_difference({"x": 1.0}, {"x": 0.0}).half_width is None  # one shared problem proves nothing
    assert not paired_difference({"x": 1.0}, {"x": 0.0}).better
    assert paired_difference({"x": 1.0}, {"y": 0.0}).n == 0


def test_a_challenger_comes_close_when_nothing_is_provable_and_it_is_near_or_above():
    best = {"a": 0.8, "b": 0.6, "c": 0.7, "d": 0.5}
    assert paired_difference(best, best).close(0.02)  # the same outcomes: a tie is close
    assert paired_difference({"a": 0.9, "b": 0.5, "c": 0.8, "d": 0.5}, best).close(0.02)  # +0.025 ± 0.15
    assert not paired_difference({"a": 0.7, "b": 0.7, "c": 0.5, "d": 0.3}, best).close(0.02)  # −0.1: too far below
    assert not paired_difference({p: v + 0.1 for p, v in best.items()}, best).close(0.02)  # provably better
    assert not paired_difference({p: v - 0.01 for p, v in best.items()}, best).close(0.02)  # provably worse


def test_a_sequential_look_stops_only_what_is_provably_worse():
    best = {"a": 0.8, "b": 0.8, "c": 0.8, "d": 0.8}
    assert not sequential_look({"a": 0.9, "b": 0.7, "c": 0.8, "d": 0.6}, best, 0).stop  # −0.05 ± 0.20
    worse = sequential_look({"a": 0.1, "b": 0.1, "c": 0.2, "d": 0.1}, best, 3)
    assert worse.stop and "provably worse than agent-3" in worse.reason
    assert not sequential_look({"a": 0.0}, best, 0).stop  # one shared problem: nothing is provable
    assert not sequential_look({"a": 0.0}, None, 0).stop and not sequential_look({"x": 0.0}, best, 0).stop


def test_dgm_looks_use_its_score_thresholds():
    assert dgm_look([0.0, 0.0, 1.0], 0).stop  # 0.33 < 0.4
    assert not dgm_look([0.0, 1.0], 0).stop
    assert dgm_look([], 1).stop
