"""The shape of ``config/customers.yaml``: the demo's customer records (``InMemoryCustomers``).

Records are free-form (any field a flow or a screen-pop reads), but phone and account numbers
must be quoted text: YAML reads ``5551234`` as an integer and ``0301234`` as octal, and a
lookup must see what was written. Used for the JSON Schema and by ``check-config``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr

__all__ = ["CustomerRecord", "CustomersFile"]

_Number = StrictStr | list[StrictStr]


class CustomerRecord(BaseModel):
    """One customer: ``id`` and any fields; ``phone`` and ``account`` quoted."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: Annotated[StrictStr, Field(min_length=1)]
    name: str | None = None
    phone: _Number | None = Field(None, description='quoted: "5551234" or a list of them')
    account: _Number | None = Field(None, description='quoted: "100200" or a list of them')


class CustomersFile(BaseModel):
    """The demo's customers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customers: list[CustomerRecord]
