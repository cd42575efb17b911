"""The import rules on the standalone store, on SQLite and MariaDB: nothing erased, nobody mixed up."""

import csv
import json
import os
import stat
import subprocess
import sys

from sqlalchemy import func, select

from tests.accounts.conftest import ADMIN
from tests.conftest import member_row, write_export
from verenigingen.mijnrood.generator import HEADER, generate_export
from verenigingen.standalone.importer import Importer
from verenigingen.standalone.schema import members, users


def run(world, path, **options):
    return Importer(world.shost, ADMIN).run(path, create_accounts=False, **options)


def stored(world, member_id):
    with world.store.transaction(readonly=True):
        row = (
            world.store.db.execute(select(members).where(func.lower(members.c.member_id) == member_id.lower()))
            .mappings()
            .one()
        )
    return dict(row)


def give_account(world, member_id):
    member = stored(world, member_id)
    world.add_user(member["email"], member["full_name"], member=member["name"])
    with world.store.transaction():
        world.store.db.execute(members.update().where(members.c.name == member["name"]).values(user=member["email"]))


def rejected_rows(result):
    with open(result.rejected_rows_file, encoding="utf-8-sig", newline="") as stream:
        return list(csv.reader(stream, delimiter=";"))


def test_a_narrower_file_never_erases_what_it_does_not_have(world, tmp_path):
    full = tmp_path / "full.csv"
    generate_export(full, 30, seed=21)
    assert run(world, full).members_created == 30
    with world.store.transaction(readonly=True):
        before = [dict(r) for r in world.store.db.execute(select(members).order_by(members.c.name)).mappings()]
    narrow_header = ["Lidnr.", "Voornaam", "Tussenvoegsel", "Achternaam", "E-mailadres"]
    source = list(csv.DictReader(full.open(encoding="utf-8", newline=""), delimiter=";"))
    narrow = write_export(tmp_path / "narrow.csv", source, header=narrow_header)
    result = run(world, narrow)
    assert (result.members_unchanged, result.members_updated, result.invalid_rows) == (30, 0, 0)
    with world.store.transaction(readonly=True):
        after = [dict(r) for r in world.store.db.execute(select(members).order_by(members.c.name)).mappings()]
    assert after == before


def test_an_empty_cell_clears_a_value_but_never_lidnr_or_email(world, export_file):
    run(world, export_file([member_row()]))
    result = run(world, export_file([member_row(**{"Telefoonnr.": "", "E-mailadres": ""})]))
    assert result.members_updated == 1
    member = stored(world, "1001")
    assert (member["phone"], member["email"], member["iban"]) == (None, "anna.tenboom@example.nl", "NL91ABNA0417164300")


def test_reimporting_the_rejected_rows_never_turns_a_member_into_another_person(world, export_file):
    piet = member_row(Voornaam="Piet", Tussenvoegsel="", Achternaam="Pieters", IBAN="NL02 ABNA 0123 4567 89")
    piet["E-mailadres"] = "piet@example.nl"
    first = run(world, export_file([member_row(), piet]))
    assert (first.members_created, first.invalid_rows) == (1, 1)
    (_, line) = rejected_rows(first)
    assert line[0] == "3" and "the same Lidnr. 1001 as row 2" in line[1]
    give_account(world, "1001")
    again = run(world, first.rejected_rows_file)
    assert (again.members_created, again.members_updated, again.invalid_rows) == (0, 0, 1)
    (_, refused) = rejected_rows(again)
    assert refused[0] == "2" and "other_person" not in refused[1] and "Lidnr. 1001 is stored for another" in refused[1]
    member = stored(world, "1001")
    assert (member["full_name"], member["email"], member["iban"]) == (
        "Anna ten Boom",
        "anna.tenboom@example.nl",
        "NL91ABNA0417164300",
    )


def test_an_email_change_of_a_member_with_an_account_is_refused_and_without_one_applied(world, export_file):
    run(world, export_file([member_row(), member_row(**{"Lidnr.": "1002", "E-mailadres": "b@example.nl"})]))
    give_account(world, "1001")
    moved = [
        member_row(**{"E-mailadres": "anna@nieuw.nl"}),
        member_row(**{"Lidnr.": "1002", "E-mailadres": "b@nieuw.nl"}),
    ]
    result = run(world, export_file(moved))
    assert (result.members_updated, result.invalid_rows) == (1, 1)
    assert "has an account under its stored e-mail address" in rejected_rows(result)[1][1]
    assert stored(world, "1001")["email"] == "anna.tenboom@example.nl"
    assert stored(world, "1002")["email"] == "b@nieuw.nl"


def test_a_corrected_name_reaches_the_account(world, export_file):
    run(world, export_file([member_row()]))
    give_account(world, "1001")
    assert run(world, export_file([member_row(Achternaam="Boom-Smit")])).members_updated == 1
    with world.store.transaction(readonly=True):
        assert world.store.db.scalar(select(users.c.full_name).where(users.c.member.is_not(None))) == (
            "Anna ten Boom-Smit"
        )


def test_lidnr_and_email_in_other_case_update_the_same_member_on_every_database(world, export_file):
    run(world, export_file([member_row(**{"Lidnr.": "ab-12"})]))
    upper = member_row(**{"Lidnr.": "AB-12", "E-mailadres": "ANNA.TENBOOM@EXAMPLE.NL", "Plaats": "Utrecht"})
    result = run(world, export_file([upper]))
    assert (result.members_created, result.members_updated, result.invalid_rows) == (0, 1, 0)
    with world.store.transaction(readonly=True):
        assert world.store.count(members) == 1


def test_a_row_nobody_could_recognise_later_is_refused(world, export_file):
    result = run(world, export_file([member_row(**{"Lidnr.": "", "E-mailadres": ""})]))
    assert (result.members_created, result.invalid_rows) == (0, 1)
    assert "no Lidnr. and no e-mail address" in rejected_rows(result)[1][1]


def test_the_rejected_rows_file_is_safe_complete_and_its_owners_only(world, tmp_path):
    path = tmp_path / "leden.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, delimiter=";")
        writer.writerow(HEADER)
        writer.writerow(list(member_row(Plaats='=HYPERLINK("http://x")').values()))
        writer.writerow([*member_row(**{"Lidnr.": "2", "E-mailadres": "b@x.nl"}).values(), "@SUM(A1)", "extra"])
    result = run(world, path)
    assert stat.S_IMODE(os.stat(result.rejected_rows_file).st_mode) == 0o600
    header, formula, extra = rejected_rows(result)
    assert header[:2] == ["Row", "Reason rejected"] and header[2:] == list(HEADER)
    assert formula[0] == "2" and '\'=HYPERLINK("http://x")' in formula and "leading '" in formula[1]
    assert extra[0] == "3" and extra[-2:] == ["'@SUM(A1)", "extra"] and len(extra) == 2 + len(HEADER) + 2


def test_two_imports_of_one_file_at_the_same_moment_both_finish_without_losing_a_row(world, tmp_path):
    path = tmp_path / "leden.csv"
    generate_export(path, 1200, seed=22)
    command = [sys.executable, "-m", "verenigingen.standalone.cli", "import", str(path), "--no-accounts", "--json"]
    command += ["--as", ADMIN]
    processes = [
        subprocess.Popen(command, env=world.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], [err for _, err in outputs]
    reports = [json.loads(out) for out, _ in outputs]
    assert [r["invalid_rows"] for r in reports] == [0, 0]
    assert sum(r["members_created"] for r in reports) == 1200
    assert all(r["members_created"] + r["members_updated"] + r["members_unchanged"] == 1200 for r in reports)
    with world.store.transaction(readonly=True):
        assert world.store.count(members) == 1200


def test_skipped_rows_are_counted_by_the_import_and_never_rejected(world, tmp_path):
    path = tmp_path / "leden.csv"
    rows = [member_row(), member_row(Lidmaatschapstype="Dubbel", **{"E-mailadres": "x@example.nl"})]
    write_export(path, [*rows, dict.fromkeys(HEADER, "-")])
    done = subprocess.run(
        [sys.executable, "-m", "verenigingen.standalone.cli", "import", str(path), "--no-accounts", "--json"],
        env=world.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(done.stdout)
    assert (report["rows"], report["skipped_rows"], report["invalid_rows"], report["members_created"]) == (3, 2, 0, 1)
    assert report["rejected_rows_file"] is None
