"""The consoles role: the agent, supervisor and admin pages (aiohttp) and their websockets.

Sign-in and sessions (``auth``, ``accounts``), the JSON API and call control (``api``,
``console_api``, ``call_api``, ``calls``), the live state pushed to pages (``live``, ``hub``,
``ws``), what the supervisor monitor adds to the ACD's figures (``monitor``) and the
screen-pop (``screenpop``). The pages' contract is docs/console.md.
"""
