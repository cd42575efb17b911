"""What importing one valid row does to the members already stored: the rules every host applies.

- A row matches a stored member by Lidnr., else (when it has no Lidnr. or the Lidnr. is new and the
  stored member has none) by e-mail address; both compare without case (see ``match_key``).
- Only the columns the file has are compared and written: a column absent from the file never
  changes a stored value. An empty cell in a column the file has clears the stored value (the export
  is Mijnrood's current state), except Lidnr. and e-mail: an import never empties those.
- An update that could turn one member into another person is refused, with its reason:
  the Lidnr. matches but neither the name nor the e-mail address does; the e-mail address belongs to
  another member; the member has an account and the row would change its e-mail address (the login
  would then point at data of an address its owner may not hold).
- A row without Lidnr. and without e-mail address cannot be recognised on a later import: refused,
  so that importing a file twice never creates the same person twice.

Reasons name members by Lidnr. or record name only: no personal data.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from verenigingen.dutch.names import full_name
from verenigingen.mijnrood.columns import COLUMN_BY_FIELD
from verenigingen.mijnrood.rows import MEMBER_FIELDS, RowResult, match_key
from verenigingen.text import Text

IDENTITY_FIELDS = ("member_id", "email")
# Filled from other columns: present whenever the columns they come from are.
_DERIVED_FROM = {"full_name": ("first_name", "last_name"), "status": ("membership_type",)}

CREATE, UPDATE, UNCHANGED, REFUSE = "create", "update", "unchanged", "refuse"


@dataclass(frozen=True)
class StoredMember:
    """What the rules need to know of a member already stored."""

    name: str
    values: Mapping[str, object]
    user: str | None = None


@dataclass(frozen=True)
class Decision:
    """CREATE with the whole record, UPDATE with the changed fields, UNCHANGED, or REFUSE with a reason."""

    outcome: str
    member: str | None = None
    changes: dict = field(default_factory=dict)
    code: str | None = None
    reason: str | None = None
    field: str | None = None  # the field the reason is about
    before: StoredMember | None = None  # the member as stored before this row

    @property
    def message(self) -> str:
        """The reason as the rejected-rows file shows it: the column first, as for every other reason."""
        return at(self.field, self.reason)


def present_fields(header_fields: set[str] | frozenset[str]) -> frozenset[str]:
    """The Member fields a file with these columns sets."""
    present = {f for f in MEMBER_FIELDS if f in header_fields}
    present |= {derived for derived, sources in _DERIVED_FROM.items() if all(s in header_fields for s in sources)}
    return frozenset(present)


def _text(value) -> str:
    return "" if value is None else str(value)


def _same_name(a, b) -> bool:
    return " ".join(_text(a).casefold().split()) == " ".join(_text(b).casefold().split())


def _label(member: StoredMember) -> str:
    if member.values.get("member_id"):
        return Text("Lidnr. {member_id}", member_id=member.values["member_id"])
    return Text("member {name}", name=member.name)


def _refuse(code: str, field_name: str | None, reason: str, member: StoredMember | None = None) -> Decision:
    return Decision(REFUSE, member.name if member else None, code=code, reason=reason, field=field_name)


def decide(
    row: RowResult,
    present: frozenset[str],
    by_member_id: Mapping[str, StoredMember],
    by_email: Mapping[str, StoredMember],
) -> Decision:
    """The outcome of importing ``row`` (a valid row) given the stored members its keys could match."""
    record = row.values
    member_id, email = record.get("member_id"), record.get("email")
    if member_id is None and email is None:
        return _refuse(
            "unrecognisable",
            None,
            Text("no Lidnr. and no e-mail address: a later import could not recognise this member; add either"),
        )
    stored = by_member_id.get(match_key(member_id)) if member_id else None
    email_owner = by_email.get(match_key(email)) if email else None
    if stored is None and email_owner is not None and not (member_id and email_owner.values.get("member_id")):
        stored = email_owner  # matched by e-mail: the row or the stored member has no Lidnr.
    if email_owner is not None and email_owner is not stored:
        taken = Text("the e-mail address belongs to another member ({member})", member=_label(email_owner))
        return _refuse("email_taken", "email", taken)
    if stored is None:
        return Decision(CREATE, changes={f: record[f] for f in MEMBER_FIELDS})
    return _update(stored, record, present)


def _update(stored: StoredMember, record: dict, present: frozenset[str]) -> Decision:
    old = stored.values
    if "full_name" in present and "tussenvoegsel" not in present:
        # A file without the column says nothing about it: "Jan Dijk" is "Jan van Dijk" as stored.
        record = {**record, "full_name": full_name(record["first_name"], old.get("tussenvoegsel"), record["last_name"])}
    email_differs = record.get("email") is not None and match_key(_text(old.get("email"))) != match_key(record["email"])
    if "full_name" in present and not _same_name(old.get("full_name"), record["full_name"]):
        if email_differs or (record.get("email") is None and old.get("email") is None):
            return _refuse(
                "other_person",
                "member_id",
                Text(
                    "{member} is stored for another person (neither the name nor the e-mail address matches); a "
                    "new member needs a Lidnr. of their own",
                    member=_label(stored),
                ),
                stored,
            )
        if record.get("email") is None:
            return _refuse(
                "other_person",
                "member_id",
                Text(
                    "the name differs from the one stored for {member} and the row has no e-mail address to "
                    "confirm it is the same person; add the e-mail address, or change the name in the member",
                    member=_label(stored),
                ),
                stored,
            )
    if email_differs and stored.user:
        return _refuse(
            "account_email",
            "email",
            Text(
                "{member} has an account under its stored e-mail address, which an import does not change; "
                "change the e-mail address of the account first",
                member=_label(stored),
            ),
            stored,
        )
    changes = {}
    for name in sorted(present, key=MEMBER_FIELDS.index):
        new = record[name]
        if new is None and name in IDENTITY_FIELDS:
            continue  # an import never empties Lidnr. or e-mail
        compare = match_key if name in IDENTITY_FIELDS else str.strip
        if compare(_text(old.get(name))) != compare(_text(new)):
            changes[name] = new
    return Decision(UPDATE if changes else UNCHANGED, stored.name, changes, before=stored)


def column_label(field_name: str | None) -> str:
    """The column a field comes from, as the export names it (the operator's words)."""
    if field_name is None:
        return Text("row")
    column = COLUMN_BY_FIELD.get(field_name)
    return column.label if column else field_name


def at(field_name: str | None, problem: str) -> Text:
    """'<column>: <problem>', as a rejected row's reason says where it went wrong."""
    return Text("{column}: {problem}", column=column_label(field_name), problem=problem)


def row_reasons(row: RowResult) -> list[str]:
    """Why the reader rejected a row: each error with its column."""
    return [at(p.field, p.message) for p in row.errors]


def remember(decision: Decision, name: str, by_member_id: dict, by_email: dict) -> None:
    """Later rows of the same chunk see this row's outcome: a new member, or a changed Lidnr. or e-mail
    address (the old one no longer leads to this member)."""
    if decision.outcome not in (CREATE, UPDATE):
        return
    before = decision.before
    if before is not None:
        for key, index in ((before.values.get("member_id"), by_member_id), (before.values.get("email"), by_email)):
            if key and index.get(match_key(str(key))) is before:
                del index[match_key(str(key))]
    values = {**(before.values if before else {}), **decision.changes}
    stored = StoredMember(name, values, before.user if before else None)
    for key, index in ((values.get("member_id"), by_member_id), (values.get("email"), by_email)):
        if key:
            index[match_key(str(key))] = stored
