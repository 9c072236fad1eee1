"""Device spec parsing and ranking on fake device lists: no OpenCL involved."""

import pytest

from hetero.errors import DeviceNotFoundError
from hetero.selection import DeviceInfo, choose, parse_split, rank_key


def fake(id, type, name, vendor="Acme", cu=4, mhz=1000, usable=True, reason="", subs=0):
    return DeviceInfo(id=id, platform="Fake", name=name, vendor=vendor, type=type, compute_units=cu,
                      clock_mhz=mhz, usable=usable, reason=reason, max_sub_devices=subs)


DEVICES = [
    fake("0:0", "cpu", "pthread-haswell-AMD EPYC", vendor="AuthenticAMD", cu=2, mhz=2400, subs=2),
    fake("1:0", "gpu", "NVIDIA H100", vendor="NVIDIA Corporation", cu=132, mhz=1980),
    fake("1:1", "gpu", "NVIDIA T4", vendor="NVIDIA Corporation", cu=40, mhz=1590),
    fake("2:0", "gpu", "Broken GPU", vendor="Oops", cu=999, mhz=9999, usable=False, reason="kernel build fails"),
    fake("3:0", "accelerator", "FPGA board", vendor="Xil", cu=1, mhz=300),
]


def ids(infos):
    return [d.id for d in infos]


def test_default_is_best_usable_gpu_never_a_broken_one():
    assert ids(choose(DEVICES, None)) == ["1:0"]
    assert ids(choose(DEVICES, "")) == ["1:0"]


def test_ranking_is_gpu_then_accelerator_then_cpu_then_cu_times_clock():
    ranked = sorted(DEVICES, key=rank_key)
    assert ids(ranked) == ["2:0", "1:0", "1:1", "3:0", "0:0"]  # usable filtering happens in choose


@pytest.mark.parametrize("spec,expected", [
    ("gpu", "1:0"), ("GPU", "1:0"), ("cpu", "0:0"), ("accelerator", "3:0"),
    ("1:1", "1:1"), ("0:0", "0:0"), (2, "1:1"), ("2", "1:1"),
    ("t4", "1:1"), ("h100", "1:0"), ("nvidia", "1:0"), ("authenticamd", "0:0"), ("epyc", "0:0"),
])
def test_spec_forms(spec, expected):
    assert ids(choose(DEVICES, spec)) == [expected]


@pytest.mark.parametrize("spec", ["nope", "7:0", "17", "broken", "2:0"])
def test_no_match_or_unusable_lists_usable_devices(spec):
    with pytest.raises(DeviceNotFoundError) as e:
        choose(DEVICES, spec)
    msg = str(e.value)
    assert repr(spec) in msg
    assert "usable devices:" in msg
    for d in DEVICES:
        if d.usable:
            assert d.id in msg


def test_unusable_match_says_why():
    with pytest.raises(DeviceNotFoundError, match="kernel build fails"):
        choose(DEVICES, "broken")


def test_sub_device_specs():
    halves = choose(DEVICES, "cpu/2")
    assert ids(halves) == ["0:0/2.0", "0:0/2.1"]
    assert all(h.compute_units == 1 and h.parent == "0:0" for h in halves)
    assert ids(choose(DEVICES, "cpu/2.1")) == ["0:0/2.1"]
    assert ids(choose(DEVICES, "0:0/1")) == ["0:0/1.0"]


@pytest.mark.parametrize("spec,match", [("cpu/3", "at most 2 sub-devices"), ("gpu/2", "at most 0"),
                                        ("cpu/2.2", "out of range")])
def test_bad_sub_device_specs(spec, match):
    with pytest.raises(DeviceNotFoundError, match=match):
        choose(DEVICES, spec)


def test_parse_split():
    assert parse_split("cpu/2") == ("cpu", 2, None)
    assert parse_split("0:0/4.3") == ("0:0", 4, 3)
    assert parse_split("gpu") == ("gpu", None, None)


def test_empty_list():
    with pytest.raises(DeviceNotFoundError, match="no OpenCL device at all"):
        choose([], None)
