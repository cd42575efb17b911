"""The import rules on their own: what a valid row does to the stored members it could match."""

import pytest

from tests.conftest import TODAY, member_row
from verenigingen.mijnrood import MijnroodExport
from verenigingen.mijnrood.generator import HEADER
from verenigingen.mijnrood.rows import match_key
from verenigingen.mijnrood.updates import (
    CREATE,
    REFUSE,
    UNCHANGED,
    UPDATE,
    StoredMember,
    decide,
    present_fields,
    remember,
)


def rows_of(export_file, *rows, header=HEADER):
    export = MijnroodExport(export_file(list(rows), header=header), today=TODAY)
    results = list(export)
    assert all(r.valid for r in results), [r.errors for r in results]
    return results, present_fields(frozenset(export.header.positions))


def stored_from(row, name="MEM-1", user=None, **changes):
    return StoredMember(name, {**row.values, **changes}, user)


def decide_against(row, present, *stored):
    by_id = {match_key(s.values["member_id"]): s for s in stored if s.values.get("member_id")}
    by_email = {match_key(s.values["email"]): s for s in stored if s.values.get("email")}
    return decide(row, present, by_id, by_email)


def test_a_new_member_is_created_with_the_whole_record(export_file):
    (row,), present = rows_of(export_file, member_row())
    decision = decide_against(row, present)
    assert decision.outcome == CREATE and decision.changes["iban"] == "NL91ABNA0417164300"


def test_the_same_row_again_changes_nothing(export_file):
    (row,), present = rows_of(export_file, member_row())
    assert decide_against(row, present, stored_from(row)).outcome == UNCHANGED


def test_a_column_absent_from_the_file_never_changes_the_stored_value(export_file):
    (full,), _ = rows_of(export_file, member_row())
    narrow_header = ["Lidnr.", "Voornaam", "Tussenvoegsel", "Achternaam", "E-mailadres"]
    (row,), present = rows_of(export_file, member_row(Voornaam="Annie"), header=narrow_header)
    decision = decide_against(row, present, stored_from(full))
    assert decision.outcome == UPDATE
    assert decision.changes == {"first_name": "Annie", "full_name": "Annie ten Boom"}


def test_an_empty_cell_clears_the_value_but_never_lidnr_or_email(export_file):
    (full,), _ = rows_of(export_file, member_row())
    (row,), present = rows_of(export_file, member_row(**{"Telefoonnr.": "", "IBAN": "-", "E-mailadres": ""}))
    decision = decide_against(row, present, stored_from(full))
    assert decision.outcome == UPDATE
    assert decision.changes == {"phone": None, "iban": None}


def test_lidnr_and_email_match_without_case(export_file):
    (row,), present = rows_of(export_file, member_row(**{"Lidnr.": "ab-12"}))
    stored = stored_from(row, member_id="AB-12", email="ANNA.TENBOOM@EXAMPLE.NL")
    assert decide_against(row, present, stored).outcome == UNCHANGED


def test_the_same_lidnr_for_another_person_is_refused(export_file):
    (anna,), _ = rows_of(export_file, member_row())
    (piet,), present = rows_of(
        export_file, member_row(Voornaam="Piet", Tussenvoegsel="", Achternaam="Pieters", **{"E-mailadres": "p@x.nl"})
    )
    decision = decide_against(piet, present, stored_from(anna, user="anna.tenboom@example.nl"))
    assert (decision.outcome, decision.code, decision.field) == (REFUSE, "other_person", "member_id")
    assert "Lidnr. 1001" in decision.message and "Anna" not in decision.message


def test_a_new_name_without_an_email_to_confirm_it_is_refused(export_file):
    (anna,), _ = rows_of(export_file, member_row())
    (row,), present = rows_of(export_file, member_row(Voornaam="Piet", **{"E-mailadres": ""}))
    assert decide_against(row, present, stored_from(anna)).code == "other_person"


def test_a_new_name_with_the_same_email_is_an_update(export_file):
    (anna,), _ = rows_of(export_file, member_row())
    (row,), present = rows_of(export_file, member_row(Achternaam="Boom-Jansen"))
    decision = decide_against(row, present, stored_from(anna, user="anna.tenboom@example.nl"))
    assert decision.outcome == UPDATE and decision.changes["full_name"] == "Anna ten Boom-Jansen"


@pytest.mark.parametrize(("user", "outcome"), [(None, UPDATE), ("anna.tenboom@example.nl", REFUSE)])
def test_a_new_email_is_refused_only_when_the_member_has_an_account(export_file, user, outcome):
    (anna,), _ = rows_of(export_file, member_row())
    (row,), present = rows_of(export_file, member_row(**{"E-mailadres": "anna@nieuw.nl"}))
    decision = decide_against(row, present, stored_from(anna, user=user))
    assert decision.outcome == outcome
    if outcome == REFUSE:
        assert (decision.code, decision.field) == ("account_email", "email")


def test_an_email_of_another_member_is_refused(export_file):
    (anna,), _ = rows_of(export_file, member_row())
    (row,), present = rows_of(export_file, member_row(**{"Lidnr.": "2002"}))
    decision = decide_against(row, present, stored_from(anna))
    assert (decision.outcome, decision.code) == (REFUSE, "email_taken")
    assert "Lidnr. 1001" in decision.reason


def test_a_row_without_lidnr_matches_by_email_and_keeps_the_stored_lidnr(export_file):
    (anna,), _ = rows_of(export_file, member_row())
    (row,), present = rows_of(export_file, member_row(**{"Lidnr.": "", "Plaats": "Utrecht"}))
    decision = decide_against(row, present, stored_from(anna))
    assert decision.outcome == UPDATE and decision.changes == {"city": "Utrecht"}


def test_a_stored_member_without_lidnr_gets_the_lidnr_of_its_email(export_file):
    (anna,), _ = rows_of(export_file, member_row())
    (row,), present = rows_of(export_file, member_row())
    decision = decide_against(row, present, stored_from(anna, member_id=None))
    assert decision.outcome == UPDATE and decision.changes == {"member_id": "1001"}


def test_a_row_without_lidnr_and_email_is_refused_as_unrecognisable(export_file):
    (row,), present = rows_of(export_file, member_row(**{"Lidnr.": "", "E-mailadres": ""}))
    assert decide_against(row, present).code == "unrecognisable"


def test_a_new_membership_type_changes_the_status_too(export_file):
    (lid,), _ = rows_of(export_file, member_row())
    (row,), present = rows_of(export_file, member_row(Lidmaatschapstype="opgezegd"))
    decision = decide_against(row, present, stored_from(lid))
    assert decision.changes == {"membership_type": None, "status": "Cancelled"}


def test_without_a_tussenvoegsel_column_the_stored_one_completes_the_name(export_file):
    (anna,), _ = rows_of(export_file, member_row())
    header = ["Lidnr.", "Voornaam", "Achternaam"]
    (row,), present = rows_of(export_file, member_row(), header=header)
    decision = decide_against(row, present, stored_from(anna))
    assert decision.outcome == UNCHANGED


def test_later_rows_of_a_chunk_see_an_earlier_rows_new_email(export_file):
    """Row A moves member 1001 to a new address; row B, without Lidnr., has the old address: a new person."""
    (anna,), _ = rows_of(export_file, member_row())
    rows, present = rows_of(
        export_file,
        member_row(**{"E-mailadres": "anna@nieuw.nl"}),
        member_row(**{"Lidnr.": "", "Voornaam": "Bob", "Tussenvoegsel": "", "Achternaam": "Bos"}),
    )
    stored = stored_from(anna)
    by_id, by_email = {"1001": stored}, {"anna.tenboom@example.nl": stored}
    first = decide(rows[0], present, by_id, by_email)
    remember(first, "MEM-1", by_id, by_email)
    second = decide(rows[1], present, by_id, by_email)
    assert (first.outcome, second.outcome) == (UPDATE, CREATE)
