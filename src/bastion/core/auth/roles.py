"""Roles and which of them each kind of work needs. Values are storage keys: never rename one."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    ADMIN = "admin"
    CURATOR = "curator"
    MODERATOR = "moderator"
    SENIOR_MODERATOR = "senior_moderator"
    CHILD_SAFETY = "child_safety"
    ANALYST = "analyst"
    AUTHORITY = "authority"
    PLATFORM = "platform"
    #: A regulator or vetted researcher (DSA Art. 40): aggregates only, small cells suppressed, every query audited.
    RESEARCHER = "researcher"


#: Roles allowed to see and change banks marked ``restricted`` (child sexual abuse material).
CHILD_SAFETY_ROLES = frozenset({Role.ADMIN, Role.CHILD_SAFETY})

# What each group of routes needs, in one place so a reviewer sees the whole policy at once.
HASH = frozenset(
    {Role.ADMIN, Role.CURATOR, Role.MODERATOR, Role.SENIOR_MODERATOR, Role.CHILD_SAFETY, Role.ANALYST, Role.PLATFORM}
)
MATCH = frozenset(
    {Role.ADMIN, Role.CURATOR, Role.MODERATOR, Role.SENIOR_MODERATOR, Role.CHILD_SAFETY, Role.PLATFORM}
)
READ_BANKS = frozenset(
    {Role.ADMIN, Role.CURATOR, Role.MODERATOR, Role.SENIOR_MODERATOR, Role.CHILD_SAFETY, Role.ANALYST}
)
CURATE_BANKS = frozenset({Role.ADMIN, Role.CURATOR, Role.CHILD_SAFETY})
METRICS = frozenset({Role.ADMIN, Role.ANALYST})
#: Who reads the classifiers and their held-out precision and recall.
CLASSIFIERS = frozenset({Role.ADMIN, Role.ANALYST})
#: Who decides review cases; restricted (child-abuse) queues narrow this to CHILD_SAFETY_ROLES.
REVIEW = frozenset({Role.MODERATOR, Role.SENIOR_MODERATOR, Role.CHILD_SAFETY, Role.ADMIN})
#: Who sees queues and case pages (analysts read, never decide).
READ_QUEUES = REVIEW | {Role.ANALYST}
#: Roles whose work is the review queues: the console opens on them after login.
REVIEW_HOME = READ_QUEUES - {Role.ADMIN}
#: Who takes escalated cases (child-safety specialists too, in the queues only they see).
ESCALATIONS = frozenset({Role.SENIOR_MODERATOR, Role.ADMIN})
#: Who searches all cases and reads an account's whole history (restricted content still for child-safety roles).
CASE_SEARCH = frozenset({Role.SENIOR_MODERATOR, Role.ADMIN})
#: Who may add human-confirmed media to a bank from a case (the curation loop).
CURATE_FROM_CASE = CURATE_BANKS | {Role.SENIOR_MODERATOR}
ADMIN = frozenset({Role.ADMIN})
#: Who sees removal orders received at the contact point, and who acts on them by hand (TCO Art. 3).
#: Statements of reasons' submission to the DSA Transparency Database: its states and the database's errors.
SOR_SUBMISSIONS = frozenset({Role.ADMIN, Role.ANALYST})
ORDERS_READ = frozenset({Role.ADMIN, Role.SENIOR_MODERATOR, Role.ANALYST})
ORDERS_ACT = frozenset({Role.ADMIN, Role.SENIOR_MODERATOR})
#: At the hub: competent authorities issue and scrutinise orders; admins register authorities and providers.
HUB_ISSUE = frozenset({Role.AUTHORITY})
HUB_READ = frozenset({Role.ADMIN, Role.AUTHORITY})
#: Who drafts, reviews, sends, retracts and exports child-safety reports and opens their preserved material.
REPORTS = CHILD_SAFETY_ROLES
#: Who may hand in a reported file's bytes: the platform holds the originals, which Bastion never keeps.
REPORT_MATERIAL = CHILD_SAFETY_ROLES | {Role.PLATFORM}
#: At the EU Centre (``bastion centre serve``): providers submit reports; admins read what came and went.
CENTRE_SUBMIT = frozenset({Role.PLATFORM})
CENTRE_READ = frozenset({Role.ADMIN})

#: Minors: the platform asks (ages, interaction checks, settings, family pairing); people read.
MINORS_PLATFORM = frozenset({Role.PLATFORM, Role.ADMIN})
#: Who reads the minors rules, ages, account settings and family links (read-only for moderators).
MINORS_READ = READ_QUEUES | {Role.PLATFORM}
#: Who reads minors cases (grooming signals list who tried to reach which child): child-safety specialists.
MINORS_CASES = CHILD_SAFETY_ROLES
#: Who reads stored feed audit runs (sock-puppet audits of the recommender; DSA Art. 34/37 risk assessment).
FEED_AUDITS = frozenset({Role.ADMIN, Role.ANALYST})

#: Fact-checking: moderators send items to partners; admins register partners; queue readers read ratings.
FACTCHECK_SEND = REVIEW
FACTCHECK_READ = READ_QUEUES
FACTCHECK_PARTNERS = ADMIN
#: Designated entities: queue readers read the list; senior moderators and admins add entities, propose a change of
#: category and confirm it (nothing is applied before a person confirms the preview).
DESIGNATIONS_READ = READ_QUEUES
DESIGNATIONS_EDIT = frozenset({Role.ADMIN, Role.SENIOR_MODERATOR})
#: The feed gate: the platform's recommender asks which candidates a viewer may be shown.
FEED = frozenset({Role.PLATFORM, Role.ADMIN})
#: Crisis mode: who activates and deactivates a crisis, banks its material and reports its threats; who reads it.
CRISIS_ACT = frozenset({Role.ADMIN, Role.SENIOR_MODERATOR})
CRISIS_READ = CRISIS_ACT | {Role.ANALYST}

#: Hash exchanges: who reads their state, fetches now and sends feedback (restricted ones: child-safety roles
#: only, checked by the exchanges' services); who configures one (credentials' variable, URLs): admins.
EXCHANGES = CURATE_BANKS
EXCHANGES_CONFIGURE = ADMIN
#: Transparency figures (``transparency/``): analysts and admins see every cell; researchers aggregates only.
TRANSPARENCY = frozenset({Role.ADMIN, Role.ANALYST, Role.RESEARCHER})
TRANSPARENCY_FULL = frozenset({Role.ADMIN, Role.ANALYST})
#: Roles whose only console page is the transparency dashboard: they land on it after login.
TRANSPARENCY_HOME = TRANSPARENCY - READ_QUEUES


def parse_role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {raw!r} (known: {known})") from None
