"""Load shapes as pure functions of elapsed time, and their validation."""

import pytest

from loadwise.shapes.base import ShapeError
from loadwise.shapes.catalog import SHAPES, build_shape, parse_shape_params
from loadwise.shapes.rates import RateShape


def test_step_holds_each_level_for_an_equal_share_and_ends():
    shape = build_shape("step", users=40, duration_s=80, params={"steps": "4"})
    assert [shape.users_at(t) for t in (0, 19.9, 20, 45, 79.9)] == [10, 10, 20, 30, 40]
    assert shape.tick(80) is None
    assert shape.tick(0) == (10, 40.0)  # default spawn rate reaches a step within a second


def test_ramp_constant_soak_spike_diurnal():
    assert [build_shape("ramp", 100, 100, params={"start_users": "0"}).users_at(t) for t in (0, 50, 100)] == [0, 50, 100]
    assert build_shape("constant", 7, 10).users_at(3) == 7
    soak = build_shape("soak", 50, 1000)
    assert soak.users_at(50) == 25 and soak.users_at(100) == 50 and soak.users_at(999) == 50
    spike = build_shape("spike", 100, 100)
    assert [spike.users_at(t) for t in (0, 39, 40, 59, 60)] == [20, 20, 100, 100, 20]
    day = build_shape("diurnal", 100, 100, params={"min_users": "10"})
    assert day.users_at(0) == 10 and day.users_at(50) == 100 and day.users_at(25) == 55


def test_every_shape_stays_within_zero_and_peak():
    for name in (n for n, cls in SHAPES.items() if not issubclass(cls, RateShape)):
        shape = build_shape(name, 30, 60)
        levels = [shape.users_at(t / 2) for t in range(120)]
        assert min(levels) >= 0 and max(levels) <= 30, name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("wave", 10, 10), "unknown shape 'wave'"),
        (("step", 3, 60, None, {"steps": "5"}), "steps must be between 1 and users=3"),
        (("step", 10, 60, None, {"steps": "two"}), "steps='two' is not an integer"),
        (("ramp", 10, 60, None, {"slope": "1"}), "unknown parameter 'slope'; ramp takes: start_users"),
        (("constant", 0, 60), "users must be at least 1"),
        (("constant", 5, 0), "duration must be positive"),
        (("spike", 10, 60, None, {"at_s": "90"}), "at_s must fall inside the run"),
    ],
)
def test_bad_shapes_name_the_bad_input(args, message):
    with pytest.raises(ShapeError, match=message.replace("(", r"\(")):
        build_shape(*args)


def test_shape_params_parse():
    assert parse_shape_params(["steps=4", " at_s = 10 "]) == {"steps": "4", "at_s": "10"}
    with pytest.raises(ShapeError, match="expected KEY=VALUE"):
        parse_shape_params(["steps"])
