"""Privacy: the patient's consent per visit, retention of audio and transcripts, legal
holds, and deletion on request.

- :mod:`server.privacy.consent`: record / withdraw consent; the gate held audio waits at
- :mod:`server.privacy.scheduled`: consent on file in the clinic's schedule
- :mod:`server.privacy.held`: the visits waiting for consent, as a physician sees them
- :mod:`server.privacy.retention`: every deletion of patient data, and the policy job
- :mod:`server.privacy.routes`: the API; :mod:`server.privacy.cli`: ``roomscribe retention``
"""
