"""The Halpe-68 layout and the ST-GCN spatial-partition graph."""
import numpy as np
import pytest

from pipeline.pose import halpe


def test_chain_adjacency_matches_hand_computation():
    # chain 0-1-2-3 centred on 1; degrees with self: 2, 3, 3, 2; A[k, src, dst] = 1/deg(dst)
    a = halpe.spatial_adjacency(4, [(0, 1), (1, 2), (2, 3)], centre=1)
    root = np.diag([1 / 2, 1 / 3, 1 / 3, 1 / 2])
    closer = np.zeros((4, 4))   # the source is closer to the centre than the destination
    closer[1, 0], closer[1, 2], closer[2, 3] = 1 / 2, 1 / 3, 1 / 2
    farther = np.zeros((4, 4))
    farther[0, 1], farther[2, 1], farther[3, 2] = 1 / 3, 1 / 3, 1 / 3
    np.testing.assert_allclose(a, np.stack([root, closer, farther]), rtol=1e-6)


def test_equal_distance_neighbours_join_the_root_subset():
    # triangle 0-1-2 plus 1-3 centred on 0: joints 1 and 2 are both one hop from the centre
    a = halpe.spatial_adjacency(4, [(0, 1), (0, 2), (1, 2), (1, 3)], centre=0)
    assert a[0, 1, 2] > 0 and a[0, 2, 1] > 0
    assert a[1, 1, 2] == 0 and a[2, 1, 2] == 0


def test_halpe_edges_connect_all_68_joints():
    hop = halpe.hop_distances(halpe.NUM_JOINTS, halpe.EDGES)
    assert np.isfinite(hop).all()
    assert len(halpe.JOINT_NAMES) == 68


def test_disconnected_graph_is_refused():
    with pytest.raises(ValueError, match="not connected"):
        halpe.spatial_adjacency(4, [(0, 1), (2, 3)], centre=0)


def test_halpe_adjacency_columns_average_over_neighbours():
    a = halpe.halpe_adjacency()
    assert a.shape == (3, 68, 68)
    np.testing.assert_allclose(a.sum(axis=(0, 1)), 1.0, rtol=1e-6)
    assert (np.diagonal(a[0]) > 0).all()

