"""The simulation against exact continuous-time Markov chains built here, by hand, from the model's rules.

Exponential stations, blocking after service, raw material always available at the first station. Each
chain enumerates its states from the empty line by the rules an engineer would write down (not the engine's
code), solves pi Q = 0 and gives the exact throughput; the simulation (the kernel that runs in the product)
must contain it in its interval."""

from __future__ import annotations

import numpy as np
import pytest
from sim_models import line

from viewer.sim.model import Distribution as D  # noqa: N817
from viewer.sim.model import Node, SimModel
from viewer.sim.runner import run

WIDEN_TO_99 = 1.35  # t(0.995)/t(0.975) for 10-20 replications


def solve(start, moves) -> tuple[dict, np.ndarray]:
    """States reachable from ``start`` by ``moves(state) -> [(rate, next state)]``, and the stationary law."""
    index = {start: 0}
    order = [start]
    edges = []
    k = 0
    while k < len(order):
        state = order[k]
        for rate, nxt in moves(state):
            if nxt not in index:
                index[nxt] = len(order)
                order.append(nxt)
            edges.append((index[state], index[nxt], rate))
        k += 1
    q = np.zeros((len(order), len(order)))
    for i, j, rate in edges:
        q[i, j] += rate
    np.fill_diagonal(q, q.diagonal() - q.sum(axis=1))
    a = np.vstack([q.T, np.ones(len(order))])
    b = np.zeros(len(order) + 1)
    b[-1] = 1.0
    return index, np.linalg.lstsq(a, b, rcond=None)[0]


def three_station_throughput(mu: tuple[float, float, float], buffers: tuple[int, int]) -> tuple[float, int]:
    """Saturated M1 -> B1 -> M2 -> B2 -> M3. State: (M1 blocked, B1, M2 in {idle, working, blocked}, B2,
    M3 working). A blocked station moves its part as soon as the buffer after it has room, or straight into
    the next station when that buffer holds nothing (capacity 0); an idle station takes from its buffer."""
    k1, k2 = buffers

    def settle(m1_blocked, b1, m2, b2, m3):
        while True:
            before = (m1_blocked, b1, m2, b2, m3)
            if not m3 and b2:
                b2, m3 = b2 - 1, True
            if m2 == "blocked" and (b2 < k2 or (k2 == 0 and not m3)):
                if b2 < k2:
                    b2 += 1
                else:
                    m3 = True
                m2 = "idle"
            if m2 == "idle" and b1:
                b1, m2 = b1 - 1, "working"
            if m1_blocked and (b1 < k1 or (k1 == 0 and m2 == "idle")):
                if b1 < k1:
                    b1 += 1
                else:
                    m2 = "working"
                m1_blocked = False
            if (m1_blocked, b1, m2, b2, m3) == before:
                return before

    def moves(state):
        m1_blocked, b1, m2, b2, m3 = state
        out = []
        if not m1_blocked:
            out.append((mu[0], settle(True, b1, m2, b2, m3)))
        if m2 == "working":
            out.append((mu[1], settle(m1_blocked, b1, "blocked", b2, m3)))
        if m3:
            out.append((mu[2], settle(m1_blocked, b1, m2, b2, False)))
        return out

    index, pi = solve(settle(False, 0, "idle", 0, False), moves)
    return mu[2] * sum(pi[i] for s, i in index.items() if s[4]), len(index)


def split_merge_throughput(mu1: float, mu_a: float, mu_b: float, mu_m: float, share_a: float,
                           queue: int) -> tuple[float, int]:
    """Saturated S1 splits by shares to stations A (share_a) and B, drawn when S1 finishes a part (S1 holds it
    until its station is free); A and B both put into buffer Q (``queue`` places), which feeds M. A or B
    blocked on a full Q wait in order: the one that has waited longest moves first. State: (S1 in {working,
    for A, for B}, A, B in {idle, working, blocked}, Q, M working, waiting order)."""

    def settle(s1, a, b, q, m, waiters):
        while True:
            before = (s1, a, b, q, m, waiters)
            if not m and q:
                q, m = q - 1, True
            if waiters and q < queue:
                first, waiters = waiters[0], waiters[1:]
                q += 1
                a, b = ("idle", b) if first == "A" else (a, "idle")
            if s1 == "for A" and a == "idle":
                s1, a = "working", "working"
            if s1 == "for B" and b == "idle":
                s1, b = "working", "working"
            if (s1, a, b, q, m, waiters) == before:
                return before

    def moves(state):
        s1, a, b, q, m, waiters = state
        out = []
        if s1 == "working":
            out.append((mu1 * share_a, settle("for A", a, b, q, m, waiters)))
            out.append((mu1 * (1 - share_a), settle("for B", a, b, q, m, waiters)))
        if a == "working":
            out.append((mu_a, settle(s1, "blocked", b, q, m, (*waiters, "A"))))
        if b == "working":
            out.append((mu_b, settle(s1, a, "blocked", q, m, (*waiters, "B"))))
        if m:
            out.append((mu_m, settle(s1, a, b, q, False, waiters)))
        return out

    index, pi = solve(settle("working", "idle", "idle", 0, False, ()), moves)
    return mu_m * sum(pi[i] for s, i in index.items() if s[4]), len(index)


def test_the_chains_agree_with_closed_forms_where_there_are_some():
    # Zero buffers and an infinitely fast tail: M3 never holds M2 back, so M1-M2 is the two-station chain
    # with no buffer: throughput mu1 mu2 (mu1 + mu2) / (mu1^2 + mu1 mu2 + mu2^2).
    mu1, mu2 = 1 / 10, 1 / 12
    exact, _ = three_station_throughput((mu1, mu2, 1e6), (0, 0))
    assert exact == pytest.approx(mu1 * mu2 * (mu1 + mu2) / (mu1**2 + mu1 * mu2 + mu2**2), rel=1e-4)
    # A split with a huge Q and an instant M: A and B never block, so S1 alone decides: S1 is free again
    # after its own cycle and, with the share, the wait for A or B (each an M/M/1/1 behind a Bernoulli split).
    tp, _ = split_merge_throughput(1 / 10, 1e6, 1e6, 1e6, 0.5, 50)
    assert tp == pytest.approx(1 / 10, rel=1e-3)


@pytest.mark.parametrize("buffers", [(0, 0), (2, 1)])
def test_a_three_station_line_with_finite_buffers_matches_the_markov_chain(buffers):
    mu = (1 / 10, 1 / 11, 1 / 9.5)
    exact, states = three_station_throughput(mu, buffers)
    assert states >= 8
    nodes = [Node("IN", "source"), Node("M1", "station", cycle=D.exponential(1 / mu[0])),
             Node("B1", "buffer", capacity=buffers[0]), Node("M2", "station", cycle=D.exponential(1 / mu[1])),
             Node("B2", "buffer", capacity=buffers[1]), Node("M3", "station", cycle=D.exponential(1 / mu[2])),
             Node("OUT", "sink")]
    model = line(*nodes, warmup=2_000)
    report = run(model, hours=40, replications=12, seed=17, workers=1)
    est = report.throughput_per_hour
    assert abs(est.mean - exact * 3600) <= WIDEN_TO_99 * est.half_width, (est, exact * 3600)
    assert est.half_width < 0.02 * est.mean  # tight enough that a wrong blocking rule would show


def test_a_split_and_merge_network_matches_the_markov_chain():
    mu1, mu_a, mu_b, mu_m, share_a, queue = 1 / 8, 1 / 14, 1 / 12, 1 / 9, 0.6, 2
    exact, states = split_merge_throughput(mu1, mu_a, mu_b, mu_m, share_a, queue)
    assert states > 40
    model = SimModel([Node("IN", "source"), Node("S1", "station", cycle=D.exponential(1 / mu1)),
                      Node("A", "station", cycle=D.exponential(1 / mu_a)),
                      Node("B", "station", cycle=D.exponential(1 / mu_b)),
                      Node("Q", "buffer", capacity=queue), Node("M", "station", cycle=D.exponential(1 / mu_m)),
                      Node("OUT", "sink")], warmup=2_000)
    model.link("IN", "S1").link("S1", "A", share_a).link("S1", "B", 1 - share_a)
    model.link("A", "Q").link("B", "Q").link("Q", "M").link("M", "OUT")
    report = run(model, hours=40, replications=12, seed=19, workers=1)
    est = report.throughput_per_hour
    assert abs(est.mean - exact * 3600) <= WIDEN_TO_99 * est.half_width, (est, exact * 3600)
    assert est.half_width < 0.02 * est.mean
