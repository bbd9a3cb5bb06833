# distutils: language = c++
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled kernel: :class:`viewer.sim.engine.Replication` line for line, in typed Cython over C++ containers.

Same state, same handlers, same names, same order of every floating-point operation and every random draw
(the streams are the reference's own numpy generators, read in the same blocks), so both kernels give the
same figures part for part; ``tests/test_sim_kernels.py`` checks it on every feature. Read the reference for
the model; read this for where the types go. Built by ``packaging/build_kernel.py`` (the bootstrap runs it).
"""

from cython.operator cimport dereference
from libc.math cimport INFINITY
from libcpp.deque cimport deque
from libcpp.pair cimport pair
from libcpp.queue cimport priority_queue
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

import numpy as np

from viewer.sim import engine as _engine
from viewer.sim.engine import ReplicationResult, StationStats

# Event kinds: the reference's numbers (checked below).
cdef enum:
    COMPLETE = 0
    CONVEYOR = 1
    FAIL = 2
    REPAIR = 3
    SHIFT_OFF = 4
    SHIFT_ON = 5
    WARMUP = 6
    ARRIVAL = 7
    PICKUP = 8
    DROP = 9

# Node kinds.
cdef enum:
    SOURCE = 0
    BUFFER = 1
    STATION = 2
    CONVEYOR_NODE = 3
    SINK = 4
    TRANSPORT = 5

# Streams per node: uniform (routing, scrap), cycle, setup, fail, repair, arrival.
cdef enum:
    UNIFORM_S = 0
    CYCLE_S = 1
    SETUP_S = 2
    FAIL_S = 3
    REPAIR_S = 4
    ARRIVAL_S = 5
    STREAMS = 6

assert (_engine.COMPLETE, _engine.CONVEYOR, _engine.FAIL, _engine.REPAIR, _engine.SHIFT_OFF, _engine.SHIFT_ON,
        _engine.WARMUP, _engine.ARRIVAL, _engine.PICKUP, _engine.DROP) == tuple(range(10))

cdef long long UNBOUNDED = _engine.UNBOUNDED
NODE_KINDS = {"source": SOURCE, "buffer": BUFFER, "station": STATION, "conveyor": CONVEYOR_NODE,
              "transport": TRANSPORT}


cdef struct Event:
    double t
    long long seq
    int kind
    int node
    long long ival  # COMPLETE: job; PICKUP, DROP: vehicle
    long long jval  # COMPLETE: epoch; PICKUP: the node it picks up from
    double x  # CONVEYOR, DROP: the part
    double y  # CONVEYOR: due in belt time


cdef struct Job:
    double part
    double end  # or the time still to go while paused
    double setup
    long long epoch


cdef struct Ready:
    double part
    int target  # -1: whichever has room


cdef inline bint earlier(const Event& a, const Event& b) noexcept:
    # The reference's heap orders tuples (time, seq, kind, ...); seq is unique but at time 0.
    if a.t != b.t:
        return a.t < b.t
    if a.seq != b.seq:
        return a.seq < b.seq
    return a.kind < b.kind


cdef class Kernel:
    cdef object p, cancelled
    cdef int n
    cdef double now, duration, warmup, load_time
    cdef long long seq
    cdef bint counting, off_shift
    cdef vector[Event] heap
    # The model.
    cdef vector[int] kind, servers, batch, transport_dest, station_ids
    cdef vector[long long] cap
    cdef vector[double] scrap, rework, transit
    cdef vector[char] accumulating, has_arrival
    cdef vector[vector[int]] targets
    cdef vector[vector[double]] route_cum  # empty: one target, or 'whichever has room'
    cdef unordered_map[long long, double] travel_s
    # Random streams: blocks drawn by the reference's generators.
    cdef vector[vector[double]] sbuf
    cdef vector[size_t] spos
    cdef list streams  # the reference's Stream objects (their generators are built on the first draw)
    # Nodes.
    cdef vector[long long] held
    cdef vector[deque[Ready]] ready
    cdef vector[vector[int]] waiting
    # Stations.
    cdef vector[Job] job_pool
    cdef vector[vector[long long]] jobs
    cdef vector[vector[double]] pending
    cdef vector[int] paused, batch_count, n_busy, n_block
    cdef vector[char] down
    # Sources and conveyors.
    cdef vector[int] raw_route
    cdef vector[double] last_due, stopped_total, stopped_since
    cdef vector[vector[pair[double, double]]] deferred
    # AGVs.
    cdef vector[long long] reserved
    cdef vector[deque[pair[int, double]]] unloading
    cdef vector[char] kept, drains_without_agv
    cdef vector[char] requested
    cdef deque[pair[int, int]] agv_queue
    cdef vector[int] agv_loc, agv_free
    cdef vector[double] agv_since
    cdef double agv_busy
    cdef int fleet_size
    # Statistics (per node; used at stations).
    cdef vector[double] st_working, st_setup, st_blocked, st_starved, st_down, st_off, st_active_time
    cdef vector[long long] st_processed, st_scrapped, st_reworked, st_failures, st_active_periods
    cdef vector[vector[pair[double, double]]] st_periods
    cdef vector[double] acc_t, active_since, inactive_since, occ_area, occ_t
    cdef vector[char] active
    cdef long long wip, produced, scrapped, departures, operations, events
    cdef double wip_t, wip_area, sojourn_sum
    cdef vector[double] lead_times

    def __init__(self, p, cancelled=None):
        cdef int i, n = len(p.kind)
        self.p, self.n, self.cancelled = p, n, cancelled
        self.duration, self.warmup, self.load_time = p.duration, p.warmup, p.load_time
        self.now, self.seq = 0.0, 0
        self.counting, self.off_shift = p.warmup <= 0.0, False
        self.fleet_size = p.fleet_size
        self.streams = [None] * (n * STREAMS)
        self.sbuf.resize(n * STREAMS)
        self.spos.resize(n * STREAMS)
        for i in range(n):
            self.kind.push_back(NODE_KINDS.get(p.kind[i], SINK))
            if self.kind[i] == STATION:
                self.station_ids.push_back(i)
            self.cap.push_back(p.cap[i])
            self.servers.push_back(p.servers[i])
            self.batch.push_back(p.batch[i])
            self.transport_dest.push_back(p.transport_dest[i])
            self.scrap.push_back(p.scrap[i])
            self.rework.push_back(p.rework[i])
            self.transit.push_back(p.transit[i])
            self.accumulating.push_back(bool(p.accumulating[i]))
            self.has_arrival.push_back(p.arrival[i] is not None)
            self.targets.push_back(p.targets[i])
            self.route_cum.push_back(p.route_cum[i] if p.route_cum[i] is not None else [])
            for purpose, stream in ((UNIFORM_S, p.uniform[i]), (CYCLE_S, p.cycle[i]), (SETUP_S, p.setup[i]),
                                    (FAIL_S, p.fail[i]), (REPAIR_S, p.repair[i]), (ARRIVAL_S, p.arrival[i])):
                self.streams[i * STREAMS + purpose] = stream
        for (a, b), seconds in p.travel.items():
            self.travel_s[<long long>a * n + b] = seconds
        self.held.resize(n)
        self.ready.resize(n)
        self.waiting.resize(n)
        self.jobs.resize(n)
        self.pending.resize(n)
        self.paused.resize(n)
        self.down.resize(n)
        self.batch_count.resize(n)
        self.n_busy.resize(n)
        self.n_block.resize(n)
        self.raw_route.assign(<size_t>n, -2)
        self.last_due.resize(n)
        self.stopped_total.resize(n)
        self.stopped_since.assign(<size_t>n, -1.0)
        self.deferred.resize(n)
        self.reserved.resize(n)
        self.unloading.resize(n)
        self.kept.resize(self.fleet_size)
        for i in range(n):
            self.drains_without_agv.push_back(bool(p.drains_without_agv[i]))
        self.requested.resize(n)
        self.agv_loc.assign(<size_t>self.fleet_size, <int>p.first_stop)
        for i in range(p.fleet_size):
            self.agv_free.push_back(i)
        self.agv_since.assign(<size_t>self.fleet_size, 0.0)
        self.st_working.resize(n)
        self.st_setup.resize(n)
        self.st_blocked.resize(n)
        self.st_starved.resize(n)
        self.st_down.resize(n)
        self.st_off.resize(n)
        self.st_active_time.resize(n)
        self.st_processed.resize(n)
        self.st_scrapped.resize(n)
        self.st_reworked.resize(n)
        self.st_failures.resize(n)
        self.st_active_periods.resize(n)
        self.st_periods.resize(n)
        self.acc_t.resize(n)
        self.active.resize(n)
        self.active_since.assign(<size_t>n, -1.0)
        self.inactive_since.resize(n)
        self.occ_area.resize(n)
        self.occ_t.resize(n)

    # -- random streams ----------------------------------------------------------------------------------------
    cdef double draw(self, int node, int purpose) except? -1.0:
        cdef int sid = node * STREAMS + purpose
        if self.spos[sid] >= self.sbuf[sid].size():
            self.refill(sid)
        cdef double value = self.sbuf[sid][self.spos[sid]]
        self.spos[sid] += 1
        return value

    cdef int refill(self, int sid) except -1:
        cdef double[::1] block = np.ascontiguousarray(self.streams[sid].block(), dtype=np.float64)
        cdef Py_ssize_t k
        self.sbuf[sid].resize(block.shape[0])
        for k in range(block.shape[0]):
            self.sbuf[sid][k] = block[k]
        self.spos[sid] = 0
        return 0

    # -- the event loop ------------------------------------------------------------------------------------
    cdef void push(self, Event ev) noexcept:
        self.heap.push_back(ev)
        cdef size_t k = self.heap.size() - 1, parent
        while k > 0:
            parent = (k - 1) >> 1
            if not earlier(ev, self.heap[parent]):
                break
            self.heap[k] = self.heap[parent]
            k = parent
        self.heap[k] = ev

    cdef Event pop(self) noexcept:
        cdef Event top = self.heap[0]
        cdef Event last = self.heap.back()
        self.heap.pop_back()
        cdef size_t size = self.heap.size(), k = 0, child
        if size == 0:
            return top
        while True:
            child = 2 * k + 1
            if child >= size:
                break
            if child + 1 < size and earlier(self.heap[child + 1], self.heap[child]):
                child += 1
            if not earlier(self.heap[child], last):
                break
            self.heap[k] = self.heap[child]
            k = child
        self.heap[k] = last
        return top

    cdef void schedule(self, double t, int kind, int node, long long ival=0, long long jval=0, double x=0.0,
                       double y=0.0) noexcept:
        cdef Event ev
        self.seq += 1
        ev.t, ev.seq, ev.kind, ev.node, ev.ival, ev.jval, ev.x, ev.y = t, self.seq, kind, node, ival, jval, x, y
        self.push(ev)

    def run(self):
        cdef int i
        cdef Event ev
        p = self.p
        for i in range(self.n):
            if self.has_arrival[i]:
                self.schedule(self.draw(i, ARRIVAL_S), ARRIVAL, i)
            if self.streams[i * STREAMS + FAIL_S] is not None:
                self.schedule(self.draw(i, FAIL_S), FAIL, i)
        for t, k in p.shifts:
            if t == 0.0:  # before everything else at time 0
                self.seq += 1
                ev.t, ev.seq, ev.kind, ev.node, ev.ival, ev.jval, ev.x, ev.y = t, -1, k, -1, 0, 0, 0.0, 0.0
                self.push(ev)
            else:
                self.schedule(t, k, -1)
        if self.warmup > 0:
            self.schedule(self.warmup, WARMUP, -1)
        for i in range(self.n):  # always-available sources fill the line at time 0
            if self.kind[i] == SOURCE and not self.has_arrival[i]:
                self.settle(i)
        cancelled = self.cancelled
        while self.heap.size() > 0 and self.heap[0].t <= self.duration:
            ev = self.pop()
            self.now = ev.t
            self.events += 1
            if ev.kind == COMPLETE:
                self.on_complete(ev.node, ev.ival, ev.jval)
            elif ev.kind == CONVEYOR:
                self.on_conveyor(ev.node, ev.x, ev.y)
            elif ev.kind == FAIL:
                self.on_fail(ev.node)
            elif ev.kind == REPAIR:
                self.on_repair(ev.node)
            elif ev.kind == SHIFT_OFF:
                self.shift(True)
            elif ev.kind == SHIFT_ON:
                self.shift(False)
            elif ev.kind == WARMUP:
                self.on_warmup()
            elif ev.kind == ARRIVAL:
                self.on_arrival(ev.node)
            elif ev.kind == PICKUP:
                self.on_pickup(ev.node, <int>ev.ival, <int>ev.jval)
            elif ev.kind == DROP:
                self.on_drop(ev.node, <int>ev.ival, ev.x)
            if cancelled is not None and self.events % 4096 == 0 and cancelled():
                raise InterruptedError("simulation cancelled")
        return self.finish()

    # -- one handler per event kind ----------------------------------------------------------------------------
    cdef int on_complete(self, int s, long long job_id, long long epoch) except -1:
        cdef Job* job = &self.job_pool[job_id]
        cdef vector[int] work
        if job.epoch != epoch:
            return 0  # paused since: rescheduled on resume
        cdef double part = job.part
        self.account(s)
        self.remove_job(s, job_id)
        self.n_busy[s] -= 1
        self.operations += 1
        if self.counting:
            self.st_processed[s] += 1
            self.st_setup[s] += job.setup
        cdef double u = self.draw(s, UNIFORM_S)
        if u < self.scrap[s]:
            if self.counting:
                self.st_scrapped[s] += 1
                self.scrapped += 1
                self.departures += 1
                self.sojourn_sum += self.now - part
            self.occupancy(s, -1)
            self.wip_change(-1)
            self.activity(s)
            work.push_back(s)
            self.room_freed(s, work)
            self.drain(work)
        elif u < self.scrap[s] + self.rework[s]:
            if self.counting:
                self.st_reworked[s] += 1
            self.start_job(s, part)  # processed again on the same server
            self.activity(s)
        else:
            self.n_block[s] += 1
            self.activity(s)
            self.ready[s].push_back(Ready(part, self.pick(s)))
            self.settle(s)
        return 0

    cdef int on_conveyor(self, int c, double part, double due) except -1:
        cdef double due_wall
        if not self.accumulating[c]:
            due_wall = due + (self.stopped_total[c] if self.stopped_since[c] < 0 else INFINITY)
            if due_wall > self.now:
                if self.stopped_since[c] >= 0:
                    self.deferred[c].push_back(pair[double, double](due, part))
                else:
                    self.schedule(due_wall, CONVEYOR, c, 0, 0, part, due)
                return 0
        self.ready[c].push_back(Ready(part, self.pick(c)))
        self.settle(c)
        return 0

    cdef int on_pickup(self, int t, int vehicle, int a) except -1:
        cdef double part
        cdef vector[int] work
        self.requested[a] = False
        if self.kind[a] == SOURCE and not self.has_arrival[a] and self.ready[a].empty():
            self.raw_route[a] = -2  # raw material leaves on the AGV: from now on it is work in progress
            self.wip_change(1)
            part = self.now
        else:
            part = self.ready[a].front().part
            self.ready[a].pop_front()
            self.occupancy(a, -1)
            if self.kind[a] == STATION:
                self.account(a)
                self.n_block[a] -= 1
        cdef int b = self.transport_dest[t]
        self.schedule(self.now + self.travel(a, b) + self.load_time, DROP, t, vehicle, 0, part)
        work.push_back(a)
        self.room_freed(a, work)
        self.drain(work)
        return 0

    cdef int on_drop(self, int t, int vehicle, double part) except -1:
        cdef int b = self.transport_dest[t]
        cdef vector[int] work
        if self.kept[vehicle]:
            self.kept[vehicle] = False
            self.reserved[b] -= 1  # the place kept for this part is the one it takes now
        elif self.held[b] + self.reserved[b] >= self.cap[b]:
            self.reserved[b] += 1  # the next free place is this vehicle's
            self.unloading[b].push_back(pair[int, double](vehicle, part))
            return 0
        self.unload(b, vehicle, part, work)
        self.drain(work)
        self.dispatch()
        return 0

    cdef int on_arrival(self, int i) except -1:
        self.wip_change(1)
        self.occupancy(i, 1)
        self.ready[i].push_back(Ready(self.now, self.pick(i)))
        self.schedule(self.now + self.draw(i, ARRIVAL_S), ARRIVAL, i)
        self.settle(i)
        return 0

    cdef int on_fail(self, int s) except -1:
        self.account(s)
        self.down[s] = True  # before pausing: a failure continues the station's active period
        self.pause(s)
        if self.counting:
            self.st_failures[s] += 1
        self.schedule(self.now + self.draw(s, REPAIR_S), REPAIR, s)
        return 0

    cdef int on_repair(self, int s) except -1:
        self.account(s)
        self.down[s] = False
        self.resume(s)
        self.schedule(self.now + self.draw(s, FAIL_S), FAIL, s)
        return 0

    cdef void on_warmup(self) noexcept:
        cdef int s, d
        for s in self.station_ids:
            self.account(s)
            self.st_working[s] = self.st_setup[s] = self.st_blocked[s] = self.st_starved[s] = 0.0
            self.st_down[s] = self.st_off[s] = self.st_active_time[s] = 0.0
            self.st_processed[s] = self.st_scrapped[s] = self.st_reworked[s] = self.st_failures[s] = 0
            self.st_active_periods[s] = 0
            self.st_periods[s].clear()
            self.active_since[s] = self.now if self.active[s] else -1.0
        for d in range(self.n):
            self.occupancy(d, 0)
            self.occ_area[d] = 0.0
        self.wip_change(0)
        self.wip_area = 0.0
        self.counting = True

    # -- moving parts ------------------------------------------------------------------------------------------
    cdef int settle(self, int first) except -1:
        cdef vector[int] work
        work.push_back(first)
        self.drain(work)
        return 0

    cdef int drain(self, vector[int]& work) except -1:
        cdef int i
        while not work.empty():
            i = work.back()
            work.pop_back()
            self.push_out(i, work)
        return 0

    cdef int push_out(self, int i, vector[int]& work) except -1:
        cdef deque[Ready]* q = &self.ready[i]
        cdef bint moved = False
        cdef bint raw = self.kind[i] == SOURCE and not self.has_arrival[i]  # raw material always available
        cdef int d, t
        cdef double part = 0.0
        while not q.empty() or raw:
            if not q.empty():
                part = q.front().part
                d = q.front().target
            else:
                d = self.raw_route[i]
                if d == -2:
                    d = self.pick(i)
                    self.raw_route[i] = d
            if d < 0:
                d = self.least_full(i)
                if d < 0:
                    for t in self.targets[i]:
                        self.wait_for_room(i, t)
                    break
            if self.transport_dest[d] >= 0:
                if not self.requested[i]:  # the part waits here for an AGV (blocking this node meanwhile)
                    self.requested[i] = True
                    self.agv_queue.push_back(pair[int, int](i, d))
                    self.dispatch()
                break
            if self.held[d] + self.reserved[d] >= self.cap[d]:
                self.wait_for_room(i, d)
                break
            if not q.empty():
                q.pop_front()
                self.occupancy(i, -1)
                if self.kind[i] == STATION:
                    self.account(i)
                    self.n_block[i] -= 1
            else:  # raw material enters the line: from now on it is work in progress
                self.raw_route[i] = -2
                self.wip_change(1)
                part = self.now
            moved = True
            self.accept(d, part, work)
        if moved and self.kind[i] != SOURCE:
            self.room_freed(i, work)
        if self.kind[i] == CONVEYOR_NODE and not self.accumulating[i]:
            self.belt_state(i)
        return 0

    cdef int least_full(self, int i) noexcept:
        cdef int best = -1, t, room_at
        cdef double best_fill = 2.0, fill
        for t in self.targets[i]:
            room_at = self.transport_dest[t] if self.transport_dest[t] >= 0 else t
            if self.held[room_at] + self.reserved[room_at] < self.cap[room_at]:
                fill = (<double>self.held[room_at]) / (<double>self.cap[room_at]) if self.cap[room_at] < UNBOUNDED else 0.0
                if fill < best_fill:
                    best, best_fill = t, fill
        return best

    cdef void wait_for_room(self, int i, int d) noexcept:
        cdef int w
        for w in self.waiting[d]:
            if w == i:
                return
        self.waiting[d].push_back(i)

    cdef int accept(self, int d, double part, vector[int]& work) except -1:
        cdef int k = self.kind[d]
        cdef double now = self.now, due, since, belt_now, lead
        self.occupancy(d, 1)
        if k == STATION:
            self.account(d)
            if self.paused[d]:
                self.pending[d].push_back(part)
            else:
                self.start_job(d, part)
                self.activity(d)
        elif k == BUFFER:
            self.ready[d].push_back(Ready(part, self.pick(d)))
            work.push_back(d)
        elif k == CONVEYOR_NODE:
            if self.accumulating[d]:
                due = max(now + self.transit[d], self.last_due[d])
                self.last_due[d] = due
                self.schedule(due, CONVEYOR, d, 0, 0, part, 0.0)
            else:  # in belt time: wall time less the time the belt stood still
                since = self.stopped_since[d]
                belt_now = now - self.stopped_total[d] - (now - since if since >= 0 else 0.0)
                due = max(belt_now + self.transit[d], self.last_due[d])
                self.last_due[d] = due
                self.schedule(due + self.stopped_total[d], CONVEYOR, d, 0, 0, part, due)
        else:  # sink
            self.occupancy(d, -1)
            self.wip_change(-1)
            if self.counting:
                self.produced += 1
                self.departures += 1
                lead = self.now - part
                self.lead_times.push_back(lead)
                self.sojourn_sum += lead
        return 0

    cdef int pick(self, int i) except -2:
        cdef vector[int]* t = &self.targets[i]
        if t.size() == 1:
            return t[0][0]
        cdef vector[double]* cum = &self.route_cum[i]
        if cum.empty():
            return -1
        cdef double u = self.draw(i, UNIFORM_S)
        cdef size_t j
        for j in range(cum.size()):
            if u < cum[0][j]:
                return t[0][j]
        return t.back()

    cdef int room_freed(self, int i, vector[int]& work) except -1:
        cdef pair[int, double] waiting_agv
        cdef vector[int] waiters
        cdef Py_ssize_t k
        while not self.unloading[i].empty() and self.held[i] < self.cap[i]:
            waiting_agv = self.unloading[i].front()
            self.unloading[i].pop_front()
            self.reserved[i] -= 1
            self.unload(i, waiting_agv.first, waiting_agv.second, work)
        if not self.agv_queue.empty():
            self.dispatch()
        if not self.waiting[i].empty():
            waiters.swap(self.waiting[i])
            for k in range(<Py_ssize_t>waiters.size() - 1, -1, -1):  # the longest-waiting moves first
                work.push_back(waiters[k])
        return 0

    cdef void belt_state(self, int c) noexcept:
        cdef pair[double, double] item
        if not self.ready[c].empty() and self.stopped_since[c] < 0:
            self.stopped_since[c] = self.now
        elif self.ready[c].empty() and self.stopped_since[c] >= 0:
            self.stopped_total[c] += self.now - self.stopped_since[c]
            self.stopped_since[c] = -1.0
            for item in self.deferred[c]:
                self.schedule(item.first + self.stopped_total[c], CONVEYOR, c, 0, 0, item.second, item.first)
            self.deferred[c].clear()

    # -- AGVs ------------------------------------------------------------------------------------------------
    cdef double travel(self, int a, int b) except? -1.0:
        if a == b:
            return 0.0
        cdef unordered_map[long long, double].iterator it = self.travel_s.find(<long long>a * self.n + b)
        if it == self.travel_s.end():
            raise KeyError((a, b))
        return dereference(it).second

    cdef int dispatch(self) except -1:
        cdef pair[int, int] request
        cdef int a, t, vehicle, v
        cdef size_t k, best_k
        cdef Py_ssize_t servable
        cdef bint keep
        cdef double best, seconds
        while not self.agv_free.empty() and not self.agv_queue.empty():
            servable = self.first_servable()
            if servable < 0:
                return 0
            request = self.agv_queue[servable]
            self.agv_queue.erase(self.agv_queue.begin() + servable)
            a, t = request.first, request.second
            keep = not self.drains_without_agv[self.transport_dest[t]]
            if keep:
                self.reserved[self.transport_dest[t]] += 1
            best_k = 0
            best = self.travel(self.agv_loc[self.agv_free[0]], a)
            for k in range(1, self.agv_free.size()):  # the first nearest, as min() picks it
                seconds = self.travel(self.agv_loc[self.agv_free[k]], a)
                if seconds < best:
                    best, best_k = seconds, k
            vehicle = self.agv_free[best_k]
            self.agv_free.erase(self.agv_free.begin() + best_k)
            self.kept[vehicle] = keep
            self.agv_since[vehicle] = self.now
            self.schedule(self.now + self.travel(self.agv_loc[vehicle], a) + self.load_time, PICKUP, t, vehicle, a)
        return 0

    cdef Py_ssize_t first_servable(self) noexcept:
        cdef size_t k
        cdef int b
        for k in range(self.agv_queue.size()):
            b = self.transport_dest[self.agv_queue[k].second]
            if self.drains_without_agv[b] or self.held[b] + self.reserved[b] < self.cap[b]:
                return k
        return -1

    cdef int unload(self, int b, int vehicle, double part, vector[int]& work) except -1:
        if self.now > self.warmup:
            self.agv_busy += self.now - max(self.agv_since[vehicle], self.warmup)
        self.agv_loc[vehicle] = b
        self.agv_free.push_back(vehicle)
        self.accept(b, part, work)
        return 0

    # -- stations --------------------------------------------------------------------------------------------
    cdef int start_job(self, int s, double part) except -1:
        cdef double cycle = self.draw(s, CYCLE_S)
        cdef double setup = 0.0
        cdef Job job
        if self.streams[s * STREAMS + SETUP_S] is not None:
            if self.batch_count[s] % self.batch[s] == 0:
                setup = self.draw(s, SETUP_S)
            self.batch_count[s] += 1
        job.part, job.end, job.setup, job.epoch = part, self.now + cycle + setup, setup, 0
        cdef long long job_id = self.job_pool.size()  # never reused: a void completion may still name it
        self.job_pool.push_back(job)
        self.jobs[s].push_back(job_id)
        self.n_busy[s] += 1
        self.schedule(job.end, COMPLETE, s, job_id, 0)
        return 0

    cdef void remove_job(self, int s, long long job_id) noexcept:
        cdef vector[long long]* at = &self.jobs[s]
        cdef size_t k
        for k in range(at.size()):
            if at[0][k] == job_id:
                at.erase(at.begin() + k)
                return

    cdef void pause(self, int s) noexcept:
        cdef long long job_id
        self.account(s)
        self.paused[s] += 1
        if self.paused[s] == 1:
            for job_id in self.jobs[s]:
                self.job_pool[job_id].end -= self.now  # the time still to go
                self.job_pool[job_id].epoch += 1  # its scheduled completion is void
        self.activity(s)

    cdef int resume(self, int s) except -1:
        cdef long long job_id
        cdef vector[double] waiting_parts
        cdef double part
        self.account(s)
        self.paused[s] -= 1
        if self.paused[s] == 0:
            for job_id in self.jobs[s]:
                self.job_pool[job_id].end += self.now
                self.schedule(self.job_pool[job_id].end, COMPLETE, s, job_id, self.job_pool[job_id].epoch)
            waiting_parts.swap(self.pending[s])
            for part in waiting_parts:
                self.start_job(s, part)
        self.activity(s)
        return 0

    cdef int shift(self, bint going_off) except -1:
        cdef int s
        if going_off == self.off_shift:
            return 0
        for s in self.station_ids:
            self.account(s)
        self.off_shift = going_off
        for s in self.station_ids:
            if going_off:
                self.pause(s)
            else:
                self.resume(s)
        return 0

    # -- statistics --------------------------------------------------------------------------------------------
    cdef void account(self, int s) noexcept:
        cdef double dt = self.now - self.acc_t[s]
        cdef int servers = self.servers[s], busy, blocked
        if dt > 0.0:
            if self.down[s]:
                self.st_down[s] += dt * servers
            elif self.off_shift:
                self.st_off[s] += dt * servers
            else:
                busy, blocked = self.n_busy[s], self.n_block[s]
                self.st_working[s] += busy * dt
                self.st_blocked[s] += blocked * dt
                self.st_starved[s] += (servers - busy - blocked) * dt
        self.acc_t[s] = self.now

    cdef void activity(self, int s) noexcept:
        cdef bint is_active = self.down[s] or (self.n_busy[s] > 0 and self.paused[s] == 0)
        if is_active == (self.active[s] != 0):
            return
        self.active[s] = is_active
        if not is_active:
            self.inactive_since[s] = self.now
        elif self.active_since[s] < 0:
            self.active_since[s] = self.now
        elif self.now > self.inactive_since[s]:
            self.close_period(s, self.inactive_since[s])
            self.active_since[s] = self.now

    cdef void close_period(self, int s, double end) noexcept:
        self.st_active_time[s] += end - self.active_since[s]
        self.st_active_periods[s] += 1
        self.st_periods[s].push_back(pair[double, double](self.active_since[s], end))

    cdef void occupancy(self, int i, int delta) noexcept:
        self.occ_area[i] += self.held[i] * (self.now - self.occ_t[i])
        self.occ_t[i] = self.now
        self.held[i] += delta

    cdef void wip_change(self, int delta) noexcept:
        self.wip_area += self.wip * (self.now - self.wip_t)
        self.wip_t = self.now
        self.wip += delta

    cdef object finish(self):
        cdef int s, d, vehicle, v
        cdef bint free
        self.now = self.duration
        for s in self.station_ids:
            self.account(s)
            if self.active_since[s] >= 0:
                self.close_period(s, self.now if self.active[s] else self.inactive_since[s])
        for d in range(self.n):
            self.occupancy(d, 0)
        self.wip_change(0)
        for vehicle in range(self.fleet_size):
            free = False
            for v in self.agv_free:
                if v == vehicle:
                    free = True
            if not free and self.duration > self.warmup:
                self.agv_busy += self.duration - max(self.agv_since[vehicle], self.warmup)
        stats = {}
        for s in self.station_ids:
            stats[s] = StationStats(
                working=self.st_working[s], setup=self.st_setup[s], blocked=self.st_blocked[s],
                starved=self.st_starved[s], down=self.st_down[s], off_shift=self.st_off[s],
                processed=self.st_processed[s], scrapped=self.st_scrapped[s], reworked=self.st_reworked[s],
                failures=self.st_failures[s], active_time=self.st_active_time[s],
                active_periods=self.st_active_periods[s], periods=[(a, b) for a, b in self.st_periods[s]])
        return ReplicationResult(
            horizon=self.duration - self.warmup, produced=self.produced, scrapped=self.scrapped,
            lead_times=list(self.lead_times), all_sojourns=self.sojourn_sum, departures=self.departures,
            wip_area=self.wip_area, occupancy_area=list(self.occ_area), stations=stats, events=self.events,
            operations=self.operations, agv_busy=self.agv_busy, agv_fleet=self.fleet_size,
            planned_fraction=self.p.planned_fraction)


def simulate(p, cancelled=None):
    """One replication of a prepared model (:func:`viewer.sim.engine.prepare`)."""
    return Kernel(p, cancelled).run()


def bottleneck_shares(dict periods, double start, double end):
    """:func:`viewer.sim.runner.momentary_bottleneck_shares` as one sweep over the time axis with a heap of the
    covering periods (longest first, then the one that ends first, then the lower station): O(P log P) where
    the reference is O(stations x P)."""
    cdef vector[double] ps, pe
    cdef vector[int] pst
    cdef double a, b, left, width
    cdef int st
    for key in sorted(periods):
        st = key
        for a, b in periods[key]:
            if b > a:
                ps.push_back(a)
                pe.push_back(b)
                pst.push_back(st)
    if ps.size() == 0 or end <= start:
        return {}
    cdef double[::1] starts = np.asarray(ps, dtype=np.float64)
    cdef long long[::1] order = np.argsort(np.asarray(starts), kind="stable").astype(np.int64)
    cuts_all = np.unique(np.concatenate([[start, end], np.asarray(starts), np.asarray(pe, dtype=np.float64)]))
    cdef double[::1] cuts = np.ascontiguousarray(cuts_all[(cuts_all >= start) & (cuts_all <= end)])
    cdef priority_queue[pair[double, pair[double, int]]] heap  # (length, (-end, -station)): a max-heap
    cdef unordered_map[int, double] totals
    cdef size_t k = 0, count = ps.size()
    cdef Py_ssize_t c
    cdef long long j
    for c in range(cuts.shape[0] - 1):
        left = cuts[c]
        width = cuts[c + 1] - left
        while k < count and ps[order[k]] <= left:
            j = order[k]
            heap.push(pair[double, pair[double, int]](pe[j] - ps[j], pair[double, int](-pe[j], -pst[j])))
            k += 1
        while not heap.empty() and -heap.top().second.first <= left:
            heap.pop()  # ended: no longer covers the piece
        if not heap.empty():
            totals[-heap.top().second.second] += width
    return {st_: totals[st_] / (end - start) for st_ in sorted(periods) if totals.count(st_) and totals[st_] > 0}
