"""`lightsms-queue send-bulk FILE.csv`: one SMS per row (phone[,text]), every row checked first.

Rows are checked one by one (phone, text, opt-out) and reported by line number; the good ones are
stored with send_many, grouped by text, so each group is stored all or nothing. With --key, a file
sent again returns the same ids and sends nothing twice (each recipient's key derives from it).
"""

from __future__ import annotations

import csv
import hashlib
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
from tqdm import tqdm

from lightsms.errors import InvalidInput
from producers.producer import Producer
from producers.validation import check_options, check_phone

from .context import echo_json, fail, friendly_errors, json_option, producer

CHUNK = 1000  # recipients per send_many call: one MULTI/EXEC each


@dataclass(frozen=True)
class Row:
    line: int
    phone: str
    text: str


@dataclass(frozen=True)
class BadRow:
    line: int
    field: str
    reason: str


def _rows(path: Path, default_text: str | None) -> Iterator[Row | BadRow]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        for line, cells in enumerate(csv.reader(file), start=1):
            if not cells or not any(cell.strip() for cell in cells):
                continue
            phone = cells[0].strip()
            if line == 1 and phone.lower() in ("phone", "number", "to", "recipient"):
                continue  # a header row
            text = cells[1] if len(cells) > 1 and cells[1] != "" else default_text
            if len(cells) > 2:
                yield BadRow(line, "row", f"{len(cells)} columns; expected phone[,text] (quote a text with commas)")
            elif text is None:
                yield BadRow(line, "text", "no text in the row and no --text given")
            else:
                yield Row(line, phone, text)


def _check(row: Row, prod: Producer, sender: str | None, priority: str) -> Row | BadRow:
    settings = prod.settings
    try:
        phone = check_phone(row.phone, default_region=settings.lightsms_default_region)
        check_options(settings, now=0.0, text=row.text, sender=sender, send_at=None, idempotency_key=None,
                      valid_for=None, on_unknown="hold", priority=priority, metadata=None)  # fmt: skip
    except InvalidInput as exc:
        return BadRow(row.line, exc.field, exc.reason)
    return Row(row.line, phone, row.text)


@click.command("send-bulk")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--text", "default_text", help="text for rows that have none")
@click.option("--sender", help="approved sender name (default LIGHTSMS_SENDER)")
@click.option("--priority", type=click.Choice(["high", "normal", "bulk"]), default="bulk", show_default=True)
@click.option("--key", help="idempotency key for this file: sending it again sends nothing twice")
@click.option("--dry-run", is_flag=True, help="check every row, store nothing")
@json_option
@friendly_errors
def send_bulk(file: Path, default_text: str | None, sender: str | None, priority: str, key: str | None,
              dry_run: bool, as_json: bool) -> None:  # fmt: skip
    """Enqueue one SMS per CSV row (phone[,text]); bad rows are reported by line number."""
    prod = producer()
    try:
        rows = list(_rows(file, default_text))
    except UnicodeDecodeError as exc:
        fail(f"{file}: not a UTF-8 CSV file (a byte it cannot read at offset {exc.start})", code=2)
    except csv.Error as exc:
        fail(f"{file}: not a CSV file this can read: {exc}", code=2)
    checked = [r if isinstance(r, BadRow) else _check(r, prod, sender, priority) for r in rows]
    good = [r for r in checked if isinstance(r, Row)]
    bad = [r for r in checked if isinstance(r, BadRow)]
    opted = prod.store.opted_out([r.phone for r in good])
    bad += [BadRow(r.line, "phone", "the recipient opted out of messages") for r in good if r.phone in opted]
    good = [r for r in good if r.phone not in opted]
    outcome: Counter[str] = Counter(invalid=len(bad))
    if dry_run:
        outcome["valid"] = len(good)
    else:
        outcome.update(_store(prod, good, sender=sender, priority=priority, key=key))
    bad.sort(key=lambda r: r.line)
    if as_json:
        echo_json({"dry_run": dry_run, "counts": dict(outcome), "bad_rows": [vars(r) for r in bad]})
    else:
        for row in bad:
            click.echo(f"line {row.line}: {row.field}: {row.reason}", err=True)
        click.echo(("dry run, nothing stored: " if dry_run else "") + ", ".join(f"{n} {k}" for k, n in outcome.items()))
    if bad or outcome["not stored"]:
        raise SystemExit(1)


def _store(prod: Producer, rows: list[Row], *, sender: str | None, priority: str, key: str | None) -> Counter[str]:
    by_text: dict[str, list[Row]] = defaultdict(list)
    first_line: dict[tuple[str, str], int] = {}
    counts: Counter[str] = Counter()
    for row in rows:
        earlier = first_line.setdefault((row.phone, row.text), row.line)
        if earlier != row.line:  # the same SMS to the same number twice: sent once
            click.echo(f"line {row.line}: the same number and text as line {earlier}: sent once", err=True)
            counts["duplicate"] += 1
        else:
            by_text[row.text].append(row)
    total = sum(map(len, by_text.values()))
    # disable=None: the bar shows only when stderr is a terminal.
    with tqdm(total=total, unit="sms", file=sys.stderr, disable=None) as progress:
        for text, group in by_text.items():
            for start in range(0, len(group), CHUNK):
                chunk = group[start : start + CHUNK]
                try:
                    ids = prod.send_many([r.phone for r in chunk], text, sender=sender, priority=priority,
                                         idempotency_key=_group_key(key, text))  # fmt: skip
                except InvalidInput as exc:  # changed since the check (an opt-out meanwhile): this chunk only
                    line = _line_of(exc.field, chunk)
                    click.echo(f"line {line}: {exc.reason}; its {len(chunk)} rows were not stored", err=True)
                    counts["not stored"] += len(chunk)
                    continue
                counts["stored"] += len(ids)
                progress.update(len(chunk))
    return counts


def _line_of(field: str, chunk: list[Row]) -> str:
    """The CSV line of send_many's `phones[i]`."""
    index = field.removeprefix("phones[").removesuffix("]")
    return str(chunk[int(index)].line) if index.isdigit() and int(index) < len(chunk) else "?"


def _group_key(key: str | None, text: str) -> str | None:
    """The idempotency key of one text's rows: send_many derives each recipient's key from it and the
    phone, so two texts to one number in the file need keys of their own, or the second would get
    the first one's message back."""
    if key is None:
        return None
    return f"{hashlib.sha256(key.encode()).hexdigest()[:24]}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"
