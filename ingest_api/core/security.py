"""Who may do what: roles, permissions and the principal every request and command acts as.

One table decides (ROLE_PERMISSIONS); routes declare the one permission they need
(`ingest_api/core/deps.py: require`), and the registry's queries take the principal's scope
(facility, programs) so another center's member is simply not found. docs/security.md has the
matrix in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

# The database role every request runs as (created by migration 0030, owns nothing): it cannot
# UPDATE or DELETE audit rows, drop tables or change grants.
APP_DB_ROLE: Final = "welfare_app"
# Usernames: what staff type; also the actor in every audit row.
USERNAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_.@-]{1,63}$"


class Role(StrEnum):
    """The roles of the source report (chapter 3, section 2) and machines."""

    CITY_ADMIN = "city_admin"  # all centers' figures, the duplicate-service view, accounts
    CENTER_MANAGER = "center_manager"  # their center; sensitive data with a reason; exports
    CENTER_STAFF = "center_staff"  # their center and their programs' members; no bulk export
    OPERATOR = "operator"  # the fleet only, no personal data
    AUDITOR = "auditor"  # reads the audit log
    SERVICE = "service"  # an API token of a machine: only the scopes it was given


ROLE_LABELS: Final[dict[Role, str]] = {
    Role.CITY_ADMIN: "시 관리자",
    Role.CENTER_MANAGER: "기관 관리자",
    Role.CENTER_STAFF: "기관 직원",
    Role.OPERATOR: "운영자",
    Role.AUDITOR: "감사자",
    Role.SERVICE: "서비스 계정",
}

# Roles bound to one center (their accounts must name it).
CENTER_ROLES: Final = frozenset({Role.CENTER_MANAGER, Role.CENTER_STAFF})
# Roles that sign in with a second factor (TOTP) as well as a password.
SECOND_FACTOR_ROLES: Final = frozenset({Role.CITY_ADMIN, Role.CENTER_MANAGER})


class Permission(StrEnum):
    """One decision a route asks for; every route names exactly one (or is public)."""

    SIGNED_IN = "signed_in"  # any signed-in person (their own account, sign-out)
    FIGURES_READ = "figures.read"  # aggregate figures, the report as data, statistics
    FIGURES_REFRESH = "figures.refresh"  # bring the rollup up to date now
    REPORT_DOWNLOAD = "report.download"  # report files: a reason, and encrypted
    DUPLICATES_READ = "duplicates.read"  # the city's duplicate-service view (pseudonymous)
    REGISTRY_READ = "registry.read"  # facilities, counting rules, programs (no personal data)
    REGISTRY_MANAGE = "registry.manage"  # change them (a center its own, the city all)
    MEMBERS_READ = "members.read"  # member records, masked; search
    MEMBERS_WRITE = "members.write"  # register and correct members, visitors, contacts
    MEMBERS_IMPORT = "members.import"  # whole lists at once
    MEMBERS_SENSITIVE = "members.sensitive"  # phone and birth date in clear, with a reason
    MEMBERS_EXPORT = "members.export"  # member lists and contact lists (downloads)
    MEMBERS_RIGHTS = "members.rights"  # a member's own export and erasure
    # A member's face consent, enrolment and withdrawal: people of the member's center only,
    # never a machine's token (biometric data, docs/face.md).
    MEMBERS_FACE = "members.face"
    FLEET_READ = "fleet.read"  # kiosks' health, the ingest's counters
    FLEET_OPERATE = "fleet.operate"  # acknowledge the fleet's alerts, resync a kiosk
    KEYS_MANAGE = "keys.manage"  # rotate and retire a facility's card-hash key
    AUDIT_READ = "audit.read"  # the audit log, its export, alerts, chain check
    USERS_MANAGE = "users.manage"  # accounts, roles, tokens


P = Permission
ROLE_PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    Role.CITY_ADMIN: frozenset(
        {
            P.SIGNED_IN,
            P.FIGURES_READ,
            P.FIGURES_REFRESH,
            P.REPORT_DOWNLOAD,
            P.DUPLICATES_READ,
            P.REGISTRY_READ,
            P.REGISTRY_MANAGE,
            P.USERS_MANAGE,
            P.KEYS_MANAGE,
        }
    ),
    Role.CENTER_MANAGER: frozenset(
        {
            P.SIGNED_IN,
            P.FIGURES_READ,
            P.REPORT_DOWNLOAD,
            P.REGISTRY_READ,
            P.REGISTRY_MANAGE,
            P.MEMBERS_READ,
            P.MEMBERS_WRITE,
            P.MEMBERS_IMPORT,
            P.MEMBERS_SENSITIVE,
            P.MEMBERS_EXPORT,
            P.MEMBERS_RIGHTS,
            P.MEMBERS_FACE,
        }
    ),
    Role.CENTER_STAFF: frozenset(
        {
            P.SIGNED_IN,
            P.FIGURES_READ,
            P.REPORT_DOWNLOAD,
            P.REGISTRY_READ,
            P.MEMBERS_READ,
            P.MEMBERS_WRITE,
            P.MEMBERS_FACE,
        }
    ),
    Role.OPERATOR: frozenset({P.SIGNED_IN, P.FLEET_READ, P.FLEET_OPERATE, P.FIGURES_REFRESH}),
    Role.AUDITOR: frozenset({P.SIGNED_IN, P.AUDIT_READ}),
    Role.SERVICE: frozenset(),  # a token has exactly its scopes
}

# What may be granted on top of a role, one account at a time (audited as a role change): a
# city administrator reading member records, contact data included, "unless granted".
GRANTABLE: Final = frozenset({P.MEMBERS_READ, P.MEMBERS_SENSITIVE})
# What a machine's token may carry: never accounts, the audit log or a person's data in bulk.
TOKEN_SCOPES: Final = frozenset(
    {
        P.FIGURES_READ,
        P.FIGURES_REFRESH,
        P.REPORT_DOWNLOAD,
        P.REGISTRY_READ,
        P.FLEET_READ,
        P.MEMBERS_WRITE,
    }
)


class AccessDenied(Exception):
    """The principal may not do this (a 403, or a 404 where existence must not show)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who acts: a signed-in person, a machine's token, or a named user at the command line.

    `facility_id` None means every center; `program_ids` None means every program of the
    facility (center staff with assigned programs see only those programs' members).
    """

    kind: str  # "user", "token" or "cli"
    name: str
    role: Role
    permissions: frozenset[Permission]
    facility_id: str | None = None
    program_ids: tuple[str, ...] | None = None
    session_id: str | None = None  # the session row's hash, for sign-out
    csrf_token: str | None = None  # set for cookie sessions only
    display_name: str = ""
    must_change_password: bool = False

    @property
    def actor(self) -> str:
        """The name audit rows carry: the username, or `token:<name>`."""
        return self.name if self.kind != "token" else f"token:{self.name}"

    def can(self, permission: Permission) -> bool:
        """Whether this principal holds `permission`."""
        return permission in self.permissions

    def sees_facility(self, facility_id: str | None) -> bool:
        """Whether a resource of `facility_id` (None: the whole city) is within this scope."""
        return self.facility_id is None or self.facility_id == facility_id

    def check_facility(self, facility_id: str | None) -> None:
        """Raise AccessDenied unless `facility_id` is within this principal's scope."""
        if not self.sees_facility(facility_id):
            raise AccessDenied("다른 기관의 자료에는 접근할 수 없습니다")


def permissions_for(
    role: Role, grants: frozenset[Permission] = frozenset()
) -> frozenset[Permission]:
    """The permissions of an account: its role's, plus what was granted to it."""
    return ROLE_PERMISSIONS[role] | (grants & GRANTABLE)
