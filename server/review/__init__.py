"""The review queue shared by local physicians and remote physician partners.

    models.py     tables (users, roles, sessions, tokens, pools, rules, items, versions,
                  appointments, audit, FHIR exports)
    lifecycle.py  the pure state machine: ready → claimed → awaiting_signature → signed …
    errors.py     the error tree (one module)
    auth.py       argon2 passwords, sessions, API tokens, CSRF
    access.py     who may see which item (role and clinic, pools)
    directory.py  users, memberships, pools, routing rules, room physicians
    intake.py     receive_draft / submit_draft: where the pipeline hands drafts over
    document.py   note documents and pure edits; diffing.py: edit distance and diff
    workflow.py   claim, release, save, send, return, sign, amend (compare-and-set)
    signcheck.py  what a physician sees before signing: checks, diff, attestation;
                  controlled.py: DEA schedules of controlled substances
    schedule.py   the clinic's schedule (CSV import, time zone); patients.py: whose
                  visit an item is (linked from the schedule or set by a reviewer)
    queue.py      queue order and turnaround against each pool's target
    fhir.py       FHIR R4 (4.3.0) document Bundle, validated; the outbox
    audio.py      audio spans for evidence playback
    live.py       the live-update hub behind /ws/review
    routes/       the JSON API (auth, admin, items, patients, vocabulary, live);
                  cli.py: ``roomscribe review``
"""

from server.review.intake import receive_draft, submit_draft

__all__ = ["receive_draft", "submit_draft"]
