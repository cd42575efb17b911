"""Who may do what. Checked before anything is written or queued; there is no bypass."""

from verenigingen.accounts.errors import PermissionDenied
from verenigingen.accounts.states import Roles
from verenigingen.text import Text

BULK_ROLES = frozenset({Roles.ADMINISTRATOR})
INDIVIDUAL_ROLES = frozenset({Roles.MANAGER, Roles.ADMINISTRATOR, Roles.SYSTEM_MANAGER})


def require_any_role(user: str, roles: set[str], allowed: frozenset[str], action: str) -> None:
    """The message names no user: it may be stored as a request's failure reason."""
    if not roles & allowed:
        needed = " or ".join(sorted(allowed))
        raise PermissionDenied(Text("not allowed to {action}: that needs the role {role}", action=action, role=needed))


def require_grantable(roles: set[str], granted: tuple[str, ...], role_profile: str | None, default_role: str) -> None:
    """Nobody grants a role they do not hold themselves; role profiles are for System Managers."""
    beyond = set(granted) - {default_role} - roles
    if beyond:
        raise PermissionDenied(
            Text("not allowed to grant roles one does not hold: {roles}", roles=", ".join(sorted(beyond)))
        )
    if role_profile and Roles.SYSTEM_MANAGER not in roles:
        raise PermissionDenied(Text("not allowed to assign a role profile: that needs the role System Manager"))
