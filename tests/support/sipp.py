"""Real SIP callers and phones for tests, played by SIPp: the runtime module ``cti.sipp``
(shared with the demo), re-exported under the names the tests have always imported.

Scenarios are the templates in ``config/sipp/``; see ``cti.sipp`` for how they are rendered,
run and logged.
"""

from __future__ import annotations

from cti.sipp import (
    DTMF_DIR,
    SCENARIO_DIR,
    SippProcess,
    SippResult,
    dtmf_block,
    dtmf_pcap,
    free_media_port,
    free_udp_port,
    render_scenario,
    require_sipp,
    run_caller,
    run_hangup_caller,
    start_caller,
    start_hangup_caller,
    start_phone,
    start_phone_process,
)

__all__ = [
    "DTMF_DIR",
    "SCENARIO_DIR",
    "SippProcess",
    "SippResult",
    "dtmf_block",
    "dtmf_pcap",
    "free_media_port",
    "free_udp_port",
    "render_scenario",
    "require_sipp",
    "run_caller",
    "run_hangup_caller",
    "start_caller",
    "start_hangup_caller",
    "start_phone",
    "start_phone_process",
]
