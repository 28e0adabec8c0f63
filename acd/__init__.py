"""Skills-based automatic call distribution (the ACD role).

Routes work items (voice calls, callbacks) to agents by skill, priority and wait. The pure
parts: the routing decision (``engine``), the agent and call state tables (``agent_state``,
``call_state``), reconciliation as a plan of repairs (``reconcile``), the live figures
(``figures``, with the formulas of ``cti.kpi``) and queueing theory (``erlang``, checked by
``simulation``). Around them: the service and its concerns (``core``, ``agent_control``,
``delivery``, ``feedback``), the PBX side (``asterisk``, ``gateway``), configuration
(``config``), persistence (``store``) and the HTTP API (``api``). See docs/architecture.md.
"""
