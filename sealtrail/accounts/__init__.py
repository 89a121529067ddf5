"""People and workflow: organisations and roles, staff sign-in (argon2 + TOTP) and sessions, scoped permissions
(``deps.require``), the approval workflow's pages and API, the student portal, and the audit trail."""
