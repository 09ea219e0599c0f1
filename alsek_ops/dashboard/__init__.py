"""``alsek dashboard``: a server-rendered web app (Starlette, Jinja2,
uvicorn) over one backend. It loads nothing from elsewhere: its one script,
which refreshes the live parts of a page, is served by the app itself."""
