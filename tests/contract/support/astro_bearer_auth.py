"""Astro's bearer-token auth for Airflow 2's REST API, as the contract tests need it.

Astro's Airflow 2 Deployments accept ``Authorization: Bearer <API token>``; open-source
Airflow 2 has no such auth backend. This one accepts exactly the token in
``$AIRFLOW_TEST_API_TOKEN`` (as the admin user) and refuses everything else the way
Airflow's own backends do, so refusals reach the client through Airflow's own API layer.
"""

import os
from functools import wraps

from airflow.www.extensions.init_auth_manager import get_auth_manager
from flask import Response, request
from flask_login import login_user


def init_app(_app):
    """Nothing to set up."""


def requires_authentication(function):
    """Let the request through with the right bearer token, else 401 as basic_auth does."""

    @wraps(function)
    def decorated(*args, **kwargs):
        expected = "Bearer " + os.environ["AIRFLOW_TEST_API_TOKEN"]
        if request.headers.get("Authorization", "") == expected:
            user = get_auth_manager().security_manager.find_user(username="admin")
            login_user(user, remember=False)
            return function(*args, **kwargs)
        return Response("Unauthorized", 401, {"WWW-Authenticate": "Basic"})

    return decorated
