"""The Halpe-68 layout (AlphaPose's 136-joint set without the 68 face points) and its ST-GCN graph.

Joints (REFERENCE.md "Pose layout"): body 0..25, left hand 26..46, right hand 47..67 (local
hand index 0 wrist, 1-4 thumb, 5-8 index, 9-12 middle, 13-16 ring, 17-20 little, base to tip).

Graph (ST-GCN, Yan et al. 2018, Sec. 3.3 "spatial configuration partitioning"): every joint's
neighbour set (itself and the joints one edge away) is split into K=3 subsets by their hop
distance to a centre joint: 0 root (same distance as the joint itself, including the joint),
1 centripetal (closer to the centre), 2 centrifugal (farther). The whole neighbour adjacency is
normalised A D^-1 (each column divided by the joint's degree, self included), so a graph
convolution averages over neighbours. Convention: ``A[k, src, dst]``; a layer computes
``out[..., dst] = sum_src x[..., src] * A[k, src, dst]``.
"""
from __future__ import annotations

import numpy as np

NUM_JOINTS = 68
NUM_PERSONS = 2
LEFT_HAND, RIGHT_HAND = 26, 47  # first joint (the wrist) of each hand block

BODY_NAMES = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
    "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
    "r_ankle", "head", "neck", "hip", "l_big_toe", "r_big_toe", "l_small_toe", "r_small_toe",
    "l_heel", "r_heel",
)
HAND_PARTS = ("wrist",) + tuple(f"{f}{i}" for f in ("thumb", "index", "middle", "ring", "little")
                                for i in range(1, 5))
JOINT_NAMES = BODY_NAMES + tuple(f"lh_{p}" for p in HAND_PARTS) + tuple(f"rh_{p}" for p in HAND_PARTS)
assert len(JOINT_NAMES) == NUM_JOINTS

BODY_EDGES = (
    (0, 1), (0, 2), (1, 3), (2, 4), (5, 18), (6, 18), (5, 7), (7, 9), (6, 8), (8, 10),
    (17, 18), (18, 19), (19, 11), (19, 12), (11, 13), (12, 14), (13, 15), (14, 16),
    (20, 24), (21, 25), (23, 25), (22, 24), (15, 24), (16, 25),
    (0, 17),  # nose-head: without it the face joints are a separate component (REFERENCE.md)
)
HAND_EDGES = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
    (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19),
    (19, 20),
)
EDGES = (BODY_EDGES
         + tuple((LEFT_HAND + a, LEFT_HAND + b) for a, b in HAND_EDGES)
         + tuple((RIGHT_HAND + a, RIGHT_HAND + b) for a, b in HAND_EDGES)
         + ((9, LEFT_HAND), (10, RIGHT_HAND)))  # body wrist -> hand wrist
CENTRE = 18  # the neck: visible for seated musicians, whose hips are often hidden


def hop_distances(num_nodes: int, edges) -> np.ndarray:
    """All-pairs hop distances (``inf`` between components), by breadth-first search."""
    nbrs = [[] for _ in range(num_nodes)]
    for a, b in edges:
        nbrs[a].append(b)
        nbrs[b].append(a)
    dist = np.full((num_nodes, num_nodes), np.inf)
    for s in range(num_nodes):
        dist[s, s] = 0
        frontier = [s]
        while frontier:
            nxt = []
            for u in frontier:
                for v in nbrs[u]:
                    if dist[s, v] == np.inf:
                        dist[s, v] = dist[s, u] + 1
                        nxt.append(v)
            frontier = nxt
    return dist


def spatial_adjacency(num_nodes: int, edges, centre: int) -> np.ndarray:
    """The K=3 spatial-partition adjacency ``A[k, src, dst]`` (float32, (3, V, V)), A D^-1."""
    hop = hop_distances(num_nodes, edges)
    if np.isinf(hop[centre]).any():
        raise ValueError(f"graph is not connected: joints {np.flatnonzero(np.isinf(hop[centre])).tolist()} "
                         f"cannot reach the centre joint {centre}")
    near = (hop <= 1).astype(np.float64)          # neighbours incl. self, symmetric
    norm = near / near.sum(axis=0, keepdims=True)  # A D^-1: column dst divided by deg(dst)
    to_centre = hop[:, centre]
    a = np.zeros((3, num_nodes, num_nodes))
    src, dst = np.nonzero(near)
    for s, d in zip(src, dst):
        k = 0 if to_centre[s] == to_centre[d] else (1 if to_centre[s] < to_centre[d] else 2)
        a[k, s, d] = norm[s, d]
    return a.astype(np.float32)


def halpe_adjacency() -> np.ndarray:
    """The (3, 68, 68) adjacency of the Halpe-68 graph centred on the neck."""
    return spatial_adjacency(NUM_JOINTS, EDGES, CENTRE)
