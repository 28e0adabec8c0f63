"""Agent control: what an agent (or a supervisor) asks through the API, checked and applied
through the agent-state table (``acd.agent_state``). Refusals are ``acd.errors`` values that
carry a message only; the HTTP layer decides the status."""

from __future__ import annotations

from acd.agent_state import AgentEvent, AgentStatus, IllegalAgentTransition
from acd.core import AcdCore
from acd.errors import AgentConflict, InvalidAgentRequest, UnknownAgent
from acd.runtime import AgentRuntime
from cti.phones import is_endpoint

__all__ = ["AgentControl"]


class AgentControl(AcdCore):
    def _agent(self, agent_id: str) -> AgentRuntime:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(f"no agent {agent_id!r}")
        return agent

    def login(self, agent_id: str, endpoint: str | None = None) -> AgentRuntime:
        agent = self._agent(agent_id)
        phone = (endpoint or agent.config.endpoint).strip()
        if not is_endpoint(phone):
            raise InvalidAgentRequest(f"phone endpoint {phone!r} is not like PJSIP/agent1001")
        taken = [
            other.agent_id
            for other in self.agents.values()
            if other is not agent
            and other.status is not AgentStatus.LOGGED_OUT
            and (other.endpoint or other.config.endpoint) == phone
        ]
        if taken:
            raise AgentConflict(f"phone {phone} is in use by agent {taken[0]}")
        self._control(agent, AgentEvent.LOGIN)
        agent.endpoint = phone
        self._save(agent)
        return agent

    def ready(self, agent_id: str) -> AgentRuntime:
        agent = self._agent(agent_id)
        now = self._clock()
        if agent.status is AgentStatus.WRAP_UP:
            return self.end_wrap_up(agent_id)
        self._control(agent, AgentEvent.READY)
        agent.idle_since = now
        self._save(agent)
        self.kick()
        return agent

    def not_ready(self, agent_id: str, reason: str) -> AgentRuntime:
        agent = self._agent(agent_id)
        if reason not in self.config.not_ready_reasons:
            known = ", ".join(self.config.not_ready_reasons)
            raise InvalidAgentRequest(f"unknown not-ready reason {reason!r} (one of: {known})")
        if agent.status is AgentStatus.WRAP_UP:
            self._leave_wrap(agent, AgentEvent.NOT_READY, self._clock(), reason)
            self._save(agent)
            return agent
        self._control(agent, AgentEvent.NOT_READY, reason)
        return agent

    def logout(self, agent_id: str) -> AgentRuntime:
        agent = self._agent(agent_id)
        if agent.status is AgentStatus.WRAP_UP:
            self._leave_wrap(agent, AgentEvent.LOGOUT, self._clock())
            self._save(agent)
            return agent
        self._control(agent, AgentEvent.LOGOUT)
        return agent

    def end_wrap_up(self, agent_id: str) -> AgentRuntime:
        agent = self._agent(agent_id)
        if agent.status is not AgentStatus.WRAP_UP:
            raise AgentConflict(f"agent {agent_id} is {agent.status.value}, not in wrap-up")
        self._leave_wrap(agent, AgentEvent.END_WRAP_UP_EARLY, self._clock())
        self._save(agent)
        self.kick()
        return agent

    def _control(self, agent: AgentRuntime, event: AgentEvent, reason: str = "") -> None:
        try:
            self._apply(agent, event, self._clock(), reason)
        except IllegalAgentTransition as exc:
            raise AgentConflict(str(exc)) from exc
        self._save(agent)
