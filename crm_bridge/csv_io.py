"""Customers in and out of CSV files, and the ``ctiserver customers`` commands.

File format (UTF-8, a header line, comma-separated, RFC 4180 quoting): columns ``ref``,
``name``, ``phones`` (several separated by ``;``), ``email``, ``account``, ``segment``,
``tier``, ``language``, ``notes``; any other column goes into the customer's ``custom`` fields
(empty values left out). ``ref`` and ``name`` columns are required; the others optional.
Column names are read case-insensitively (in lower case); blank lines are skipped.

Import (``ctiserver customers import FILE.csv [--dry-run] [--country-code 49]``):

- every row is checked (``customers.validate_customer``: ref and name present, phone numbers
  that normalise, an email of the form name@domain.tld, a tier from the set, lengths that fit
  the columns), ``ref`` and ``account`` must be unique within the file (a later duplicate is
  rejected, naming the earlier line) and an account must not belong to another ref in the
  store;
- the rejected rows are reported with their line number (the line the record starts on, so a
  quoted field spanning lines does not shift the count) and every reason;
- the valid rows are written (``customers.store_customers``): each customer all or nothing,
  idempotent by ``ref`` (an existing ref is updated); ``--dry-run`` checks everything,
  store included, and writes nothing;
- a progress bar on stderr when stderr is a terminal.

Exit status: 0 every row imported, 1 some rows rejected (the others imported), 2 the file
cannot be used at all (unreadable, no header, no ref/name column, a duplicated column).

Export (``ctiserver customers export FILE.csv``) writes the same format, custom fields as
extra columns (sorted by name; values that are not text written as JSON), so an export can be
imported again.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.customers import (
    CORE_FIELDS,
    TIERS,
    CustomerInput,
    Rejected,
    check_country_code,
    store_customers,
    validate_customer,
)
from crm_bridge.schema import Customer, CustomerPhone
from cti.errors import ConfigError, CtiError

__all__ = [
    "ImportReport",
    "add_commands",
    "export_csv",
    "import_csv",
    "parse_csv",
    "run_command",
]

_EXPORT_PAGE = 2000


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    dry_run: bool = False

    def lines(self) -> Iterator[str]:
        verb = "would be" if self.dry_run else "were"
        yield (
            f"{self.rows} rows: {self.created} new and {self.updated} existing customers "
            f"{verb} imported, {len(self.rejected)} rejected"
        )
        for item in sorted(self.rejected, key=lambda r: r.line or 0):
            yield f"  {item}"


def _records(text: TextIO) -> Iterator[tuple[int, list[str]]]:
    """(line the record starts on, its fields) for each record after the header."""
    reader = csv.reader(text, strict=True)
    start = reader.line_num + 1
    for fields in reader:
        if any(value.strip() for value in fields):
            yield start, fields
        start = reader.line_num + 1


def parse_csv(
    text: TextIO,
    *,
    country_code: str | None = None,
    tiers: frozenset[str] | None = TIERS,
    source: str = "CSV",
) -> tuple[list[tuple[int, CustomerInput]], list[Rejected], int]:
    """The valid customers (with their line numbers), the rejected rows, the row count.

    Raises ``ConfigError`` when the file as a whole is unusable.
    """
    check_country_code(country_code)
    records = _records(text)
    try:
        header_line, header = next(records)
    except StopIteration:
        raise ConfigError(
            "empty file: a header line (ref,name,...) is expected", source=source
        ) from None
    except csv.Error as exc:
        raise ConfigError(f"not CSV: {exc}", source=source) from exc
    columns = [name.strip().lower() for name in header]
    doubled = sorted({name for name in columns if columns.count(name) > 1})
    missing = [name for name in ("ref", "name") if name not in columns]
    if doubled or missing or "" in columns:
        problem = (
            f"column {doubled[0]!r} appears twice"
            if doubled
            else f"no {missing[0]!r} column"
            if missing
            else "a column without a name"
        )
        raise ConfigError(f"header: {problem}", source=f"{source}:{header_line}")
    valid: list[tuple[int, CustomerInput]] = []
    rejected: list[Rejected] = []
    seen_refs: dict[str, int] = {}
    seen_accounts: dict[str, int] = {}
    rows = 0
    while True:
        try:
            line, values = next(records)
        except StopIteration:
            break
        except csv.Error as exc:
            # A broken quote swallows the rest of the file: nothing after it can be trusted.
            rows += 1
            rejected.append(Rejected(None, None, (f"not CSV from here on: {exc}",)))
            break
        rows += 1
        if len(values) != len(columns):
            reason = f"{len(values)} fields where the header has {len(columns)}"
            rejected.append(Rejected(line, values[0].strip() or None, (reason,)))
            continue
        result = validate_customer(
            dict(zip(columns, values, strict=True)), country_code=country_code, tiers=tiers
        )
        if isinstance(result, list):
            ref = values[columns.index("ref")].strip() or None
            rejected.append(Rejected(line, ref, tuple(result)))
            continue
        reasons: list[str] = []
        if result.ref in seen_refs:
            reasons.append(f"ref {result.ref!r} already on line {seen_refs[result.ref]}")
        if result.account and result.account in seen_accounts:
            reasons.append(
                f"account {result.account!r} already on line {seen_accounts[result.account]}"
            )
        if reasons:
            rejected.append(Rejected(line, result.ref, tuple(reasons)))
            continue
        seen_refs[result.ref] = line
        if result.account:
            seen_accounts[result.account] = line
        valid.append((line, result))
    return valid, rejected, rows


async def import_csv(
    engine: AsyncEngine,
    path: Path,
    *,
    country_code: str | None = None,
    dry_run: bool = False,
    tiers: frozenset[str] | None = TIERS,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 500,
) -> ImportReport:
    """Check and import ``path`` (see the module docstring); ``progress(done, total)``."""
    valid, rejected, rows = await asyncio.to_thread(
        _parse_file, path, country_code=country_code, tiers=tiers
    )
    total = len(valid)
    result = await store_customers(
        engine,
        valid,
        dry_run=dry_run,
        chunk=chunk,
        progress=(lambda done: progress(done, total)) if progress is not None else None,
    )
    return ImportReport(
        rows=rows,
        created=result.created,
        updated=result.updated,
        rejected=[*rejected, *result.rejected],
        dry_run=dry_run,
    )


def _parse_file(
    path: Path, *, country_code: str | None, tiers: frozenset[str] | None
) -> tuple[list[tuple[int, CustomerInput]], list[Rejected], int]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as text:
            return parse_csv(text, country_code=country_code, tiers=tiers, source=str(path))
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text: {exc.reason}", source=str(path)) from exc


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


async def export_csv(engine: AsyncEngine, out: TextIO) -> int:
    """Write every customer to ``out``; returns how many. Pages through the table by id, so
    a million customers never sit in memory at once."""
    extra: set[str] = set()
    async with engine.connect() as conn:
        stream = await conn.stream(select(Customer.custom).execution_options(yield_per=5000))
        async for (custom,) in stream:
            extra.update(str(key) for key in (custom or {}))
    columns = [*CORE_FIELDS, *sorted(extra - set(CORE_FIELDS))]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    last = 0
    while True:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(Customer)
                    .where(Customer.id > last)
                    .order_by(Customer.id)
                    .limit(_EXPORT_PAGE)
                )
            ).all()
            if not rows:
                break
            phones: dict[int, list[str]] = {}
            for cid, number in (
                await conn.execute(
                    select(CustomerPhone.customer_id, CustomerPhone.number)
                    .where(CustomerPhone.customer_id.in_([row.id for row in rows]))
                    .order_by(CustomerPhone.id)
                )
            ).all():
                phones.setdefault(cid, []).append(number)
        for row in rows:
            custom = row.custom or {}
            core = {name: getattr(row, name, None) for name in CORE_FIELDS if name != "phones"}
            core["phones"] = ";".join(phones.get(row.id, ()))
            writer.writerow(
                [_cell(core[name]) if name in core else _cell(custom.get(name)) for name in columns]
            )
        count += len(rows)
        last = rows[-1].id
    return count


# -- command line ----------------------------------------------------------------------------


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``ctiserver customers import|export``."""
    customers = subparsers.add_parser("customers", help="import or export customers (CSV)")
    actions = customers.add_subparsers(dest="customers_command", required=True)
    load = actions.add_parser("import", help="import customers from a CSV file")
    load.add_argument("file", type=Path)
    load.add_argument("--dry-run", action="store_true", help="check everything, write nothing")
    load.add_argument(
        "--country-code", help="read a leading 0 as +<code> (e.g. 49), as lookups will"
    )
    load.add_argument(
        "--tiers",
        help=f"allowed tiers, comma-separated (default: {','.join(sorted(TIERS))}; "
        "'*' accepts any)",
    )
    dump = actions.add_parser("export", help="export every customer to a CSV file")
    dump.add_argument("file", type=Path)


class _Progress:
    """A one-line bar on a terminal: rewritten in place, at most every 1%."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if percent == self.shown:
            return
        self.shown = percent
        bar = "#" * (percent // 4)
        self.stream.write(f"\r[{bar:<25}] {percent:3d}% {done}/{total}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


async def run_command(
    args: argparse.Namespace,
    engine: AsyncEngine,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        if args.customers_command == "export":
            target = _open_for_writing(args.file)
            with target:
                count = await export_csv(engine, target)
            out.write(f"{count} customers written to {args.file}\n")
            return 0
        tiers: frozenset[str] | None = TIERS
        if args.tiers:
            tiers = (
                None
                if args.tiers.strip() == "*"
                else frozenset(t.strip().lower() for t in args.tiers.split(",") if t.strip())
            )
        report = await import_csv(
            engine,
            args.file,
            country_code=args.country_code,
            dry_run=args.dry_run,
            tiers=tiers,
            progress=_Progress(err) if err.isatty() else None,
        )
    except CtiError as exc:  # the file unusable, or the store unavailable
        err.write(f"error: {exc}\n")
        return 2
    for line in report.lines():
        out.write(line + "\n")
    return 1 if report.rejected else 0


def _open_for_writing(path: Path) -> TextIO:
    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror}", source=str(path)) from exc
