"""People and organisations: roles and permissions, staff sign-in (argon2 + TOTP) and sessions, one-time codes,
API keys, single sign-on (OpenID Connect) and the audit trail.

One job: who someone is and what they may do. No web framework here: the pages and the ``require`` dependency
live in ``sealtrail.web``.

May import: ``schemas`` (and ``errors``). Nothing else of ours.
"""
