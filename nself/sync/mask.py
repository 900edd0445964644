"""Anonymisation: rules from nself.yml `sync.anonymize`, applied to a plain `pg_dump` stream.

Rules map `table.column` (schema `public`) or `schema.table.column` to a kind: `email`,
`name`, `first_name`, `last_name`, `phone`, `address`, `ip`, `hash`, `null` or `keep`. Values
are replaced deterministically (PostgreSQL Anonymizer's and Greenmask's "deterministic
masking"): the fake value is drawn by Faker seeded from a hash of the kind and the original,
so the same input gives the same output in every table and every run, and keys built from
personal values still join. NULL stays NULL; the value hashed is the field as pg_dump
writes it (escapes included), which is as deterministic as the value. Emails carry 8 hex
digits of the hash so two people never collide on a unique column, and live under
example.com (RFC 2606).

Fail closed: a column whose name looks personal (email, name, phone, address, ip, birth…)
and has no rule stops the sync, naming it (`check`); `keep` says a column is not personal.
A rule naming a column the source does not have stops it too (a misspelt rule masks nothing).

Run as a filter between `pg_dump` (plain format) and `psql`:
    python -m nself.sync.mask --rules JSON            (stdin → stdout, COPY rows rewritten)
    python -m nself.sync.mask --check --rules JSON    (stdin: schema.table.column lines)
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Mapping

from nself.errors import ConfigError

KINDS = ("email", "name", "first_name", "last_name", "phone", "address", "ip", "hash", "null", "keep")
_FAKER = {"name": "name", "first_name": "first_name", "last_name": "last_name", "phone": "phone_number",
          "address": "address", "ip": "ipv4_public"}
_PERSONAL = re.compile(r"(^|_)(e?mail|email_address|(first|last|full|middle|user|sur|given|display)?name|phone|"
                       r"mobile|tel|telephone|fax|address|street|city|zip|postcode|postal_code|ip|ip_address|"
                       r"birth|birthday|birthdate|birth_date|dob|date_of_birth|ssn|passport|iban|card_number|"
                       r"national_id|tax_id|gender|lat|lng|latitude|longitude)($|_)")
_COPY = re.compile(rb'^COPY ("(?:[^"]|"")*"|[^ ."]+)\.("(?:[^"]|"")*"|[^ ("]+) \((.*)\) FROM stdin;\n$')
_NAMES = re.compile(rb'"(?:[^"]|"")*"|[^, ]+')


def normalize(rules: Mapping | None) -> dict[str, str]:
    """`table.column`/`schema.table.column` → kind, keyed `schema.table.column`. Raises
    ConfigError (exit 3) naming a bad key or kind."""
    out = {}
    for key, kind in (rules or {}).items():
        parts = str(key).split(".")
        if len(parts) not in (2, 3) or not all(parts):
            raise ConfigError(f"sync.anonymize: {key!r} is not table.column or schema.table.column",
                              hint="e.g. sync.anonymize: {users.email: email}")
        if kind not in KINDS:
            raise ConfigError(f"sync.anonymize.{key}: {kind!r} is not one of {', '.join(KINDS)}",
                              hint="use keep for a column that is not personal")
        out[".".join(parts if len(parts) == 3 else ["public", *parts])] = kind
    return dict(sorted(out.items()))


def rules_hash(rules: Mapping[str, str]) -> str:
    """A short fingerprint of the rules (shown in the plan, kept in the audit record)."""
    return hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()[:12]


def looks_personal(column: str) -> bool:
    return bool(_PERSONAL.search(column.lower()))


def unclassified(columns: Iterable[str], rules: Mapping[str, str]) -> list[str]:
    """`schema.table.column` names that look personal and have no rule."""
    return sorted(c for c in columns if c not in rules and looks_personal(c.rsplit(".", 1)[-1]))


@functools.lru_cache(maxsize=1)
def _faker():
    from faker import Faker

    return Faker("en_US")


@functools.lru_cache(maxsize=200_000)
def fake(kind: str, value: str) -> str | None:
    """The deterministic replacement of `value` (None: SQL NULL)."""
    if kind == "keep":
        return value
    if kind == "null":
        return None
    digest = hashlib.sha256(f"{kind}\0{value}".encode()).digest()
    if kind == "hash":
        return digest.hex()
    generator = _faker()
    generator.seed_instance(int.from_bytes(digest[:8], "big"))
    if kind == "email":
        return f"{generator.user_name()}.{digest.hex()[:8]}@example.com"
    return getattr(generator, _FAKER[kind])()


def _escape(value: str | None) -> bytes:
    if value is None:
        return b"\\N"
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r").encode()


def _identifier(text: bytes) -> str:
    text = text.strip().decode()
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


def _columns(match) -> tuple[str, list[str]]:
    columns = [_identifier(c) for c in _NAMES.findall(match.group(3))]
    return f"{_identifier(match.group(1))}.{_identifier(match.group(2))}", columns


def filter_dump(source, sink, rules: Mapping[str, str]) -> None:
    """Copy a plain pg_dump from `source` to `sink` (binary streams), rewriting the COPY rows
    of columns that have a rule other than keep."""
    masks: list[tuple[int, str]] = []
    for line in source:
        if masks:
            if line == b"\\.\n":
                masks = []
            else:
                fields = line[:-1].split(b"\t")
                for index, kind in masks:
                    if fields[index] != b"\\N":
                        fields[index] = _escape(fake(kind, fields[index].decode()))
                line = b"\t".join(fields) + b"\n"
        elif line.startswith(b"COPY "):
            match = _COPY.match(line)
            if match:
                table, columns = _columns(match)
                masks = [(i, rules[f"{table}.{c}"]) for i, c in enumerate(columns)
                         if rules.get(f"{table}.{c}", "keep") != "keep"]
        sink.write(line)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m nself.sync.mask")
    parser.add_argument("--rules", required=True, help="the normalised rules as JSON")
    parser.add_argument("--check", action="store_true", help="read column names, refuse unclassified ones")
    args = parser.parse_args(argv)
    rules = json.loads(args.rules)
    if args.check:
        columns = {line.strip() for line in sys.stdin if line.strip()}
        unknown = sorted(set(rules) - columns)
        if unknown:
            print("sync.anonymize names columns that do not exist in the source: " + ", ".join(unknown)
                  + " (a misspelt rule would leave the real column unmasked)", file=sys.stderr)
            return 3
        missing = unclassified(columns, rules)
        if missing:
            print("these columns look personal and have no rule in sync.anonymize: " + ", ".join(missing)
                  + " (add a kind, or `keep` if they are not personal)", file=sys.stderr)
            return 3
        return 0
    filter_dump(sys.stdin.buffer, sys.stdout.buffer, rules)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
