"""The one executor every per-video stage maps through: local process pool and Ray."""
from __future__ import annotations

import functools
import importlib.util

import pytest

from pipeline.executor import Failure, map_ordered, map_videos


def square_or_fail(x, bad=()):
    if x in bad:
        raise ValueError(f"video {x} is broken")
    return x * x


@pytest.mark.parametrize("jobs", [1, 2])
def test_local_pool_maps_everything_and_isolates_failures(jobs):
    fn = functools.partial(square_or_fail, bad=(3,))
    out = list(map_videos(fn, range(6), jobs=jobs, progress=False))
    good = sorted(o for o in out if not isinstance(o, Failure))
    bad = [o for o in out if isinstance(o, Failure)]
    assert good == [0, 1, 4, 16, 25]
    assert len(bad) == 1 and bad[0].item == 3
    assert bad[0].error == "ValueError: video 3 is broken"
    assert "Traceback" in bad[0].detail


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="executor.backend"):
        list(map_videos(square_or_fail, [1], backend="dask", progress=False))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="Ray is not installed (scripts/setup.sh --ray installs it)")
def test_ray_backend_on_a_local_instance():
    fn = functools.partial(square_or_fail, bad=(2,))
    out = list(map_videos(fn, range(5), backend="ray", jobs=2, progress=False))
    good = sorted(o for o in out if not isinstance(o, Failure))
    bad = [o for o in out if isinstance(o, Failure)]
    assert good == [0, 1, 9, 16]
    assert [b.item for b in bad] == [2] and "video 2 is broken" in bad[0].error


def _scaled(context, item):
    if item == "bad":
        raise ValueError("bad item")
    return context["scale"] * item


@pytest.mark.parametrize("jobs", [1, 2])
def test_ordered_map_keeps_the_order_shares_the_context_and_raises(jobs):
    items = list(range(9, -1, -1))
    assert map_ordered(_scaled, items, jobs=jobs, context={"scale": 3}) == [3 * i for i in items]
    with pytest.raises(ValueError, match="bad item"):
        map_ordered(_scaled, [1, "bad", 2], jobs=jobs, context={"scale": 1})
