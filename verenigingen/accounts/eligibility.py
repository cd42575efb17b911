"""Which members may get an account now, and why the others may not."""

from collections import Counter
from dataclasses import dataclass

from verenigingen.accounts.manager import same_person
from verenigingen.accounts.ports import MemberView, Store, UserView
from verenigingen.text import Text


@dataclass(frozen=True)
class Refusal:
    """A member that gets no request; named by id only (no personal data)."""

    member: str
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"member": self.member, "code": self.code, "message": self.message}


@dataclass
class Eligibility:
    eligible: list[MemberView]
    link: list[tuple[MemberView, UserView]]  # an existing user of the same e-mail and name
    refused: list[Refusal]


def check_members(store: Store, names: list[str], eligible_statuses: frozenset[str]) -> Eligibility:
    """Exists, has e-mail, eligible status, no user yet, no open request; existing users are linked."""
    members = store.get_members(names)
    open_requests = store.members_with_open_request(names)
    result = Eligibility([], [], [])
    for name in names:
        member = members.get(name)
        if member is None:
            result.refused.append(Refusal(name, "not_found", Text("no such member")))
        elif member.user:
            result.refused.append(Refusal(name, "has_user", Text("already has a user account")))
        elif not member.email:
            result.refused.append(Refusal(name, "no_email", Text("has no e-mail address")))
        elif member.status not in eligible_statuses:
            result.refused.append(
                Refusal(name, "not_eligible", Text("membership status {status}", status=member.status or "unknown"))
            )
        elif name in open_requests:
            result.refused.append(Refusal(name, "open_request", Text("already has an open account request")))
        elif (user := store.find_user(member.email)) is not None:
            if user.member in (None, name) and same_person(user.full_name, member.full_name):
                result.link.append((member, user))
            else:
                result.refused.append(Refusal(name, "email_taken", Text("its e-mail address belongs to another user")))
        else:
            result.eligible.append(member)
    return result


def refused_counts(refusals: list[Refusal]) -> dict[str, int]:
    """Per reason code, the most frequent first (the import reports of both hosts)."""
    return dict(Counter(refusal.code for refusal in refusals).most_common())
