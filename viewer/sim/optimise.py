"""Where to spend a budget of buffer places and parallel stations: a greedy search over simulated designs.

From the layout as it is, each round tries one more step of every buffer (``buffer_step`` places, cost 1
each) and one more server at every station (cost ``server_cost``), simulates every candidate with the same
seeds (common random numbers: differences come from the change, not from luck), keeps the one with the best
throughput gain per unit of budget, and goes on until the budget is spent or nothing helps.

The candidates of a round are independent simulations submitted to a ``concurrent.futures.Executor``:
a local process pool by default, or any executor with the same interface, so the sweep can run on a
cluster without changes, e.g. Dask: ``optimise(model, 40, executor=distributed.Client(addr).get_executor())``
(Ray: ``ray.util.multiprocessing.Pool`` offers the same ``submit``-style API through its executor adapter).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

from viewer.sim.model import SimModel
from viewer.sim.runner import Estimate, run


@dataclass(frozen=True)
class Design:
    """Changes to the layout: buffer capacities and station server counts, by component id."""

    buffers: tuple[tuple[str, int], ...] = ()
    servers: tuple[tuple[str, int], ...] = ()

    def with_buffer(self, node_id: str, capacity: int) -> Design:
        items = dict(self.buffers) | {node_id: capacity}
        return Design(tuple(sorted(items.items())), self.servers)

    def with_servers(self, node_id: str, servers: int) -> Design:
        items = dict(self.servers) | {node_id: servers}
        return Design(self.buffers, tuple(sorted(items.items())))

    def apply(self, model: SimModel) -> SimModel:
        """A copy of ``model`` with these changes."""
        out = copy.deepcopy(model)
        for node_id, capacity in self.buffers:
            out.nodes[out.index(node_id)].capacity = capacity
        for node_id, servers in self.servers:
            out.nodes[out.index(node_id)].servers = servers
        return out

    def describe(self, base: SimModel) -> str:
        parts = []
        for node_id, capacity in self.buffers:
            parts.append(f"{node_id} buffer {base.nodes[base.index(node_id)].capacity} -> {capacity}")
        for node_id, servers in self.servers:
            parts.append(f"{node_id} servers {base.nodes[base.index(node_id)].servers} -> {servers}")
        return ", ".join(parts) or "as laid out"


@dataclass
class Candidate:
    design: Design
    cost: int
    throughput: Estimate


@dataclass
class OptimiseResult:
    base: Candidate
    best: list[Candidate]  # best first
    evaluations: int
    rounds: list[str] = field(default_factory=list)  # what each round chose


class InlineExecutor(Executor):
    """Runs each job when submitted (one process, no pool to start): the default for small sweeps."""

    def submit(self, fn: Callable, /, *args: object, **kwargs: object) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future
            future.set_exception(exc)
        return future


def evaluate(model: SimModel, design: Design, hours: float, replications: int, seed: int) -> Estimate:
    """Throughput per hour of one design (a top-level function, so any executor can ship it)."""
    return run(design.apply(model), hours, replications, seed, workers=1).throughput_per_hour


def optimise(model: SimModel, budget: int, hours: float = 8.0, replications: int = 10, seed: int = 1,
             server_cost: int = 10, buffer_step: int = 1, executor: Executor | None = None,
             progress: Callable[[str], None] | None = None,
             cancelled: Callable[[], bool] | None = None) -> OptimiseResult:
    """Greedy search (see the module docstring); ``budget`` in buffer places, a server costs ``server_cost``.

    ``executor`` evaluates each round's candidates: by default they run one after another in this process
    (``InlineExecutor``); pass a ``concurrent.futures.ProcessPoolExecutor`` to spread them over the cores, as
    ``twin-viewer optimise`` does (its ``--workers``)."""
    if budget < 0 or server_cost < 1 or buffer_step < 1:
        raise ValueError("budget must be >= 0, server_cost and buffer_step >= 1")
    model.check()
    pool = executor or InlineExecutor()
    base = Candidate(Design(), 0, evaluate(model, Design(), hours, replications, seed))
    seen: dict[Design, Candidate] = {base.design: base}
    current, spent, evaluations = base, 0, 1
    rounds: list[str] = []
    while True:
        moves: list[tuple[Design, int]] = []
        left = budget - spent
        for node in model.nodes:
            if node.kind == "buffer" and node.capacity is not None and buffer_step <= left:
                now = dict(current.design.buffers).get(node.id, node.capacity)
                moves.append((current.design.with_buffer(node.id, now + buffer_step), buffer_step))
            elif node.kind == "station" and server_cost <= left:
                now = dict(current.design.servers).get(node.id, node.servers)
                moves.append((current.design.with_servers(node.id, now + 1), server_cost))
        moves = [(d, c) for d, c in moves if d not in seen]
        if not moves:
            break
        if cancelled is not None and cancelled():
            raise InterruptedError("optimisation cancelled")
        futures = [pool.submit(evaluate, model, d, hours, replications, seed) for d, _ in moves]
        scored = []
        for (design, cost), future in zip(moves, futures, strict=True):
            candidate = Candidate(design, spent + cost, future.result())
            seen[design] = candidate
            scored.append((candidate.throughput.mean - current.throughput.mean) / cost)
            evaluations += 1
        best = max(range(len(moves)), key=scored.__getitem__)
        if scored[best] <= 0:
            rounds.append("no single step raises throughput: stop")
            break
        current = seen[moves[best][0]]
        spent = current.cost
        rounds.append(f"{current.design.describe(model)}: {current.throughput.mean:,.1f}/h (spent {spent})")
        if progress is not None:
            progress(rounds[-1])
    ranked = sorted(seen.values(), key=lambda c: (-c.throughput.mean, c.cost))
    return OptimiseResult(base, ranked[:5], evaluations, rounds)
