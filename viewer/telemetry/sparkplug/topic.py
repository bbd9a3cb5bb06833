"""Sparkplug B topic names: ``spBv1.0/GROUP/TYPE/EDGE_NODE[/DEVICE]`` parsed and formatted, checked."""

from __future__ import annotations

import enum
from dataclasses import dataclass

NAMESPACE = "spBv1.0"
BDSEQ_METRIC = "bdSeq"
REBIRTH_METRIC = "Node Control/Rebirth"


class MessageType(enum.StrEnum):
    """The Sparkplug B message types that may appear in a topic."""

    NBIRTH = "NBIRTH"
    NDEATH = "NDEATH"
    DBIRTH = "DBIRTH"
    DDEATH = "DDEATH"
    NDATA = "NDATA"
    DDATA = "DDATA"
    NCMD = "NCMD"
    DCMD = "DCMD"
    STATE = "STATE"


_DEVICE_TYPES = frozenset({MessageType.DBIRTH, MessageType.DDEATH, MessageType.DDATA, MessageType.DCMD})
_MESSAGE_TYPES = {t.value: t for t in MessageType}


# --------------------------------------------------------------------------------------------------
# Topics
# --------------------------------------------------------------------------------------------------


class SparkplugTopicError(ValueError):
    """A topic that is not a Sparkplug B topic; the message says which part is wrong."""


@dataclass(frozen=True, slots=True)
class SparkplugTopic:
    """A parsed ``spBv1.0/<group_id>/<message_type>/<edge_node_id>[/<device_id>]`` topic.

    ``STATE`` topics (``spBv1.0/STATE/<host_id>``, Sparkplug 3.0) have empty group and edge node
    ids and carry ``host_id`` instead.
    """

    group_id: str
    message_type: MessageType
    edge_node_id: str
    device_id: str | None = None
    host_id: str | None = None


def _check_id(kind: str, value: str, topic: str) -> None:
    if not value:
        raise SparkplugTopicError(f"{topic!r}: empty {kind}")
    # '+' and '#' make a subscription filter, not a topic a message can arrive on.
    if "+" in value or "#" in value:
        raise SparkplugTopicError(f"{topic!r}: {kind} {value!r} contains an MQTT wildcard")


def parse_topic(topic: str) -> SparkplugTopic:
    """Split a Sparkplug B topic into its parts.

    Parameters
    ----------
    topic
        An MQTT topic name, e.g. ``spBv1.0/Plant1/DDATA/Line2/ST20``.

    Returns
    -------
    SparkplugTopic
        The group, message type, edge node and (for D* messages) device ids.

    Raises
    ------
    SparkplugTopicError
        When the topic is outside the ``spBv1.0/`` namespace, names an unknown message type, has
        the wrong number of levels for its message type, or has an empty or wildcard id.
    """
    if not isinstance(topic, str):
        raise SparkplugTopicError(f"topic must be a str, not {type(topic).__name__}")
    parts = topic.split("/")
    if parts[0] != NAMESPACE:
        raise SparkplugTopicError(f"{topic!r}: not in the {NAMESPACE}/ namespace")
    if len(parts) == 3 and parts[1] == "STATE":
        _check_id("host id", parts[2], topic)
        return SparkplugTopic("", MessageType.STATE, "", None, parts[2])
    if len(parts) not in (4, 5):
        raise SparkplugTopicError(
            f"{topic!r}: expected {NAMESPACE}/<group_id>/<message_type>/<edge_node_id>[/<device_id>], "
            f"got {len(parts)} levels"
        )
    message_type = _MESSAGE_TYPES.get(parts[2])
    if message_type is None or message_type is MessageType.STATE:
        known = ", ".join(t.value for t in MessageType if t is not MessageType.STATE)
        raise SparkplugTopicError(f"{topic!r}: unknown message type {parts[2]!r} (expected one of {known})")
    _check_id("group id", parts[1], topic)
    _check_id("edge node id", parts[3], topic)
    if message_type in _DEVICE_TYPES:
        if len(parts) != 5:
            raise SparkplugTopicError(f"{topic!r}: {message_type} needs a device id as the fifth level")
        _check_id("device id", parts[4], topic)
        return SparkplugTopic(parts[1], message_type, parts[3], parts[4])
    if len(parts) != 4:
        raise SparkplugTopicError(f"{topic!r}: {message_type} is a node message and takes no device id")
    return SparkplugTopic(parts[1], message_type, parts[3])


def format_topic(
    group_id: str, message_type: MessageType | str, edge_node_id: str, device_id: str | None = None
) -> str:
    """Build a Sparkplug B topic name, checked with :func:`parse_topic`.

    Parameters
    ----------
    group_id, edge_node_id, device_id
        The ids; ``device_id`` only for DBIRTH, DDEATH, DDATA and DCMD.
    message_type
        A :class:`MessageType` (or its name) other than ``STATE``.

    Returns
    -------
    str
        ``spBv1.0/<group_id>/<message_type>/<edge_node_id>[/<device_id>]``.
    """
    levels = [NAMESPACE, group_id, str(message_type), edge_node_id]
    if device_id is not None:
        levels.append(device_id)
    topic = "/".join(levels)
    if any("/" in level for level in levels[1:]):
        raise SparkplugTopicError(f"{topic!r}: an id contains '/'")
    parse_topic(topic)
    return topic


