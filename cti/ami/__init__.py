"""The Asterisk Manager Interface: a sans-I/O core and a thin asyncio client.

messages   frozen messages (Greeting, Event, Response) with ordered, repeatable headers
actions    Action, validated against what manager.c accepts, and its serialisation
parser     bytes -> messages, with limits
protocol   AmiProtocol: ActionID allocation and correlation, list actions -> ActionResult
auth       the MD5 login as a generator
state      connection states as a transition table
backoff    reconnect delays
config     AmiClientConfig (settings) and AmiStats (counters)
session    one TCP session of the client and its actions in flight (internal)
client     AmiClient: session loop, keepalive, reconnect, resync hooks
fake       FakeAsterisk: a fake manager for tests
"""

from cti.ami.actions import Action, serialize_action
from cti.ami.auth import login_flow, md5_key
from cti.ami.client import AmiClient, OriginateResult, ResyncHook
from cti.ami.config import AmiClientConfig, AmiStats
from cti.ami.messages import Event, Greeting, Message, Response
from cti.ami.parser import AmiLimits, AmiParser
from cti.ami.protocol import ActionResult, AmiOutput, AmiProtocol, ConnectionClosed
from cti.ami.state import ConnectionState

__all__ = [
    "Action",
    "ActionResult",
    "AmiClient",
    "AmiClientConfig",
    "AmiLimits",
    "AmiOutput",
    "AmiParser",
    "AmiProtocol",
    "AmiStats",
    "ConnectionClosed",
    "ConnectionState",
    "Event",
    "Greeting",
    "Message",
    "OriginateResult",
    "Response",
    "ResyncHook",
    "login_flow",
    "md5_key",
    "serialize_action",
]
