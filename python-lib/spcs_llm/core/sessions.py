"""The HTTP sessions the connector sends credentials through: every one carries its credential in a header it sets
itself, so none may let ``requests`` replace it.

``Session.prepare_request`` applies Basic auth from a ``~/.netrc`` entry for the host whenever no ``auth`` is given,
over the ``Authorization`` header the caller set
(https://requests.readthedocs.io/en/latest/user/authentication/#netrc-authentication). An explicit no-op ``auth``
stops that (and the file lookup on every request); proxies and CA bundles from the environment still apply.
"""

from __future__ import annotations

import requests
import requests.auth


class OwnHeaders(requests.auth.AuthBase):
    """The request already carries its credential in its headers: add nothing, and let ``.netrc`` add nothing."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


def credential_session() -> requests.Session:
    """A session whose requests keep the Authorization header their caller sets."""
    session = requests.Session()
    session.auth = OwnHeaders()
    return session
