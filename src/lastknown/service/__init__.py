"""The web service: ``lastknown serve`` — pages and a JSON API over the library.

``create_app`` (:mod:`.app`) builds it from :class:`.settings.ServiceSettings`; the
app database (:mod:`.db`) holds users, agencies, API tokens, sessions, the access log
and the record of administrative changes. Roles and each endpoint's access rule are in
:mod:`.roles`; authentication, sessions and CSRF in :mod:`.auth`. docs/SERVICE.md
describes the endpoints, the authorisation matrix and the security choices.
"""
