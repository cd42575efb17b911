"""Who may do what. Checked before anything is written or queued; there is no bypass."""

from verenigingen.accounts.errors import PermissionDenied
from verenigingen.accounts.states import Roles

BULK_ROLES = frozenset({Roles.ADMINISTRATOR})
INDIVIDUAL_ROLES = frozenset({Roles.MANAGER, Roles.ADMINISTRATOR, Roles.SYSTEM_MANAGER})


def require_any_role(user: str, roles: set[str], allowed: frozenset[str], action: str) -> None:
    if not roles & allowed:
        needed = " or ".join(sorted(allowed))
        raise PermissionDenied(f"{user} may not {action}: that needs the role {needed}")
