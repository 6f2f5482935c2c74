"""The browser UI: login, the queue, the draft editor beside the transcript, rooms, audit.

Server-rendered Jinja2 templates (``templates/``) and one small vanilla-JS file
(``static/app.js``) over the review JSON API; no front-end build step.
"""
