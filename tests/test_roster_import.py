"""`pipeline roster import FILE`: HR exports as BambooHR, Workday, SAP SuccessFactors and
Personio write them (tests/fixtures/roster/README.md says where each header set comes from),
checked row by row, written to the real embedded warehouse (chDB) or through the real
Kafka-protocol broker to the roster topic.

The command runs through a parser built with `add_command`, as `pipeline.cli` builds its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from pipeline.aggregate.privacy import Pseudonymizer
from pipeline.cli import main
from pipeline.model import WorkforceUser
from pipeline.runtime.broker import free_port
from pipeline.settings import Topics
from pipeline.sinks.warehouse import Warehouse

FIXTURES = Path(__file__).parent / "fixtures" / "roster"
ROSTER_QUERY = (
    "SELECT user, display_name, department, country, privileged, idp, active_from, "
    "terminated_on FROM roster FINAL ORDER BY user"
)
KEY = "a-test-pseudonymization-key-of-32b"


def roster_import(*args: str | Path) -> int:
    """`pipeline roster import ARGS`, in this process."""
    return main(["roster", "import", *map(str, args)])


@pytest.fixture(scope="module")
def dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One embedded warehouse for the module (migrated by the first import)."""
    return f"chdb://{tmp_path_factory.mktemp('roster') / 'wh'}"


@pytest.fixture
def warehouse(dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The direct path: no Kafka configured, the module's warehouse with an empty roster."""
    for name in ("KAFKA_BOOTSTRAP", "PSEUDONYMIZE_KEY", "PSEUDONYMIZE_KEY_FILE"):
        monkeypatch.delenv(f"PIPELINE_{name}", raising=False)
    monkeypatch.setenv("PIPELINE_CLICKHOUSE_DSN", dsn)
    with Warehouse(dsn) as opened:
        opened.client.command("TRUNCATE TABLE IF EXISTS roster")
    yield dsn


def stored(dsn: str) -> list[tuple]:
    with Warehouse(dsn) as opened:
        return opened.query(ROSTER_QUERY)


def test_bamboohr_report_by_its_default_column_names(
    warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Field labels as headers, country names, terminated by Status (with its date)."""
    assert roster_import(FIXTURES / "bamboohr.csv", "--privileged-departments", "it") == 0
    out = capsys.readouterr().out
    assert "6 rows (4 active, 2 terminated); by department: Engineering 2, IT 2, Finance 1, " in out
    assert f"written to the warehouse {warehouse}" in out
    rows = stored(warehouse)
    assert rows == [
        ("ana.silva@example.com", "Ana Silva", "Engineering", "PT", False, None,
         date(2019, 3, 4), None),
        ("bruno.keller@example.com", "Bruno Keller", "IT", "CH", True, None,
         date(2020, 11, 16), None),
        # The last day worked was 2023-06-30: from 2023-07-01 Chloé is not in the workforce.
        ("chloe.martin@example.com", "Chloé Martin", "Sales", "FR", False, None,
         date(2018, 1, 8), date(2023, 7, 1)),
        ("dev.patel@example.com", "Dev Patel", "Engineering", "IN", False, None,
         date(2021, 7, 1), None),
        ("emma.brown@example.com", "Emma Brown", "Finance", "GB", False, None,
         date(2017, 5, 22), date(2024, 2, 1)),
        ("farid.haddad@example.com", "Farid Haddad", "IT", "AE", True, None,
         date(2022, 2, 14), None),
    ]  # fmt: skip


def test_workday_report_with_a_declared_date_format(
    warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    workday = FIXTURES / "workday.csv"
    # US dates are not guessed: every row is reported, and nothing is written.
    assert roster_import(workday) == 1
    errors = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in errors[:5]] == [
        f"{workday} line {n}" for n in range(2, 7)
    ]
    assert "hire date '03/15/2021' is not a date in ISO 8601" in errors[0]
    assert errors[-1].endswith("5 of 5 rows cannot be imported; nothing written")
    assert stored(warehouse) == []

    assert roster_import(workday, "--date-format", "%m/%d/%Y") == 0
    assert "5 rows (4 active, 1 terminated)" in capsys.readouterr().out
    rows = {row[0]: row for row in stored(warehouse)}
    assert rows["grace.okafor@example.com"][1:4] == ("Grace Okafor", "Engineering", "US")
    assert rows["grace.okafor@example.com"][6:] == (date(2021, 3, 15), None)
    # Active Status "No", termination date 12/31/2022.
    assert rows["isabel.reyes@example.com"][6:] == (date(2018, 6, 7), date(2023, 1, 1))


def test_successfactors_user_data_file_through_a_mapping_file(
    warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two header rows, upper-case system keys, a country spelled the export's way."""
    mapping = FIXTURES / "successfactors.yaml"
    assert roster_import(FIXTURES / "successfactors.csv", "--mapping", mapping) == 0
    assert "4 rows (4 active, 0 terminated)" in capsys.readouterr().out
    assert stored(warehouse) == [
        ("jonas.schmidt@example.com", "Jonas Schmidt", "Security", "DE", True, None,
         date(2016, 9, 1), None),
        ("lucia.garcia@example.com", "Lucia Garcia", "Marketing", "ES", False, None,
         date(2021, 12, 1), None),
        ("mei.tanaka@example.com", "Mei Tanaka", "Engineering", "JP", False, None,
         date(2020, 4, 15), None),
        ("petr.novak@example.com", "Petr Novak", "Engineering", "CZ", False, None,
         date(2019, 2, 3), None),
    ]  # fmt: skip


def test_a_successfactors_inactive_row_cannot_be_dated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The UDF has no termination date: "inactive" (on leave, or gone) is refused, saying so."""
    lines = (FIXTURES / "successfactors.csv").read_bytes().splitlines(keepends=True)
    udf = tmp_path / "udf.csv"
    udf.write_bytes(b"".join(lines[:3]) + lines[3].replace(b"active,", b"inactive,", 1))
    assert roster_import(udf, "--mapping", FIXTURES / "successfactors.yaml", "--check") == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{udf} line 4: status 'inactive' means terminated, but no date (no termination date "
        "column: name it with --termination-date-column)"
    )


def test_personio_excel_export_bom_semicolons_and_its_statuses(
    warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    personio = FIXTURES / "personio.csv"
    assert personio.read_bytes().startswith(b"\xef\xbb\xbfID;")
    assert roster_import(personio, "--date-format", "%d.%m.%Y") == 0
    assert "4 rows (3 active, 1 terminated); by department: Engineering 2, Operations 2" in (
        capsys.readouterr().out
    )
    rows = {row[0]: row for row in stored(warehouse)}
    assert rows["lena.mueller@example.com"][1:4] == ("Lena Müller", "Engineering", "DE")
    assert rows["tom.devries@example.com"][7] is None  # on leave: in the workforce
    assert rows["sara.huber@example.com"][6:] == (date(2017, 2, 1), date(2023, 4, 1))
    # onboarding, hired in the future (a quoted "Warszawa; Biuro 2" before it on the line)
    assert rows["jan.kowalski@example.com"][3:] == ("PL", False, None, date(2099, 12, 1), None)


def test_privileged_and_idp_columns_and_termination_by_date(
    warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No status column: a termination date alone terminates; here it is the first day off."""
    generic = FIXTURES / "generic.csv"
    assert roster_import(generic, "--termination-date-means", "first-day-off") == 0
    assert "4 rows (3 active, 1 terminated)" in capsys.readouterr().out
    assert stored(warehouse) == [
        ("ana@example.com", "Ana Lima", "Engineering", "BR", False, "okta",
         date(2022, 1, 10), None),
        ("ben@example.com", "Ben Cho", "IT", "KR", True, "entra", date(2021, 5, 3), None),
        ("cai@example.com", "Cai Wen", "Sales", "SG", False, "ping",
         date(2020, 9, 14), date(2024, 2, 29)),
        ("dee@example.com", None, "Legal", "US", True, "duo", date(2023, 3, 1), None),
    ]  # fmt: skip


def test_every_bad_row_is_reported_on_its_line_and_nothing_is_written(
    warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert roster_import(FIXTURES / "bamboohr.csv") == 0
    before = stored(warehouse)
    capsys.readouterr()

    bad = FIXTURES / "bad_rows.csv"
    assert roster_import(bad) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    # The header is line 1; line 4's quoted field runs onto line 5; line 12 is blank.
    expected = {
        3: "no user (column 'Work Email' is empty)",
        4: "hire date '04/03/2019' is not a date in ISO 8601",
        6: "status 'Contractor' is neither active",
        7: "country 'Narnia' is not an ISO 3166-1 alpha-2 code",
        8: "country 'Korea' is ambiguous: KR (South Korea) or KP (North Korea)",
        9: "status 'Inactive' means terminated, but no date (column 'Termination Date' is empty)",
        10: "terminated (2019-12-31) before the hire date (2020-01-05)",
        11: "user ok.one@example.com is also on line 2",
        13: "5 fields, the header has 10",
        14: "hire date 1900-01-01 is outside the dates the warehouse stores",
        15: "no user (column 'Work Email' is empty); country 'Atlantis' is not",
    }
    assert len(lines) == len(expected) + 1
    for line, (number, reason) in zip(lines, expected.items(), strict=False):
        assert line.startswith(f"{bad} line {number}: {reason}"), line
    assert lines[-1].endswith("11 of 13 rows cannot be imported; nothing written")
    assert stored(warehouse) == before


def test_pseudonymized_on_the_direct_path(
    warehouse: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The worker's rows: the login as its pseudonym, no display name."""
    monkeypatch.setenv("PIPELINE_PSEUDONYMIZE_KEY", KEY)
    assert roster_import(FIXTURES / "generic.csv", "--termination-date-means", "first-day-off") == 0
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err
    pseudonym = Pseudonymizer(KEY.encode())
    logins = ["ana@example.com", "ben@example.com", "cai@example.com", "dee@example.com"]
    rows = stored(warehouse)
    assert sorted(row[0] for row in rows) == sorted(pseudonym(login) for login in logins)
    assert {row[1] for row in rows} == {None}
    assert all("@" not in str(value) for row in rows for value in row)
    by_user = {row[0]: row for row in rows}
    assert by_user[pseudonym("ben@example.com")][2:6] == ("IT", "KR", True, "entra")


def test_a_second_file_on_the_same_lines_is_not_dropped_and_a_user_keeps_the_latest_row(
    warehouse: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    header = "user,department,country,active_from\n"
    first.write_text(header + "ana@example.com,Sales,US,2020-01-01\n")
    second.write_text(header + "bob@example.com,IT,DE,2021-01-01\n")
    assert roster_import(first) == 0 and roster_import(second) == 0
    assert [row[0] for row in stored(warehouse)] == ["ana@example.com", "bob@example.com"]
    assert roster_import(first) == 0  # the same file again: nothing changes
    assert len(stored(warehouse)) == 2
    first.write_text(header + "ana@example.com,Legal,US,2020-01-01\n")
    assert roster_import(first) == 0  # a changed row: the latest wins
    assert [row[2] for row in stored(warehouse)] == ["Legal", "IT"]
    capsys.readouterr()


def test_kafka_path_produces_workforce_users_keyed_by_login(
    broker: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_KAFKA_BOOTSTRAP", broker)
    # No warehouse on this path: a DSN that would be created if it were used.
    monkeypatch.setenv("PIPELINE_CLICKHOUSE_DSN", f"chdb://{tmp_path / 'unused'}")
    assert roster_import(FIXTURES / "bamboohr.csv") == 0
    assert "6 rows (4 active, 2 terminated)" in capsys.readouterr().out
    assert not (tmp_path / "unused").exists()

    messages = _consume(broker, Topics().roster, expected=6)
    users = {key.decode(): WorkforceUser.model_validate_json(value) for key, value in messages}
    assert len(messages) == len(users)
    assert sorted(users) == [
        "ana.silva@example.com",
        "bruno.keller@example.com",
        "chloe.martin@example.com",
        "dev.patel@example.com",
        "emma.brown@example.com",
        "farid.haddad@example.com",
    ]
    assert users["chloe.martin@example.com"] == WorkforceUser(
        user="chloe.martin@example.com",
        display_name="Chloé Martin",
        department="Sales",
        country="FR",
        privileged=False,
        active_from=date(2018, 1, 8),
        terminated_on=date(2023, 7, 1),
    )


def _consume(bootstrap: str, topic: str, expected: int) -> list[tuple[bytes, bytes]]:
    """The topic's messages from the start, once `expected` have arrived (or 60 s passed),
    and whatever one more poll brings."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        messages: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + 60
        while len(messages) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                messages.extend((record.key, record.value) for record in records)
        messages += [  # one more poll: a message more than expected would show here
            (record.key, record.value)
            for records in consumer.poll(timeout_ms=1000).values()
            for record in records
        ]
        return messages
    finally:
        consumer.close()


def test_an_unreachable_broker_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("PIPELINE_KAFKA_CONNECT_TIMEOUT", "2")
    assert roster_import(FIXTURES / "generic.csv") == 2
    err = capsys.readouterr().err
    assert "cannot set up the Kafka topics" in err and "Traceback" not in err


def test_check_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_CLICKHOUSE_DSN", f"chdb://{tmp_path / 'wh'}")
    monkeypatch.delenv("PIPELINE_KAFKA_BOOTSTRAP", raising=False)
    assert roster_import(FIXTURES / "bamboohr.csv", "--check") == 0
    assert "6 rows (4 active, 2 terminated)" in capsys.readouterr().out
    assert not (tmp_path / "wh").exists()


def test_a_status_column_says_who_works_here_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An active row's past termination (a rehire) is dropped, a future one kept; status
    values of the export's own are named by flags."""
    export = tmp_path / "export.tsv"
    export.write_text(
        "Work Email\tDepartment\tCountry\tHire Date\tTermination Date\tWorker Status\n"
        "rehired@example.com\tSales\tUS\t2010-01-04\t2001-05-31\tActive\n"
        "leaving@example.com\tSales\tUS\t2010-01-04\t2140-01-31\tActive\n"
        "gone@example.com\tSales\tUS\t2010-01-04\t2015-01-31\tSeparated - Voluntary\n"
    )
    assert roster_import(export, "--check") == 1
    assert "status 'Separated - Voluntary' is neither active" in capsys.readouterr().err
    flags = ["--delimiter", "tab", "--terminated-values", "Separated - Voluntary,Retired"]
    assert roster_import(export, "--check", *flags) == 0
    assert "3 rows (2 active, 1 terminated)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message", "code"),
    [
        (b"", "empty: no header row", 1),
        (b"user,department,country,active_from\n", "no rows below the header (line 1)", 1),
        (b"PK\x03\x04\x14\x00\x06\x00", "an Excel workbook (.xlsx), not CSV", 1),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary data (NUL bytes), not a CSV export", 1),
        ("user\n".encode("utf-16"), "UTF-16 text: save it as CSV UTF-8", 1),
        (
            b"user,department,country,active_from\nb\xe9a@example.com,Sales,FR,2020-01-01\n",
            "line 2: not utf-8-sig text (byte 0xe9)",
            1,
        ),
        (
            b'user,department\n"' + b"x" * 200_000 + b'",Sales\n',
            "line 2: not readable as CSV: field larger than field limit",
            1,
        ),
        (b"name,team\nana,Sales\n", "no user column: name it with --user-column", 2),
        (
            b"email,EMAIL,department,country,active_from\na@x.com,a@x.com,IT,US,2020-01-01\n",
            "the header has 2 columns named 'email' (columns 1, 2)",
            2,
        ),
    ],
)
def test_unreadable_files_are_one_line_without_a_traceback(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    message: str,
    code: int,
) -> None:
    export = tmp_path / "export.csv"
    export.write_bytes(content)
    assert roster_import(export) == code
    err = capsys.readouterr().err
    assert err.splitlines() == [err.strip()] and message in err, err
    assert "Traceback" not in err


def test_flags_and_mapping_files_that_do_not_fit_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bamboo = FIXTURES / "bamboohr.csv"
    assert roster_import(tmp_path / "missing.csv") == 2
    assert "cannot read" in capsys.readouterr().err
    assert roster_import(bamboo, "--user-column", "Login Name") == 2
    err = capsys.readouterr().err
    assert "no column 'Login Name': name it with --user-column (the header has 'Employee #'" in err
    mapping = tmp_path / "map.yaml"
    mapping.write_text("columns:\n  email: Work Email\nheader_row: 2\n")
    assert roster_import(bamboo, "--mapping", mapping) == 2
    err = capsys.readouterr().err
    assert "columns.email: Extra inputs are not permitted" in err and "header_row" in err
    mapping.write_text("countries: {Portugal: XX}\n")
    assert roster_import(bamboo, "--mapping", mapping) == 2
    assert "not ISO 3166-1 alpha-2 codes: XX" in capsys.readouterr().err
    mapping.write_text("[not, a, mapping]\n")
    assert roster_import(bamboo, "--mapping", mapping) == 2
    assert "wants a mapping" in capsys.readouterr().err


def test_a_mapping_file_reads_values_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """YAML 1.1 reads NO (Norway) and Yes as booleans: the mapping file takes them as text."""
    export = tmp_path / "export.csv"
    export.write_text(
        "Email,Team,Land,Start,Aktiv\n"
        "ola@example.com,IT,Norge,2020-01-01,Ja\n"
        "kari@example.com,IT,NO,2020-01-01,Nei\n"
    )
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "columns: {department: Team, country: Land, hire_date: Start, status: Aktiv}\n"
        "countries: {Norge: NO}\n"
        "active_values: [Ja, Yes]\n"
        "terminated_values: [Nei, No]\n"
    )
    assert roster_import(export, "--mapping", mapping, "--check") == 1
    err = capsys.readouterr().err
    assert "line 3: status 'Nei' means terminated, but no date (no termination date" in err
    assert "Norge" not in err  # mapped
