"""Browsing an OPC UA server's address space for the editor's "Bind OPC UA node…" dialog (no Qt here).

:class:`OpcUaBrowser` holds one session made by :func:`~viewer.telemetry.opcua_client.make_client` (the layout's
security, user and trust checks: one place builds clients) on its own thread and event loop, as
:class:`~viewer.telemetry.opcua_client.OpcUaClient` does. Its public calls are synchronous and bounded in time, so
a dialog can run each in a worker thread and hand the answer to the GUI::

    GUI thread --(worker thread)--> OpcUaBrowser.children() --run_coroutine_threadsafe--> browser's event loop
                                                              <-- result or BrowseError ---

- **Lazy**: :meth:`OpcUaBrowser.children` browses one level (hierarchical references: Organizes, HasComponent,
  HasProperty...), in batches within the server's ``MaxNodesPerBrowse``/``MaxNodesPerRead``, following
  continuation points; variables come with data type, value rank and array dimensions.
- **Search** (:meth:`OpcUaBrowser.search`): breadth-first from the Objects folder, bounded by depth, node count and
  time, cancellable between requests, reporting progress; each match carries its browse path.
- **Read-only**: Browse, BrowseNext, Read and TranslateBrowsePathsToNodeIds; never a write, never a method call.
- **Errors** are :class:`BrowseError` with a sentence (``describe_opcua_failure`` for connection failures).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from viewer.telemetry.mqtt_client import SettingsError
from viewer.telemetry.opcua_client import OpcUaSettings, describe_opcua_failure, make_client

OBJECTS_FOLDER = "i=85"
HIERARCHICAL_REFERENCES = 33  # i=33: Organizes, HasComponent, HasProperty... and their subtypes
DEFAULT_PER_REQUEST = 500  # nodes per Browse or Read where the server states no operation limit
MAX_PATH_STEPS = 32  # a browse path deeper than this is not looked for
_BROWSE_NAME = re.compile(r"\d{1,5}:.+", re.DOTALL)  # as the layout's validation has it
_NO_NODE = frozenset({"BadNodeIdUnknown", "BadNodeIdInvalid"})
NUMERIC_TYPES = frozenset({"Double", "Float", "Int16", "Int32", "Int64", "UInt16", "UInt32", "UInt64", "Byte",
                           "SByte", "Number", "Integer", "UInteger", "Decimal"})


class BrowseError(Exception):
    """A browse, read or connection that failed; the message is a sentence for the dialog."""


@dataclass(frozen=True)
class NodeInfo:
    """One node as the browser shows it.

    ``value_rank`` follows the standard: -1 scalar, 0 one or more dimensions, 1 one dimension, n n dimensions,
    -2 any, -3 scalar or one dimension. ``has_children`` is None where it is not known before browsing (objects).
    """

    node_id: str  # "ns=2;s=Line1.ST10.State"
    browse_name: str  # with its namespace index: "2:State"
    display_name: str
    node_class: str  # "Object", "Variable", "View", ...
    data_type: str | None = None  # variables: "Double", "String", a server's own type's browse name
    value_rank: int | None = None
    array_dimensions: tuple[int, ...] | None = None
    readable: bool = True  # variables: the access level allows reading the current value
    has_children: bool | None = None

    @property
    def is_variable(self) -> bool:
        """A variable (a value can be read and bound)."""
        return self.node_class == "Variable"

    @property
    def is_array(self) -> bool:
        """The value is an array by its value rank (0 or more dimensions)."""
        return self.value_rank is not None and self.value_rank >= 0

    @property
    def is_numeric_array(self) -> bool:
        """An array of numbers: what a robot's joints binding takes (a Double[6] of angles)."""
        return self.is_array and self.data_type in NUMERIC_TYPES

    def shape(self) -> str:
        """The data type with its shape: ``Double``, ``Double[6]``, ``Double[]``, ``Int32[3,4]``."""
        if not self.is_variable:
            return self.node_class
        name = self.data_type or "?"
        rank = self.value_rank
        dims = self.array_dimensions
        if rank is None or rank == -1:
            return name
        if rank == -2:
            return f"{name} (scalar or array)"
        if rank == -3:
            return f"{name} (scalar or one dimension)"
        if dims and any(dims):
            return f"{name}[{','.join(str(d) if d else '' for d in dims)}]"
        return f"{name}[{',' * max(rank - 1, 0)}]"

    def value_rank_text(self) -> str:
        """The value rank in words."""
        return {None: "—", -3: "-3: scalar or one dimension", -2: "-2: any", -1: "-1: scalar",
                0: "0: one or more dimensions", 1: "1: one dimension"}.get(
                    self.value_rank, f"{self.value_rank}: {self.value_rank} dimensions")


@dataclass(frozen=True)
class NodeValue:
    """A variable's current value as the server read it."""

    value: Any  # plain Python: numbers, text, lists for arrays
    status: str  # "Good", "BadSensorFailure", "UncertainLastUsableValue", ...
    source_time: float | None  # epoch seconds
    server_time: float | None
    variant_type: str | None = None  # "Double", "String", ...

    @property
    def good(self) -> bool:
        """The status code is Good."""
        return self.status == "Good"

    def text(self, limit: int = 240) -> str:
        """The value as one line, shortened to ``limit`` characters."""
        if isinstance(self.value, list):
            shown = "[" + ", ".join(_short(v) for v in self.value) + "]"
        else:
            shown = _short(self.value)
        return shown if len(shown) <= limit else shown[:limit - 1] + "…"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class SearchMatch:
    """A node whose name matched, with its browse path from the Objects folder."""

    node: NodeInfo
    browse_path: tuple[str, ...]


@dataclass(frozen=True)
class SearchResult:
    """What a search found and how far it went."""

    matches: tuple[SearchMatch, ...]
    visited: int  # nodes looked at
    stopped: str  # "" (the whole space within max_depth was searched), "cancelled", "node limit", "time limit",
    #               "match limit"

    @property
    def complete(self) -> bool:
        """Every node within the depth bound was looked at."""
        return self.stopped == ""


class OpcUaBrowser:
    """A read-only browsing session on one OPC UA server (see the module docstring).

    ``connect`` and every call block the calling thread (never call them on the GUI thread) for at most
    ``call_timeout_s`` (a search: its own ``time_limit_s``); a failure is a :class:`BrowseError`.
    """

    def __init__(self, settings: OpcUaSettings, call_timeout_s: float | None = None) -> None:
        self.settings = settings
        self.call_timeout_s = call_timeout_s if call_timeout_s is not None else max(10.0, 3 * settings.timeout_s)
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lost: str | None = None  # why the session ended, once it did
        self._per_browse = DEFAULT_PER_REQUEST
        self._per_read = DEFAULT_PER_REQUEST
        self._type_names: dict[str, str] = {}  # data type NodeId -> its name
        self._lock = threading.RLock()  # connect and close, one at a time

    # --- the session -------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """A session is open and has not been lost."""
        return self._client is not None and self._lost is None

    @property
    def lost_reason(self) -> str | None:
        """Why the session ended (the server stopped answering...), or None."""
        return self._lost

    def connect(self) -> None:
        """Open the session (the layout's security and user); :class:`BrowseError` saying why it failed."""
        with self._lock:
            self.close()
            try:
                password = self.settings.password()
            except SettingsError as exc:
                raise BrowseError(str(exc)) from None
            self._start_loop()
            self._lost = None
            try:
                self._client = self._run(self._connect(password), self.call_timeout_s + self.settings.timeout_s)
            except BrowseError:
                self._stop_loop()
                raise

    def close(self) -> None:
        """End the session and the thread (quietly: a dead server is closed anyway); waits for a connect that
        runs in another thread, so the session it opens is closed too."""
        with self._lock:
            client, self._client = self._client, None
            if client is not None and self._loop is not None:
                with contextlib.suppress(Exception):
                    self._run(asyncio.wait_for(client.disconnect(), 2.0), 3.0)
            self._stop_loop()

    def _start_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=_serve_loop, args=(loop,), name="opcua-browser", daemon=True)
        self._thread.start()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5.0)

    async def _connect(self, password: str | None) -> Any:
        client = await make_client(self.settings, password)

        async def on_lost(exc: Exception) -> None:
            self._lost = describe_opcua_failure(exc, self.settings)

        client.connection_lost_callback = on_lost
        await client.connect()
        self._per_browse, self._per_read = await _operation_limits(client)
        return client

    def _run(self, coroutine: Coroutine[Any, Any, Any], timeout: float) -> Any:
        """Run a coroutine on the browser's loop, waiting at most ``timeout`` s; failures as BrowseError."""
        loop = self._loop
        if loop is None:
            coroutine.close()
            raise BrowseError(f"not connected to {self.settings.endpoint}")
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(timeout)
        except BrowseError:
            raise
        except Exception as exc:  # whatever the server or the network did: said in words
            if isinstance(exc, TimeoutError) and not future.done():  # our bound, not the request's own timeout
                future.cancel()
                raise BrowseError(f"no answer from {self.settings.endpoint} within {timeout:g} s: check the "
                                  f"endpoint, the network and the firewall") from None
            if isinstance(exc, ConnectionError | OSError):
                self._lost = describe_opcua_failure(exc, self.settings)
            raise BrowseError(describe_opcua_failure(exc, self.settings)) from None

    def _session(self) -> Any:
        if self._client is None:
            raise BrowseError(f"not connected to {self.settings.endpoint}")
        if self._lost is not None:
            raise BrowseError(f"the session with {self.settings.endpoint} ended ({self._lost}): connect again")
        return self._client

    # --- calls (any thread but the browser's own) -----------------------------------------------------
    def children(self, node_id: str = OBJECTS_FOLDER) -> list[NodeInfo]:
        """The nodes one level below ``node_id`` (objects, variables, views), in the server's order."""
        client = self._session()
        return self._run(self._children(client, _node_id(node_id)), self.call_timeout_s)

    def node(self, node_id: str) -> NodeInfo:
        """One node's own attributes (a NodeId typed by the user, say)."""
        client = self._session()
        return self._run(self._node(client, _node_id(node_id)), self.call_timeout_s)

    def read_value(self, node_id: str) -> NodeValue:
        """A variable's current value with its status code (a Read, never a subscription)."""
        client = self._session()
        return self._run(self._read_value(client, _node_id(node_id)), self.call_timeout_s)

    def browse_path(self, node_id: str) -> tuple[str, ...]:
        """The browse names from the Objects folder to the node (``("2:Line1", "2:ST10", "2:State")``), checked
        by translating it back: a path that leads to another node (siblings with one browse name) is refused."""
        client = self._session()
        return self._run(self._browse_path(client, _node_id(node_id)), self.call_timeout_s)

    def resolve_browse_path(self, browse_path: tuple[str, ...] | list[str]) -> str:
        """The NodeId a browse path from the Objects folder leads to (the server translates it)."""
        client = self._session()
        return self._run(self._translate(client, tuple(browse_path)), self.call_timeout_s)

    def search(self, text: str, *, max_depth: int = 10, max_nodes: int = 5000, max_matches: int = 200,
               time_limit_s: float = 60.0, cancelled: Callable[[], bool] | None = None,
               progress: Callable[[int, int], None] | None = None) -> SearchResult:
        """Nodes whose browse or display name contains ``text`` (case-insensitive), breadth-first from the
        Objects folder down to ``max_depth`` levels, looking at no more than ``max_nodes`` nodes.

        Parameters
        ----------
        cancelled
            Asked between requests; True stops the search with what it found (``stopped == "cancelled"``).
        progress
            Called with (nodes looked at, matches) after each request, on the browser's thread.
        """
        needle = text.strip().casefold()
        if not needle:
            raise BrowseError("type part of a node's name to search for")
        client = self._session()
        bounds = _SearchBounds(max_depth, max_nodes, max_matches, time.monotonic() + time_limit_s,
                               cancelled or (lambda: False), progress or (lambda _v, _m: None))
        return self._run(self._search(client, needle, bounds), time_limit_s + self.call_timeout_s)

    # --- the requests (the browser's loop) -----------------------------------------------------------
    async def _browse(self, client: Any, node_ids: list[Any], inverse: bool = False) -> list[tuple[Any, list[Any]]]:
        """(status code, references) per node: hierarchical references to objects, variables and views."""
        from asyncua import ua

        mask = ua.NodeClass.Object | ua.NodeClass.Variable | ua.NodeClass.View
        out: list[tuple[Any, list[Any]]] = []
        for chunk in _chunks(node_ids, self._per_browse):
            params = ua.BrowseParameters()
            params.View = ua.ViewDescription()
            params.RequestedMaxReferencesPerNode = 0
            params.NodesToBrowse = [ua.BrowseDescription(
                NodeId=n, BrowseDirection=ua.BrowseDirection.Inverse if inverse else ua.BrowseDirection.Forward,
                ReferenceTypeId=ua.NodeId(HIERARCHICAL_REFERENCES), IncludeSubtypes=True,
                NodeClassMask=0 if inverse else int(mask), ResultMask=int(ua.BrowseResultMask.All))
                for n in chunk]
            for result in await client.uaclient.browse(params):
                references = list(result.References or [])
                point = result.ContinuationPoint
                while point:  # the server hands long lists in parts
                    more = ua.BrowseNextParameters()
                    more.ContinuationPoints = [point]
                    more.ReleaseContinuationPoints = False
                    (following,) = await client.uaclient.browse_next(more)
                    references += list(following.References or [])
                    point = following.ContinuationPoint
                out.append((result.StatusCode, references))
        return out

    def _check(self, status: Any, node_id: Any, doing: str) -> None:
        if status is None or status.is_good():
            return
        if status.name in _NO_NODE:
            raise BrowseError(f"the server at {self.settings.endpoint} has no node {node_id.to_string()} "
                              f"({status.name})")
        raise BrowseError(f"the server refused {doing} {node_id.to_string()}: {status.name}")

    async def _read(self, client: Any, requests: list[tuple[Any, Any]]) -> list[Any]:
        """DataValues of (NodeId, attribute) pairs, in batches within MaxNodesPerRead."""
        from asyncua import ua

        values: list[Any] = []
        for chunk in _chunks(requests, self._per_read):
            params = ua.ReadParameters()
            params.NodesToRead = [ua.ReadValueId(NodeId=n, AttributeId=attribute) for n, attribute in chunk]
            values += await client.uaclient.read(params)
        return values

    async def _children(self, client: Any, node_id: Any) -> list[NodeInfo]:
        ((status, references),) = await self._browse(client, [node_id])
        self._check(status, node_id, "browsing")
        return await self._describe(client, _unique(references), look_ahead=True)

    async def _describe(self, client: Any, references: list[Any], look_ahead: bool) -> list[NodeInfo]:
        """NodeInfos of browsed references; variables' data type, value rank, dimensions and access level read
        in one batch, and (``look_ahead``) whether variables have children of their own (structures do)."""
        from asyncua import ua

        variables = [r.NodeId for r in references if r.NodeClass == ua.NodeClass.Variable]
        attributes = (ua.AttributeIds.DataType, ua.AttributeIds.ValueRank, ua.AttributeIds.ArrayDimensions,
                      ua.AttributeIds.AccessLevel)
        read = await self._read(client, [(n, a) for n in variables for a in attributes])
        facts = {variables[i].to_string(): read[4 * i:4 * i + 4] for i in range(len(variables))}
        below: dict[str, bool] = {}
        if look_ahead and variables:
            for n, (_status, refs) in zip(variables, await self._browse(client, variables), strict=True):
                below[n.to_string()] = bool(refs)
        out = []
        for ref in references:
            key = ref.NodeId.to_string()
            cls = ua.NodeClass(ref.NodeClass).name
            if key not in facts:
                out.append(NodeInfo(key, ref.BrowseName.to_string(), ref.DisplayName.Text or ref.BrowseName.Name,
                                    cls, has_children=None))
                continue
            data_type, rank, dims, access = (_good_value(v) for v in facts[key])
            out.append(NodeInfo(
                key, ref.BrowseName.to_string(), ref.DisplayName.Text or ref.BrowseName.Name, cls,
                data_type=await self._type_name(client, data_type) if data_type is not None else None,
                value_rank=int(rank) if rank is not None else None,
                array_dimensions=tuple(int(d) for d in dims) if dims else None,
                readable=access is None or bool(int(access) & ua.AccessLevel.CurrentRead.mask),
                has_children=below.get(key)))
        return out

    async def _type_name(self, client: Any, data_type: Any) -> str:
        """A data type's name: the standard's for namespace 0, else its node's browse name (cached)."""
        from asyncua import ua

        key = data_type.to_string()
        if key not in self._type_names:
            name = ua.ObjectIdNames.get(data_type.Identifier) if data_type.NamespaceIndex == 0 else None
            if name is None:
                (value,) = await self._read(client, [(data_type, ua.AttributeIds.BrowseName)])
                browse = _good_value(value)
                name = browse.Name if browse is not None else key
            self._type_names[key] = name
        return self._type_names[key]

    async def _node(self, client: Any, node_id: Any) -> NodeInfo:
        from asyncua import ua

        browse_name, display_name, node_class = await self._read(client, [
            (node_id, ua.AttributeIds.BrowseName), (node_id, ua.AttributeIds.DisplayName),
            (node_id, ua.AttributeIds.NodeClass)])
        self._check(browse_name.StatusCode, node_id, "reading")
        ref = ua.ReferenceDescription(NodeId=node_id, BrowseName=browse_name.Value.Value,
                                      DisplayName=display_name.Value.Value, NodeClass=node_class.Value.Value)
        (info,) = await self._describe(client, [ref], look_ahead=True)
        return info

    async def _read_value(self, client: Any, node_id: Any) -> NodeValue:
        from asyncua import ua

        (data_value,) = await self._read(client, [(node_id, ua.AttributeIds.Value)])
        status = data_value.StatusCode
        name = "Good" if status is None or status.value == 0 else status.name
        if name in _NO_NODE:
            raise BrowseError(f"the server at {self.settings.endpoint} has no node {node_id.to_string()} ({name})")
        if name == "BadAttributeIdInvalid":
            raise BrowseError(f"{node_id.to_string()} is not a variable: it has no value to read ({name})")
        variant = data_value.Value
        value = variant.Value if variant is not None else None
        return NodeValue(_plain(value), name, _epoch(data_value.SourceTimestamp), _epoch(data_value.ServerTimestamp),
                         variant.VariantType.name if variant is not None and variant.VariantType else None)

    async def _browse_path(self, client: Any, node_id: Any) -> tuple[str, ...]:
        """Breadth-first up the inverse hierarchical references to the Objects folder: the shortest path."""
        from asyncua import ua

        objects = ua.NodeId(ua.ObjectIds.ObjectsFolder)
        (name,) = await self._read(client, [(node_id, ua.AttributeIds.BrowseName)])
        self._check(name.StatusCode, node_id, "reading")
        if node_id == objects:
            return ()
        frontier: list[tuple[Any, tuple[str, ...]]] = [(node_id, (name.Value.Value.to_string(),))]
        seen = {node_id.to_string()}
        for _step in range(MAX_PATH_STEPS):
            if not frontier:
                break
            following = []
            for (_current, path), (_status, parents) in zip(
                    frontier, await self._browse(client, [n for n, _p in frontier], inverse=True), strict=True):
                for parent in parents:
                    if parent.NodeId == objects:
                        return await self._checked_path(client, path, current=node_id)
                    key = parent.NodeId.to_string()
                    if key not in seen:
                        seen.add(key)
                        following.append((parent.NodeId, (parent.BrowseName.to_string(), *path)))
            frontier = following
        raise BrowseError(f"{node_id.to_string()} is not below the Objects folder: it has no browse path (bind it "
                          f"by its NodeId)")

    async def _checked_path(self, client: Any, path: tuple[str, ...], current: Any) -> tuple[str, ...]:
        found = await self._translate(client, path)
        if found != current.to_string():
            raise BrowseError(f"the browse path {'/'.join(path)} leads to {found}, not to {current.to_string()} "
                              f"(siblings share a browse name): bind it by its NodeId")
        return path

    async def _translate(self, client: Any, path: tuple[str, ...]) -> str:
        from asyncua import ua

        if not path:
            return OBJECTS_FOLDER
        if not all(_BROWSE_NAME.fullmatch(step) for step in path):
            raise BrowseError(f"{'/'.join(path)} is not a browse path: each step is 'NAMESPACE_INDEX:Name'")
        try:
            elements = [ua.RelativePathElement(  # IsInverse: asyncua's default is True
                ReferenceTypeId=ua.NodeId(HIERARCHICAL_REFERENCES), IsInverse=False, IncludeSubtypes=True,
                TargetName=ua.QualifiedName.from_string(step))
                        for step in path]
        except (ValueError, ua.UaError):
            raise BrowseError(f"{'/'.join(path)} is not a browse path: each step is 'NAMESPACE_INDEX:Name'") from None
        browse = ua.BrowsePath(StartingNode=ua.NodeId(ua.ObjectIds.ObjectsFolder),
                               RelativePath=ua.RelativePath(Elements=elements))
        (result,) = await client.uaclient.translate_browsepaths_to_nodeids([browse])
        if not result.StatusCode.is_good() or not result.Targets:
            raise BrowseError(f"the browse path {'/'.join(path)} is not on {self.settings.endpoint} "
                              f"({result.StatusCode.name})")
        target = result.Targets[0].TargetId  # an ExpandedNodeId: the NodeId part names the node on this server
        return ua.NodeId(target.Identifier, target.NamespaceIndex, target.NodeIdType).to_string()

    async def _search(self, client: Any, needle: str, bounds: _SearchBounds) -> SearchResult:
        from asyncua import ua

        frontier: list[tuple[Any, tuple[str, ...]]] = [(ua.NodeId(ua.ObjectIds.ObjectsFolder), ())]
        seen = {OBJECTS_FOLDER}
        found: list[tuple[Any, tuple[str, ...]]] = []
        stopped = ""
        for _depth in range(bounds.max_depth):
            following: list[tuple[Any, tuple[str, ...]]] = []
            for chunk in _chunks(frontier, self._per_browse):
                stopped = bounds.why_stop(len(seen) - 1, len(found))
                if stopped:
                    break
                answers = await self._browse(client, [n for n, _p in chunk])
                for (_parent, path), (_status, references) in zip(chunk, answers, strict=True):
                    for ref in references:
                        key = ref.NodeId.to_string()
                        if key in seen:
                            continue
                        if len(seen) - 1 >= bounds.max_nodes:
                            stopped = "node limit"
                            break
                        seen.add(key)
                        step = (*path, ref.BrowseName.to_string())
                        names = (ref.BrowseName.Name or "", ref.DisplayName.Text or "")
                        if any(needle in name.casefold() for name in names):
                            if len(found) >= bounds.max_matches:
                                stopped = "match limit"
                                break
                            found.append((ref, step))
                        following.append((ref.NodeId, step))
                    if stopped:
                        break
                bounds.progress(len(seen) - 1, len(found))
                if stopped:
                    break
            if stopped or not following:
                break
            frontier = following
        infos = await self._describe(client, [ref for ref, _p in found], look_ahead=False)
        return SearchResult(tuple(SearchMatch(info, path) for info, (_r, path) in zip(infos, found, strict=True)),
                            len(seen) - 1, stopped)


@dataclass
class _SearchBounds:
    max_depth: int
    max_nodes: int
    max_matches: int
    deadline: float  # time.monotonic()
    cancelled: Callable[[], bool]
    progress: Callable[[int, int], None]

    def why_stop(self, visited: int, matches: int) -> str:
        """Why the search stops before its next request ("" to go on)."""
        if self.cancelled():
            return "cancelled"
        if visited >= self.max_nodes:
            return "node limit"
        if matches >= self.max_matches:
            return "match limit"
        if time.monotonic() > self.deadline:
            return "time limit"
        return ""


def _serve_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The browser's thread: its loop until stopped, then asyncua's leftover tasks cancelled and the loop closed."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    finally:
        loop.close()


async def _operation_limits(client: Any) -> tuple[int, int]:
    """The server's MaxNodesPerBrowse and MaxNodesPerRead (0 or unreadable: DEFAULT_PER_REQUEST)."""
    from asyncua import ua

    limits = []
    for ident in (ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse,
                  ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead):
        try:
            value = int(await client.get_node(ua.NodeId(ident, 0)).read_value())
        except Exception:  # optional in the standard: keep to the default
            value = 0
        limits.append(min(value, DEFAULT_PER_REQUEST) if value > 0 else DEFAULT_PER_REQUEST)
    return limits[0], limits[1]


def _node_id(text: str) -> Any:
    from asyncua import ua

    try:
        return ua.NodeId.from_string(text.strip())
    except (ValueError, ua.UaError, AttributeError, RuntimeError):
        raise BrowseError(f"{text!r} is not a NodeId (e.g. 'ns=2;s=Line1.ST10.State' or 'ns=2;i=1001')") from None




def _good_value(data_value: Any) -> Any:
    if data_value.StatusCode is not None and not data_value.StatusCode.is_good():
        return None
    return data_value.Value.Value if data_value.Value is not None else None


def _unique(references: list[Any]) -> list[Any]:
    """One entry per node (a node may be referenced twice, e.g. by Organizes and HasComponent)."""
    seen: set[str] = set()
    out = []
    for ref in references:
        key = ref.NodeId.to_string()
        if key not in seen:
            seen.add(key)
            out.append(ref)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def _epoch(moment: Any) -> float | None:
    return moment.timestamp() if moment is not None else None


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]
