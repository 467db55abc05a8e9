"""The web console (administrators) and the self-service portal (mailbox users).

Server-rendered Jinja2 pages with HTMX for the parts that update in place (search as you type,
paging, previews). Routes are thin: they parse forms, call services and render; every rule,
permission check and audit entry stays in the core.
"""
