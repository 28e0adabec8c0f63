"""What the agent's screen shows the moment a call is offered: who calls, their history, what
they did in the IVR.

``ScreenPops.compose`` gathers, for one offered call:

- the IVR's part, from ``IvrFinished`` (kept per call by ``remember_ivr``, bounded): flow,
  keys, the nodes walked and the collected variables, which the IVR has ALREADY masked where
  the flow marks them sensitive (a card number is never in memory here in clear). After a
  server restart the in-memory copy is gone; the interaction row the CRM store kept has the
  same masked values, so that is read instead;
- the customer: the one the IVR identified (by ref), else the one phone number match (a
  number several customers share finds nobody: a screen-pop must never show the wrong
  person), else ``None`` ("unknown caller": the page offers a quick-create form);
- their last interactions, open cases and insight flags (VIP by tier, repeat caller, churn
  warning with its reasons), all from the store.

Everything is plain JSON data; the page renders every value as text (``textContent``), so a
caller name with markup in it shows as that markup, not as HTML.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.customers import CustomerStore, CustomerView, customer_fields
from crm_bridge.insight import insight_for
from crm_bridge.schema import Interaction
from crm_bridge.timeline import customer_ref
from ivr.path import CallerPath

__all__ = ["IvrContext", "ScreenPops", "customer_json", "insight_json"]

log = logging.getLogger(__name__)

VIP_TIERS: Final = frozenset({"gold", "platinum"})


@dataclass(frozen=True, slots=True)
class IvrContext:
    flow: str | None
    keys: str
    nodes: tuple[str, ...]
    variables: Mapping[str, str]
    customer_ref: str | None

    def view(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "keys": self.keys,
            "nodes": list(self.nodes),
            "variables": {str(k): str(v) for k, v in self.variables.items()},
        }


_NO_IVR = IvrContext(None, "", (), {}, None)


def customer_json(view: CustomerView) -> dict[str, Any]:
    """The customer as the console pages show it (``crm_bridge.customers.customer_fields``,
    with each phone as ``{"number", "kind"}`` for the page's phone list)."""
    fields = customer_fields(view.customer)
    fields["phones"] = [{"number": number, "kind": "phone"} for number in fields["phones"]]
    return fields


def history_json(view: CustomerView, exclude_key: str | None = None) -> list[dict[str, Any]]:
    """The customer's last interactions, newest first, without ``exclude_key`` (the call
    being popped: its row exists from the moment it started)."""
    return [
        {
            "key": i.key,
            "started_at": i.started_at,
            "direction": i.direction,
            "queue": i.queue,
            "agent_id": i.agent_id,
            "outcome": i.outcome,
            "disposition": i.disposition,
            "talk_seconds": i.talk_seconds,
            "notes": i.notes,
        }
        for i in view.recent
        if i.key != exclude_key
    ]


def cases_json(view: CustomerView) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "subject": c.subject, "status": c.status, "opened_at": c.opened_at}
        for c in view.open_cases
    ]


async def insight_json(
    engine: AsyncEngine, view: CustomerView, now: float, exclude_key: str | None = None
) -> dict[str, Any]:
    found = await insight_for(engine, view.customer.ref, now, exclude_key=exclude_key)
    return {
        "vip": (view.customer.tier or "") in VIP_TIERS,
        "repeat_caller": found.repeat_caller,
        "churn_warning": found.churn_warning,
        "reasons": list(found.reasons),
        "contacts_7d": found.contacts_7d,
        "last_outcome": found.last_outcome,
    }


class ScreenPops:
    """Composes screen-pops; see the module docstring."""

    def __init__(
        self,
        engine: AsyncEngine | None,
        *,
        clock: Callable[[], float] = time.time,
        keep: int = 5000,
    ) -> None:
        self._engine = engine
        self._store = CustomerStore(engine) if engine is not None else None
        self._clock = clock
        self._keep = keep
        self._ivr: OrderedDict[str, IvrContext] = OrderedDict()

    def remember_ivr(self, path: CallerPath) -> None:
        """Keep what the caller did in the IVR until the call is offered (bounded, oldest out)."""
        context = IvrContext(
            flow=path.flow,
            keys=path.keys,
            nodes=tuple(step.node for step in path.steps),
            variables=dict(path.variables),
            customer_ref=customer_ref(path.customer),
        )
        for key in {path.call.uniqueid, path.call.linkedid} - {""}:
            self._ivr[key] = context
            self._ivr.move_to_end(key)
        while len(self._ivr) > self._keep:
            self._ivr.popitem(last=False)

    async def _stored_ivr(self, call_id: str) -> IvrContext:
        if self._engine is None:
            return _NO_IVR
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        Interaction.ivr_flow,
                        Interaction.ivr_path,
                        Interaction.ivr_variables,
                        Interaction.customer_ref,
                    ).where(Interaction.key == call_id)
                )
            ).first()
        if row is None:
            return _NO_IVR
        steps = [s for s in (row.ivr_path or []) if isinstance(s, dict)]
        return IvrContext(
            flow=row.ivr_flow,
            keys="".join(str(s.get("keys") or "") for s in steps),
            nodes=tuple(str(s.get("node")) for s in steps),
            variables={str(k): str(v) for k, v in (row.ivr_variables or {}).items()},
            customer_ref=row.customer_ref,
        )

    async def compose(self, call_id: str, number: str, queue: str) -> dict[str, Any]:
        now = self._clock()
        pop: dict[str, Any] = {
            "call_id": call_id,
            "queue": queue,
            "number": number,
            "at": now,
            "customer": None,
            "history": [],
            "cases": [],
            "insight": None,
            "ivr": _NO_IVR.view(),
        }
        try:
            context = self._ivr.get(call_id) or await self._stored_ivr(call_id)
            pop["ivr"] = context.view()
            view = await self._customer(context.customer_ref, number)
            if view is not None and self._engine is not None:
                pop["customer"] = customer_json(view)
                pop["history"] = history_json(view, exclude_key=call_id)
                pop["cases"] = cases_json(view)
                pop["insight"] = await insight_json(self._engine, view, now, exclude_key=call_id)
        except (SQLAlchemyError, OSError) as exc:
            # The store is down: the agent still gets the call and what the IVR knew.
            log.warning("screen-pop for %s without the CRM store: %s", call_id, exc)
            pop["error"] = "customer data unavailable"
        return pop

    async def _customer(self, ref: str | None, number: str) -> CustomerView | None:
        if self._store is None:
            return None
        if ref:
            view = await self._store.by_ref(ref)
            if view is not None:
                return view
        if number:
            views = await self._store.by_phone(number, limit=2)
            if len(views) == 1:
                return views[0]
        return None
