"""`pipeline roster import FILE`: the workforce roster from an HR system's CSV export.

The roster is the denominator of every rate, so a file is all or nothing: every row is
checked first, each bad one reported as `FILE line N: reason` (N as an editor shows it,
the header being line 1, a quoted field's own line breaks counted), and one bad row means
nothing is written. Checked rows become `WorkforceUser` rows, written to the roster topic
(PIPELINE_KAFKA_BOOTSTRAP set; the worker stores them) or straight to the warehouse through
the worker's own batch builder, pseudonyms included (PIPELINE_PSEUDONYMIZE_KEY).

Columns are found by the names HR systems give them (case, spaces and punctuation aside:
"Work Email", "HIREDATE", "hire_date" are one name), or named by flags or a YAML mapping
(`--mapping`). Reading, mapping and checking are pure functions of the file's bytes; the
writers at the end are the only I/O.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.model import Source, WorkforceUser
from pipeline.settings import Settings
from pipeline.sources._common import normalize_user

if TYPE_CHECKING:
    from pipeline.aggregate.batch import BatchRules

# A roster of a million people is some 150 MB of CSV; a larger file is not an HR export.
MAX_FILE_BYTES = 256 * 1024 * 1024
# The dates a ClickHouse `Date` column holds (the roster's active_from, terminated_on): the
# driver refuses a batch holding any other date.
FIRST_DATE, LAST_DATE = date(1970, 1, 1), date(2149, 6, 6)

# What a status column says, by default (compared case-insensitively). A person on leave or
# being onboarded is in the workforce (a future hire date keeps them out until then).
DEFAULT_ACTIVE = ("active", "yes", "true", "1", "employed", "leave", "on leave", "onboarding")
DEFAULT_TERMINATED = ("terminated", "inactive", "no", "false", "0", "former", "separated")

# Header names each field is recognized by, first match wins, compared by `_header_key`.
# Sources of the names: tests/fixtures/roster/README.md.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "user": (
        "user",
        "login",
        "upn",
        "user principal name",
        "work email",
        "email - primary work",
        "primary work email",
        "email",
        "email address",
        "username",
    ),
    "department": (
        "department",
        "department name",
        "cost center",
        "supervisory organization",
        "org unit",
        "division",
    ),
    "country": (
        "country",
        "country code",
        "location country",
        "work country",
        "work location country",
    ),
    "hire_date": (
        "active from",
        "hire date",
        "start date",
        "original hire date",
        "employment start date",
        "date of hire",
    ),
    "termination_date": (
        "terminated on",
        "termination date",
        "end date",
        "employment end date",
        "last day of work",
    ),
    "status": (
        "status",
        "worker status",
        "employee status",
        "active status",
        "employment status",
    ),
    "privileged": ("privileged", "is privileged", "privileged access", "admin"),
    "idp": ("idp", "identity provider", "home idp"),
}
# The display name: one column, or several joined by a space (first and last name).
DEFAULT_DISPLAY_NAME: tuple[tuple[str, ...], ...] = (
    ("display name",),
    ("full name",),
    ("name",),
    ("worker",),
    ("employee name",),
    ("first name", "last name"),
    ("firstname", "lastname"),
    ("given name", "surname"),
)
REQUIRED = ("user", "department", "country", "hire_date")
FLAGS = {
    "user": "--user-column",
    "display_name": "--display-name-column",
    "department": "--department-column",
    "country": "--country-column",
    "hire_date": "--hire-date-column",
    "termination_date": "--termination-date-column",
    "status": "--status-column",
    "privileged": "--privileged-column",
    "idp": "--idp-column",
}

# The 249 officially assigned ISO 3166-1 alpha-2 codes (ISO/TC 46 N1127, 2024-02-29, as
# tzdata's iso3166.tab lists them). Reserved codes (UK, EU, XK) are not among them.
_ALPHA2_CODES = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ "
    "BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM "
    "DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS "
    "GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ "
    "MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
    "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS YE YT ZA ZM ZW"
)
ISO_ALPHA2 = frozenset(_ALPHA2_CODES.split())
# Country names (and alpha-3 codes) HR systems export instead of codes, for the countries
# most workforces span: a small table on purpose. Any other value: give the alpha-2 code, or
# map the export's own spelling under `countries:` in the --mapping file.
COUNTRY_NAMES: dict[str, tuple[str, ...]] = {
    "AE": ("ARE", "United Arab Emirates", "UAE"),
    "AR": ("ARG", "Argentina"),
    "AT": ("AUT", "Austria"),
    "AU": ("AUS", "Australia"),
    "BE": ("BEL", "Belgium"),
    "BR": ("BRA", "Brazil"),
    "CA": ("CAN", "Canada"),
    "CH": ("CHE", "Switzerland"),
    "CN": ("CHN", "China"),
    "CZ": ("CZE", "Czechia", "Czech Republic"),
    "DE": ("DEU", "Germany"),
    "DK": ("DNK", "Denmark"),
    "ES": ("ESP", "Spain"),
    "FI": ("FIN", "Finland"),
    "FR": ("FRA", "France"),
    "GB": ("GBR", "United Kingdom", "UK", "Great Britain", "Britain"),
    "IE": ("IRL", "Ireland"),
    "IL": ("ISR", "Israel"),
    "IN": ("IND", "India"),
    "IT": ("ITA", "Italy"),
    "JP": ("JPN", "Japan"),
    "KR": ("KOR", "South Korea", "Republic of Korea", "Korea, Republic of"),
    "MX": ("MEX", "Mexico"),
    "NL": ("NLD", "Netherlands", "Holland"),
    "NO": ("NOR", "Norway"),
    "NZ": ("NZL", "New Zealand"),
    "PH": ("PHL", "Philippines"),
    "PL": ("POL", "Poland"),
    "PT": ("PRT", "Portugal"),
    "RO": ("ROU", "Romania"),
    "SE": ("SWE", "Sweden"),
    "SG": ("SGP", "Singapore"),
    "TR": ("TUR", "Türkiye", "Turkey"),
    "UA": ("UKR", "Ukraine"),
    "US": ("USA", "United States", "United States of America", "U.S.", "U.S.A."),
    "ZA": ("ZAF", "South Africa"),
}
# Names that are more than one country: refused with both codes named.
AMBIGUOUS_COUNTRIES = {
    "korea": "KR (South Korea) or KP (North Korea)",
    "congo": "CG (Republic of the Congo) or CD (Democratic Republic of the Congo)",
    "virgin islands": "VG (British) or VI (U.S.)",
}
IDP_NAMES: dict[str, Source] = {
    "okta": Source.OKTA,
    "entra": Source.ENTRA,
    "entra id": Source.ENTRA,
    "microsoft entra id": Source.ENTRA,
    "azure ad": Source.ENTRA,
    "azure active directory": Source.ENTRA,
    "ping": Source.PING,
    "pingone": Source.PING,
    "pingfederate": Source.PING,
    "ping identity": Source.PING,
    "duo": Source.DUO,
    "cisco duo": Source.DUO,
}
TRUE_VALUES = frozenset({"true", "yes", "y", "1"})
FALSE_VALUES = frozenset({"false", "no", "n", "0", ""})


class RosterFileError(Exception):
    """The file as a whole cannot be read as a roster (exit 1): the message says why."""


class MappingError(Exception):
    """The flags or the mapping file do not fit the file (exit 2): the message says why."""


def _header_key(name: str) -> str:
    """Header names compare without case, spaces or punctuation."""
    return re.sub(r"[\W_]+", "", name.casefold())


def _name_key(name: str) -> str:
    """Country and IdP names compare without case, dots, extra spaces or a leading "the"."""
    words = name.casefold().replace(".", " ").split()
    return " ".join(words[1:] if words[:1] == ["the"] else words)


_COUNTRY_KEYS = {_name_key(name): code for code, names in COUNTRY_NAMES.items() for name in names}


# -- the mapping: flags and the YAML file ------------------------------------------------------


class Columns(BaseModel):
    """Which header names each field's column has (None: recognized by DEFAULT_COLUMNS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str | None = None
    display_name: list[str] | None = None
    department: str | None = None
    country: str | None = None
    hire_date: str | None = None
    termination_date: str | None = None
    status: str | None = None
    privileged: str | None = None
    idp: str | None = None

    @field_validator("display_name", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class ImportRules(BaseModel):
    """How a file is read: the flags over the --mapping file over these defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: Columns = Columns()
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    encoding: str = "utf-8-sig"
    header_rows: int = Field(default=1, ge=1, le=10, description="rows above the data")
    date_format: str | None = Field(default=None, description="strptime format; None: ISO 8601")
    # HR systems date a termination by the last day worked; terminated_on is the first day off.
    termination_date_means: Literal["last-day", "first-day-off"] = "last-day"
    active_values: list[str] = Field(default=list(DEFAULT_ACTIVE), min_length=1)
    terminated_values: list[str] = Field(default=list(DEFAULT_TERMINATED), min_length=1)
    privileged_departments: list[str] = []
    countries: dict[str, str] = Field(
        default={}, description="the export's own country values -> ISO alpha-2"
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value

    @field_validator("date_format")
    @classmethod
    def _a_format(cls, value: str | None) -> str | None:
        if value is not None and "%" not in value:
            raise ValueError(f"{value!r} has no strptime directive (%d, %m, %Y, …)")
        return value

    @field_validator("countries")
    @classmethod
    def _assigned_codes(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = [code for code in value.values() if code.upper() not in ISO_ALPHA2]
        if wrong:
            raise ValueError(f"not ISO 3166-1 alpha-2 codes: {', '.join(map(str, wrong))}")
        return {_name_key(name): code.upper() for name, code in value.items()}

    @model_validator(mode="after")
    def _one_meaning(self) -> ImportRules:
        both = {v.casefold() for v in self.active_values} & {
            v.casefold() for v in self.terminated_values
        }
        if both:
            raise ValueError(f"status values both active and terminated: {', '.join(both)}")
        return self


def import_rules(
    mapping_file: Path | None, overrides: dict[str, object], columns: dict[str, object]
) -> ImportRules:
    """The rules of the mapping file (if any) with the flags' values over them (`overrides`
    and `columns`: only the flags given)."""
    loaded: dict[str, object] = {}
    where = "the flags"
    if mapping_file is not None:
        where = str(mapping_file)
        try:
            # Every value as written: YAML 1.1 would read `NO` (Norway) or `Yes` as booleans.
            document = yaml.load(mapping_file.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
        except OSError as exc:
            raise MappingError(f"cannot read {mapping_file}: {exc.strerror}") from None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise MappingError(
                f"{mapping_file} is not YAML: {' '.join(str(exc).split())}"
            ) from None
        if document is not None and not isinstance(document, dict):
            raise MappingError(f"{mapping_file}: wants a mapping (columns:, date_format:, …)")
        loaded = dict(document or {})
    named = loaded.pop("columns", None) or {}
    if not isinstance(named, dict):
        raise MappingError(f"{where}: columns: wants a mapping (user: Work Email, …)")
    try:
        return ImportRules.model_validate({**loaded, **overrides, "columns": named | columns})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'mapping'}: "
            + error["msg"].removeprefix("Value error, ")
            for error in exc.errors(include_url=False)
        )
        raise MappingError(f"{where}: {problems}") from None


# -- reading: bytes -> header and rows with their line numbers --------------------------------


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (the line the row starts on, its fields)


def read_table(data: bytes, rules: ImportRules) -> Table:
    """The CSV's header and data rows; RosterFileError if it is no readable CSV."""
    text = _decoded(data, rules.encoding).removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0].rstrip("\r")
    delimiter = rules.delimiter or _sniffed_delimiter(first_line)
    # newline="": csv counts the line breaks inside quoted fields in its line_num.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for fields in reader:
            line, start = start, reader.line_num + 1
            if any(field.strip() for field in fields):  # blank lines, and Excel's ",,,,"
                rows.append((line, fields))
    except csv.Error as exc:
        raise RosterFileError(f"line {reader.line_num}: not readable as CSV: {exc}") from None
    if not rows:
        raise RosterFileError("empty: no header row")
    header = [name.strip() for name in rows[0][1]]
    data_rows = rows[rules.header_rows :]
    if not data_rows:
        raise RosterFileError(f"no rows below the header (line {rows[-1][0]})")
    return Table(header, data_rows)


def _decoded(data: bytes, encoding: str) -> str:
    wide = codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    if data.startswith(b"PK\x03\x04"):
        raise RosterFileError("an Excel workbook (.xlsx), not CSV: save it as CSV UTF-8")
    if not wide and data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise RosterFileError("UTF-16 text: save it as CSV UTF-8, or pass --encoding utf-16")
    if not wide and b"\x00" in data:
        raise RosterFileError("binary data (NUL bytes), not a CSV export")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RosterFileError(
            f"line {line}: not {encoding} text (byte 0x{data[exc.start]:02x}): save the export "
            "as CSV UTF-8, or name its encoding with --encoding (cp1252, for example)"
        ) from None


def _sniffed_delimiter(header_line: str) -> str:
    try:
        return csv.Sniffer().sniff(header_line, delimiters=",;\t|").delimiter
    except csv.Error:  # one column, or no telling: the standard one
        return ","


# -- mapping: which column holds each field ----------------------------------------------------


@dataclass(frozen=True)
class ColumnPlan:
    """Each field's column index (display_name: one or more; optional fields: None)."""

    header: list[str]
    user: int
    department: int
    country: int
    hire_date: int
    display_name: tuple[int, ...]
    termination_date: int | None
    status: int | None
    privileged: int | None
    idp: int | None


def plan_columns(header: list[str], columns: Columns) -> ColumnPlan:
    """Where each field is; MappingError naming the flag when a column is missing or twice."""
    keys = [_header_key(name) for name in header]

    def find(field: str, name: str) -> int | None:
        found = [index for index, key in enumerate(keys) if key == _header_key(name)]
        if len(found) > 1:
            raise MappingError(
                f"the header has {len(found)} columns named {name!r} (columns "
                f"{', '.join(str(i + 1) for i in found)}): rename one in the file"
            )
        return found[0] if found else None

    def missing(field: str, name: str | None) -> MappingError:
        shown = ", ".join(repr(name) for name in header[:40]) + (" …" if len(header) > 40 else "")
        what = f"no column {name!r}" if name else f"no {field.replace('_', ' ')} column"
        return MappingError(f"{what}: name it with {FLAGS[field]} (the header has {shown})")

    chosen: dict[str, int | None] = {}
    for field, defaults in DEFAULT_COLUMNS.items():
        named = getattr(columns, field)
        if named is not None:
            chosen[field] = find(field, named)
            if chosen[field] is None:
                raise missing(field, named)
            continue
        chosen[field] = next(
            (index for name in defaults if (index := find(field, name)) is not None), None
        )
        if chosen[field] is None and field in REQUIRED:
            raise missing(field, None)

    display: tuple[int, ...] = ()
    if columns.display_name:
        indexes = [find("display_name", name) for name in columns.display_name]
        if None in indexes:
            raise missing("display_name", columns.display_name[indexes.index(None)])
        display = tuple(i for i in indexes if i is not None)
    else:
        for names in DEFAULT_DISPLAY_NAME:
            indexes = [find("display_name", name) for name in names]
            if None not in indexes:
                display = tuple(i for i in indexes if i is not None)
                break
    return ColumnPlan(
        header=header,
        user=_int(chosen["user"]),
        department=_int(chosen["department"]),
        country=_int(chosen["country"]),
        hire_date=_int(chosen["hire_date"]),
        display_name=display,
        termination_date=chosen["termination_date"],
        status=chosen["status"],
        privileged=chosen["privileged"],
        idp=chosen["idp"],
    )


def _int(index: int | None) -> int:
    assert index is not None  # a required field's column, found above
    return index


# -- checking: one row -> a WorkforceUser, or its reasons ------------------------------------


def map_row(
    fields: list[str], plan: ColumnPlan, rules: ImportRules, today: date
) -> WorkforceUser | list[str]:
    """The row's roster entry, or every reason it cannot be one."""
    if len(fields) != len(plan.header):
        return [f"{len(fields)} fields, the header has {len(plan.header)}"]
    reasons: list[str] = []

    def cell(index: int) -> str:
        return fields[index].strip()

    def column(index: int | None) -> str:
        return repr(plan.header[index]) if index is not None else "?"

    user = normalize_user(cell(plan.user))
    if user is None:
        reasons.append(f"no user (column {column(plan.user)} is empty)")
    elif not user.isprintable() or any(char.isspace() for char in user):
        reasons.append(f"user {_shown(user)} holds spaces or control characters")
    department = cell(plan.department)
    if not department:
        reasons.append(f"no department (column {column(plan.department)} is empty)")
    country = _country(cell(plan.country), rules, reasons)
    hired = _date(cell(plan.hire_date), "hire date", rules, reasons, required=True)
    last, written = None, ""
    if plan.termination_date is not None:
        written = cell(plan.termination_date)
        last = _date(written, "termination date", rules, reasons)
    terminated_on = None
    if last is not None:
        shift = timedelta(days=1 if rules.termination_date_means == "last-day" else 0)
        terminated_on = last + shift
    if plan.status is not None:
        terminated_on = _with_status(
            cell(plan.status), terminated_on, bool(written), plan, rules, today, reasons
        )
    if hired is not None and terminated_on is not None and terminated_on <= hired:
        reasons.append(f"terminated ({last}) before the hire date ({hired})")
    privileged = department.casefold() in {d.casefold() for d in rules.privileged_departments}
    if plan.privileged is not None:
        flag = cell(plan.privileged).casefold()
        if flag in TRUE_VALUES:
            privileged = True
        elif flag not in FALSE_VALUES:
            reasons.append(f"privileged {_shown(flag)} is not true/false, yes/no or 1/0")
    idp = None
    if plan.idp is not None and (name := cell(plan.idp)):
        idp = IDP_NAMES.get(_name_key(name))
        if idp is None:
            reasons.append(f"identity provider {_shown(name)} is not Okta, Entra, Ping or Duo")
    if reasons or user is None or hired is None or country is None:
        return reasons
    display_name = " ".join(filter(None, (cell(i) for i in plan.display_name))) or None
    try:
        return WorkforceUser(
            user=user,
            display_name=display_name,
            department=department,
            country=country,
            privileged=privileged,
            idp=idp,
            active_from=hired,
            terminated_on=terminated_on,
        )
    except ValidationError as exc:  # all checked above: a model rule this file missed
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]


def _with_status(
    status: str,
    terminated_on: date | None,
    dated: bool,
    plan: ColumnPlan,
    rules: ImportRules,
    today: date,
    reasons: list[str],
) -> date | None:
    """The termination as the status column has it: the status says who works here now.
    `dated`: a termination date is written (maybe unreadable, and reported as such)."""
    value = status.casefold()
    if value in {v.casefold() for v in rules.active_values}:
        # A past termination date on an active row is an earlier employment (a rehire);
        # a future one is a termination already scheduled.
        return terminated_on if terminated_on is not None and terminated_on > today else None
    if value in {v.casefold() for v in rules.terminated_values}:
        if not dated:
            where = (
                f"column {plan.header[plan.termination_date]!r} is empty"
                if plan.termination_date is not None
                else "no termination date column: name it with --termination-date-column"
            )
            reasons.append(f"status {_shown(status)} means terminated, but no date ({where})")
        return terminated_on
    reasons.append(
        f"status {_shown(status)} is neither active ({', '.join(rules.active_values)}) nor "
        f"terminated ({', '.join(rules.terminated_values)}): say which with --active-values "
        "or --terminated-values"
    )
    return terminated_on


def _date(
    value: str, label: str, rules: ImportRules, reasons: list[str], required: bool = False
) -> date | None:
    if not value:
        if required:
            reasons.append(f"no {label}")
        return None
    try:
        if rules.date_format is not None:
            parsed = datetime.strptime(value, rules.date_format).date()
        else:
            try:
                parsed = date.fromisoformat(value)
            except ValueError:  # a timestamp: its date as written, no time zone applied
                parsed = datetime.fromisoformat(value).date()
    except ValueError:
        expected = (
            f"--date-format {rules.date_format}"
            if rules.date_format
            else "ISO 8601 (YYYY-MM-DD); declare another with --date-format, e.g. %m/%d/%Y"
        )
        reasons.append(f"{label} {_shown(value)} is not a date in {expected}")
        return None
    if not FIRST_DATE <= parsed <= LAST_DATE:
        stored = f"{FIRST_DATE} to {LAST_DATE}"
        reasons.append(f"{label} {parsed} is outside the dates the warehouse stores ({stored})")
        return None
    return parsed


def _country(value: str, rules: ImportRules, reasons: list[str]) -> str | None:
    if not value:
        reasons.append("no country")
        return None
    key = _name_key(value)
    code = rules.countries.get(key)
    if code is None and len(value) == 2 and value.upper() in ISO_ALPHA2:
        code = value.upper()
    if code is None:
        code = _COUNTRY_KEYS.get(key)
    if code is not None:
        return code
    if key in AMBIGUOUS_COUNTRIES:
        reasons.append(f"country {_shown(value)} is ambiguous: {AMBIGUOUS_COUNTRIES[key]}")
    else:
        reasons.append(
            f"country {_shown(value)} is not an ISO 3166-1 alpha-2 code nor a name this "
            "importer knows: give the code, or map it under countries: in --mapping"
        )
    return None


def _shown(value: str, limit: int = 60) -> str:
    """A cell's value for an error line: quoted, cut short, control characters escaped."""
    cut = value[:limit]
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in cut)
    return f"'{escaped}{'…' if len(value) > limit else ''}'"


@dataclass(frozen=True)
class CheckedRoster:
    users: list[WorkforceUser]
    problems: list[tuple[int, str]]  # (line, reason), in line order
    rows: int


def check_roster(data: bytes, rules: ImportRules, today: date) -> CheckedRoster:
    """Every row of the file checked: the users, or the problems (a user twice included)."""
    table = read_table(data, rules)
    plan = plan_columns(table.header, rules.columns)
    users: list[WorkforceUser] = []
    problems: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    for line, fields in table.rows:
        mapped = map_row(fields, plan, rules, today)
        if isinstance(mapped, list):
            problems.append((line, "; ".join(mapped)))
        elif (seen := first_line.setdefault(mapped.user, line)) != line:
            problems.append((line, f"user {mapped.user} is also on line {seen}"))
        else:
            users.append(mapped)
    return CheckedRoster(users, problems, len(table.rows))


def summary(users: Sequence[WorkforceUser], today: date) -> str:
    """Rows, active and terminated today, and the rows of each department."""
    terminated = sum(u.terminated_on is not None and u.terminated_on <= today for u in users)
    departments = Counter(user.department for user in users)
    ranked = sorted(departments.items(), key=lambda item: (-item[1], item[0]))
    by_department = ", ".join(f"{name} {count}" for name, count in ranked)
    return (
        f"{len(users)} rows ({len(users) - terminated} active, {terminated} terminated); "
        f"by department: {by_department}"
    )


# -- writing: the roster topic, or the warehouse -----------------------------------------------


def produce(users: Sequence[WorkforceUser], settings: Settings, bootstrap: str) -> str:
    """Each user's WorkforceUser JSON to the roster topic, keyed by login, every one
    acknowledged by the broker (acks=all) before this returns; where it went."""
    from pipeline.runtime.broker import BufferedProducer, create_topics

    topic = settings.topics.roster
    create_topics(bootstrap, [topic], settings.topics.partitions, settings.kafka)
    producer = BufferedProducer(bootstrap, **settings.kafka.aiokafka_options())
    try:
        for user in users:
            producer.send(topic, user.user.encode(), user.model_dump_json().encode())
    finally:
        producer.close()  # delivers what is buffered and waits for its acknowledgements
    return f"{topic} at {bootstrap}"


def store(users: Sequence[WorkforceUser], settings: Settings, rules: BatchRules) -> str:
    """The rows the worker would store for these roster messages (pseudonymized when the key
    is set), inserted into the warehouse's roster table after migrating it; where it went.

    One insert without a deduplication token: the worker's offset-range tokens would make a
    second file with rows on the same lines look like a replay. The roster table keeps the
    latest row of a user (ReplacingMergeTree(ingested_at) ORDER BY user), so importing a file
    again changes nothing, and importing an older one after a newer one makes the older win,
    as the person importing it asked."""
    from pipeline.aggregate.batch import ROSTER_COLUMNS, RawMessage, build_batch
    from pipeline.runtime.worker import prepare_warehouse
    from pipeline.sinks.warehouse import Warehouse

    topic = settings.topics.roster
    messages = [
        RawMessage(topic, 0, offset, user.user.encode(), user.model_dump_json().encode())
        for offset, user in enumerate(users)
    ]
    batch = build_batch(messages, rules)
    if batch.dead_letters:  # rows checked above: the worker's rules differ from this file's
        dead = batch.dead_letters[0]
        user = users[dead.message.offset].user
        raise RosterFileError(f"the worker's batch builder refuses {user}: {dead.reason}")
    with Warehouse.from_settings(settings) as warehouse:
        for change in prepare_warehouse(warehouse, settings):
            print(f"pipeline roster import: {change}", file=sys.stderr)
        warehouse.insert("roster", batch.rows["roster"], ROSTER_COLUMNS)
        return f"the warehouse {warehouse.location}"


# -- the command -------------------------------------------------------------------------------


def add_command(commands: argparse._SubParsersAction) -> None:
    """`pipeline roster import FILE`."""
    roster = commands.add_parser(
        "roster",
        help="the workforce roster (the denominators) from an HR export",
        description="The workforce roster: who works here, in which department and country.",
    ).add_subparsers(dest="roster_command", required=True)
    command = roster.add_parser(
        "import",
        help="check an HR CSV export and write it to the roster topic or the warehouse",
        description="Read an HR system's CSV export (header row; ',' ';' tab or '|'; UTF-8, "
        "a BOM allowed), check every row, and write the roster: to the roster topic when "
        "PIPELINE_KAFKA_BOOTSTRAP is set, else straight to PIPELINE_CLICKHOUSE_DSN. A bad row "
        "is reported as 'FILE line N: reason', and then nothing is written (exit 1). Columns "
        "are recognized by their usual names (Work Email, Department, Country, Hire Date, "
        "Termination Date, Status, …) or named by the flags below or a --mapping YAML file.",
    )
    command.add_argument("file", help="the CSV export, or - for stdin")
    command.add_argument("--mapping", type=Path, help="a YAML file of these settings")
    for field, flag in FLAGS.items():
        if field == "display_name":
            command.add_argument(
                flag,
                action="append",
                metavar="NAME",
                help="the display name's column; twice or more: joined by a space "
                "(--display-name-column 'First Name' --display-name-column 'Last Name')",
            )
        else:
            command.add_argument(flag, metavar="NAME", help=f"the {field.replace('_', ' ')} column")
    command.add_argument(
        "--delimiter",
        type=_delimiter,
        help="the field separator (default: sniffed from the header)",
    )
    command.add_argument("--encoding", help="the file's text encoding (default: utf-8-sig)")
    command.add_argument(
        "--header-rows",
        type=int,
        metavar="N",
        help="rows above the data, the first naming the columns (SuccessFactors' user data "
        "file: 2)",
    )
    command.add_argument(
        "--date-format", metavar="FORMAT", help="strptime format of the dates (default: ISO 8601)"
    )
    command.add_argument(
        "--termination-date-means",
        choices=["last-day", "first-day-off"],
        help="the termination date is the last day worked (default, as HR systems keep it) "
        "or the first day off",
    )
    command.add_argument(
        "--active-values", type=_values, metavar="A,B", help="status values of people at work"
    )
    command.add_argument(
        "--terminated-values", type=_values, metavar="A,B", help="status values of people gone"
    )
    command.add_argument(
        "--privileged-departments",
        type=_values,
        metavar="A,B",
        help="departments whose people all count as privileged",
    )
    command.add_argument(
        "--check", action="store_true", help="check every row and print the summary; write nothing"
    )
    command.set_defaults(handler=_import)


def _delimiter(text: str) -> str:
    value = {"tab": "\t", "\\t": "\t"}.get(text.lower(), text)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"one character (or 'tab'), not {text!r}")
    return value


def _values(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _import(args: argparse.Namespace) -> int:
    name = "stdin" if args.file == "-" else args.file
    overrides: dict[str, object] = {
        key: value
        for key, value in {
            "delimiter": args.delimiter,
            "encoding": args.encoding,
            "header_rows": args.header_rows,
            "date_format": args.date_format,
            "termination_date_means": args.termination_date_means,
            "active_values": args.active_values,
            "terminated_values": args.terminated_values,
            "privileged_departments": args.privileged_departments,
        }.items()
        if value is not None
    }
    columns: dict[str, object] = {
        field: value
        for field, flag in FLAGS.items()
        if (value := getattr(args, flag.removeprefix("--").replace("-", "_"))) is not None
    }
    today = date.today()
    try:
        rules = import_rules(args.mapping, overrides, columns)
        data = _read(args.file)
        checked = check_roster(data, rules, today)
    except MappingError as exc:
        print(f"pipeline roster import: {name}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pipeline roster import: cannot read {name}: {exc.strerror}", file=sys.stderr)
        return 2
    except RosterFileError as exc:
        print(f"pipeline roster import: {name}: {exc}", file=sys.stderr)
        return 1
    for line, reason in checked.problems:
        print(f"{name} line {line}: {' '.join(reason.split())}", file=sys.stderr)
    if checked.problems:
        print(
            f"pipeline roster import: {name}: {len(checked.problems)} of {checked.rows} rows "
            "cannot be imported; nothing written",
            file=sys.stderr,
        )
        return 1
    if not any(user.privileged for user in checked.users):
        print(
            "pipeline roster import: note: nobody is privileged (no privileged column or none "
            "set, and no --privileged-departments)",
            file=sys.stderr,
        )
    if args.check:
        print(f"{name}: {summary(checked.users, today)}; checked, nothing written (--check)")
        return 0
    return _write(name, checked.users, today)


def _read(file: str) -> bytes:
    if file == "-":
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    else:
        size = Path(file).stat().st_size
        if size > MAX_FILE_BYTES:
            raise RosterFileError(f"{size:,} bytes, over the {MAX_FILE_BYTES:,} read at most")
        data = Path(file).read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise RosterFileError(f"over the {MAX_FILE_BYTES:,} bytes read at most")
    return data


def _write(name: str, users: list[WorkforceUser], today: date) -> int:
    from aiokafka.errors import KafkaError

    from pipeline.aggregate.batch import BatchRules
    from pipeline.entry import warehouse_errors

    settings = Settings()
    bootstrap = settings.kafka.bootstrap
    try:  # the worker's rules: its pseudonymization key among them
        rules = None if bootstrap else BatchRules.from_settings(settings)
    except (ValueError, OSError) as exc:  # a key too short, or a key file not readable
        detail = exc.strerror if isinstance(exc, OSError) else str(exc)
        print(f"pipeline roster import: PIPELINE_PSEUDONYMIZE_KEY: {detail}", file=sys.stderr)
        return 2

    def write() -> int:
        try:
            if bootstrap:
                where = produce(users, settings, bootstrap)
            else:
                assert rules is not None
                where = store(users, settings, rules)
        except KafkaError as exc:
            print(
                f"pipeline roster import: Kafka did not take the roster ({type(exc).__name__}: "
                f"{exc}); rows sent before it may be on {settings.topics.roster}: importing "
                "the file again is harmless (a user's latest row wins)",
                file=sys.stderr,
            )
            return 1
        except RosterFileError as exc:
            print(f"pipeline roster import: {name}: {exc}; nothing written", file=sys.stderr)
            return 1
        print(f"{name}: {summary(users, today)}; written to {where}")
        return 0

    return warehouse_errors(write)
