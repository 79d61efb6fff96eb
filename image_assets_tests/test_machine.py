"""Usable cores: the affinity, capped by a cgroup's CPU quota, never below 1."""

from __future__ import annotations

import math
import os

from hypothesis import given
from hypothesis import strategies as st

from image_assets.machine import usable_cores

AFFINITY = len(os.sched_getaffinity(0))


@given(quota=st.integers(1, 10**7), period=st.integers(1000, 10**6))
def test_a_cgroup_v2_quota_caps_the_cores(tmp_path_factory, quota, period):
    cgroup = tmp_path_factory.mktemp("cg")
    (cgroup / "cpu.max").write_text(f"{quota} {period}\n")
    assert usable_cores(cgroup) == max(1, min(AFFINITY, math.ceil(quota / period)))


@given(quota=st.integers(1, 10**7), period=st.integers(1000, 10**6))
def test_a_cgroup_v1_quota_caps_the_cores(tmp_path_factory, quota, period):
    cgroup = tmp_path_factory.mktemp("cg")
    (cgroup / "cpu").mkdir()
    (cgroup / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (cgroup / "cpu" / "cpu.cfs_period_us").write_text(f"{period}\n")
    assert usable_cores(cgroup) == max(1, min(AFFINITY, math.ceil(quota / period)))


@given(text=st.one_of(st.just("max 100000"), st.just("-1"), st.text(max_size=20)))
def test_no_quota_or_an_unreadable_one_leaves_the_affinity(tmp_path_factory, text):
    cgroup = tmp_path_factory.mktemp("cg")
    (cgroup / "cpu.max").write_text(text)
    (cgroup / "cpu").mkdir()
    (cgroup / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # v1's "no limit"
    (cgroup / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cores(cgroup) == AFFINITY


def test_no_cgroup_at_all_is_the_affinity(tmp_path):
    assert usable_cores(tmp_path / "missing") == AFFINITY
