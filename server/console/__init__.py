"""The admin console at ``/console``: server-rendered pages (Jinja2, htmx) for the people who run promotions.

Server layer, like ``server.resources``: pages call the same domain functions as the API handlers, so a
form is validated exactly as the API body would be. ``server.console.site.routes`` is mounted by
``server.app``; how to add a page is said in ``server.console.site``.
"""
