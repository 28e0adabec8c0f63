"""One mapping from a stored customer to what is shown: the console's JSON, the screen-pop,
the edit form and the IVR's record all start from ``customer_fields``."""

from __future__ import annotations

from agent_console.screenpop import customer_json
from crm_bridge.customers import CustomerRecord, CustomerView, as_record, customer_fields

RECORD = CustomerRecord(
    id=7,
    ref="C-7",
    name="Ada Lovelace",
    phones=("+4930123", "5551234"),
    email="ada@example.com",
    account="1001",
    segment="smb",
    tier="gold",
    language="en",
    notes=None,
    custom={"first_name": "Ada", "tier": "ignored: the column wins"},
)
VIEW = CustomerView(RECORD, (), ())


def test_the_fields_are_the_columns_as_plain_values() -> None:
    assert customer_fields(RECORD) == {
        "ref": "C-7",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "account": "1001",
        "segment": "smb",
        "tier": "gold",
        "language": "en",
        "notes": None,
        "phones": ["+4930123", "5551234"],
    }


def test_the_console_json_gives_each_phone_a_kind() -> None:
    shown = customer_json(VIEW)
    assert shown["phones"] == [
        {"number": "+4930123", "kind": "phone"},
        {"number": "5551234", "kind": "phone"},
    ]
    assert {k: v for k, v in shown.items() if k != "phones"} == {
        k: v for k, v in customer_fields(RECORD).items() if k != "phones"
    }


def test_the_ivr_record_has_the_same_fields_named_as_in_customers_yaml() -> None:
    record = as_record(VIEW)
    assert record["id"] == record["ref"] == "C-7"
    assert list(record["phone"]) == ["+4930123", "5551234"]  # type: ignore[call-overload]
    assert record["tier"] == "gold"  # the column wins over a custom field
    assert record["first_name"] == "Ada"
    assert "notes" not in record  # None columns are left out for the flows
    fields = customer_fields(RECORD)
    for key in ("name", "email", "account", "segment", "language"):
        assert record[key] == fields[key]
