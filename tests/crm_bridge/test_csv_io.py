"""CSV import and export of customers, and the ``customers`` commands, on both databases."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.csv_io import add_commands, export_csv, import_csv, parse_csv, run_command
from crm_bridge.customers import CustomerStore
from crm_bridge.db import create_engine
from crm_bridge.schema import Customer, CustomerPhone
from cti.errors import ConfigError

GOOD = """\
ref,name,phones,email,account,segment,tier,language,notes,first_name,region
C1,Ada Lovelace,030 1234567;5551234,ada@example.org,100200,retail,Gold,en,"likes
long calls",Ada,north
C2,Charles Babbage,+1 202 555 0143,,100300,,platinum,en,,,
"""

MALFORMED = """\
ref,name,phones,email,account,tier
C1,Ada,5551234,ada@example.org,100,gold
,No Ref,5552000,,,
C3,Bad Phone,call me;5553000,,,
C4,Bad Mail,5554000,ada@,,
C5,Bad Tier,5555000,,,diamond
C1,Ada Again,5556000,,,
C7,Same Account,5557000,,100,
C8,Too,Many,Fields,,,,
C9,Grace Hopper,5559000,grace@example.org,900,standard
"""


def write(tmp_path: Path, content: str, name: str = "customers.csv") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


async def refs(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return sorted((await conn.execute(select(Customer.ref))).scalars())


async def count(engine: AsyncEngine, model: type[Customer] | type[CustomerPhone]) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())


def parse_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ctiserver")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_good_file_imports_everything(engine: AsyncEngine, tmp_path: Path) -> None:
    report = await import_csv(engine, write(tmp_path, GOOD), country_code="49")
    assert (report.rows, report.created, report.updated, report.rejected) == (2, 2, 0, [])
    ada = await CustomerStore(engine, country_code="49").by_phone("+49 30 1234567")
    assert len(ada) == 1
    record = ada[0].customer
    assert record.ref == "C1"
    assert record.tier == "gold"
    assert record.notes == "likes\nlong calls"
    assert record.custom == {"first_name": "Ada", "region": "north"}
    assert record.phones == ("+49301234567", "5551234")


async def test_malformed_file_rejects_rows_with_line_numbers(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    report = await import_csv(engine, write(tmp_path, MALFORMED))
    assert report.rows == 9
    assert report.created == 2
    rejected = {r.line: (r.ref, r.reasons) for r in report.rejected}
    assert rejected == {
        3: (None, ("ref is required",)),
        4: ("C3", ("phone 'call me' is not a phone number",)),
        5: ("C4", ("email 'ada@' is not an address (name@domain.tld)",)),
        6: ("C5", ("tier 'diamond' is not one of gold, platinum, silver, standard",)),
        7: ("C1", ("ref 'C1' already on line 2",)),
        8: ("C7", ("account '100' already on line 2",)),
        9: ("C8", ("8 fields where the header has 6",)),
    }
    assert await refs(engine) == ["C1", "C9"]
    # nothing of a rejected row anywhere: only the two imported customers' phones
    assert await count(engine, CustomerPhone) == 2


async def test_import_is_idempotent_by_ref(engine: AsyncEngine, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    await import_csv(engine, path, country_code="49")
    again = await import_csv(engine, path, country_code="49")
    assert (again.created, again.updated, again.rejected) == (0, 2, [])
    assert await count(engine, Customer) == 2
    assert await count(engine, CustomerPhone) == 3


async def test_dry_run_checks_against_the_store_and_writes_nothing(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await import_csv(engine, write(tmp_path, "ref,name,account\nX1,Xavier,100300\n"))
    report = await import_csv(engine, write(tmp_path, GOOD), dry_run=True)
    assert (report.created, report.updated) == (1, 0)
    assert [(r.ref, r.reasons) for r in report.rejected] == [
        ("C2", ("account '100300' already belongs to customer X1",))
    ]
    assert await refs(engine) == ["X1"]
    assert "would be imported" in next(report.lines())


@pytest.mark.parametrize("chunk", [1, 10])
async def test_database_error_rolls_back_that_customer_only(
    engine: AsyncEngine, tmp_path: Path, chunk: int
) -> None:
    # A database that refuses one row mid-chunk (a trigger): the chunk is rolled back, every
    # other row of it is written, the refused one is reported with its line and the reason.
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON customer_phones "
                    "WHEN NEW.number = '666' BEGIN SELECT RAISE(ABORT, 'number barred'); END"
                )
            )
        else:
            await conn.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "IF NEW.number = '666' THEN RAISE EXCEPTION 'number barred'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            await conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON customer_phones "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
    content = "ref,name,phones\nA1,Ann,111\nA2,Ben,222;666\nA3,Cid,333\n"
    report = await import_csv(engine, write(tmp_path, content), chunk=chunk)
    assert report.created == 2
    assert [(r.line, r.ref) for r in report.rejected] == [(3, "A2")]
    assert "number barred" in report.rejected[0].reasons[0]
    assert await refs(engine) == ["A1", "A3"]  # A2's customer row rolled back with its phones
    assert await count(engine, CustomerPhone) == 2


def test_unusable_files_are_refused_whole() -> None:
    for content, message in [
        ("", "empty file"),
        ("name,phones\nAda,1\n", "no 'ref' column"),
        ("ref,name,Name\n", "column 'name' appears twice"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_csv(io.StringIO(content))


def test_broken_quote_stops_parsing_and_is_reported() -> None:
    valid, rejected, rows = parse_csv(io.StringIO('ref,name\nC1,Ada\nC2,"Bob\n'))
    assert [(line, c.ref) for line, c in valid] == [(2, "C1")]
    assert len(rejected) == 1
    assert "not CSV" in rejected[0].reasons[0]
    assert rows == 2


async def test_export_round_trips(engine: AsyncEngine, tmp_path: Path) -> None:
    await import_csv(engine, write(tmp_path, GOOD), country_code="49")
    out = io.StringIO()
    assert await export_csv(engine, out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == [
        "ref",
        "name",
        "phones",
        "email",
        "account",
        "segment",
        "tier",
        "language",
        "notes",
        "first_name",
        "region",
    ]
    assert rows[0]["phones"] == "+49301234567;5551234"
    assert rows[0]["notes"] == "likes\nlong calls"
    assert rows[1]["email"] == ""
    # imported again: the same customers, only updated
    again = await import_csv(engine, write(tmp_path, out.getvalue(), "export.csv"))
    assert (again.created, again.updated, again.rejected) == (0, 2, [])


async def test_commands(engine: AsyncEngine, tmp_path: Path) -> None:
    out, err = io.StringIO(), Terminal()
    source = write(tmp_path, MALFORMED)
    status = await run_command(
        parse_args("customers", "import", str(source), "--dry-run"), engine, stdout=out, stderr=err
    )
    assert status == 1
    assert out.getvalue().startswith("9 rows: 2 new and 0 existing customers would be imported")
    assert "line 4 (ref C3): phone 'call me' is not a phone number" in out.getvalue()
    assert err.getvalue().endswith("[#########################] 100% 2/2\n")
    assert await refs(engine) == []

    out, plain = io.StringIO(), io.StringIO()
    good = write(tmp_path, GOOD, "good.csv")
    args = parse_args("customers", "import", str(good), "--country-code", "49")
    assert await run_command(args, engine, stdout=out, stderr=plain) == 0
    assert plain.getvalue() == ""  # no progress bar when stderr is not a terminal
    assert await refs(engine) == ["C1", "C2"]

    target = tmp_path / "out.csv"
    args = parse_args("customers", "export", str(target))
    assert await run_command(args, engine, stdout=out, stderr=plain) == 0
    assert target.read_text(encoding="utf-8").startswith("ref,name,phones,")

    missing = parse_args("customers", "import", str(tmp_path / "nope.csv"))
    assert await run_command(missing, engine, stdout=out, stderr=plain) == 2
    assert "cannot read" in plain.getvalue()

    any_tier = write(tmp_path, "ref,name,tier\nZ1,Zed,diamond\n", "tiers.csv")
    args = parse_args("customers", "import", str(any_tier), "--tiers", "*")
    assert await run_command(args, engine, stdout=out, stderr=plain) == 0
    zed = await CustomerStore(engine).by_ref("Z1")
    assert zed is not None
    assert zed.customer.tier == "diamond"


async def test_unreachable_store_stops_the_import(tmp_path: Path) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    engine = create_engine("postgresql+asyncpg://cti@127.0.0.1:1/none")
    try:
        args = parse_args("customers", "import", str(write(tmp_path, GOOD)))
        out, err = io.StringIO(), io.StringIO()
        assert await run_command(args, engine, stdout=out, stderr=err) == 2
        assert "the customer store is unavailable" in err.getvalue()
        assert "0 customers were written" in err.getvalue()
    finally:
        await engine.dispose()
