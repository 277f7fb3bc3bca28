"""The benchmark's Flask peer: the same two endpoints as a plain Flask + PyJWT service would
write them, HS256 tokens, served by gunicorn's sync worker with gunicorn's Python HTTP parser,
as `pip install flask gunicorn pyjwt` gives it (bench/run.py starts it).

    gunicorn --workers 2 --worker-class sync --http-parser python bench.flask_peer:app

It is what issue 13's table compares the service against, not a second implementation to use:
its sum is exact (Decimal) but it has none of the service's limits or error details.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from decimal import Decimal, localcontext

import jwt
from flask import Flask, jsonify, request

SECRET = os.environ.get("FLASK_PEER_SECRET", "flask-peer-benchmark-secret-of-32-bytes!")
AUDIENCE = "sumservice"
LIFETIME = 3600

app = Flask(__name__)


def error(status: int, detail: str):
    return jsonify(detail=detail), status


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.post("/auth")
def auth():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return error(400, "The body must be a JSON object.")
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not username.strip():
        return error(400, "username is required.")
    if not isinstance(password, str) or not password.strip():
        return error(400, "password is required.")
    now = int(time.time())
    claims = {
        "sub": username.strip(),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + LIFETIME,
        "jti": uuid.uuid4().hex,
    }
    response = jsonify(
        access_token=jwt.encode(claims, SECRET, algorithm="HS256"),
        token_type="Bearer",
        expires_in=LIFETIME,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@app.post("/sum")
def sum_numbers():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return error(401, "A Bearer token is required.")
    try:
        jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    except jwt.InvalidTokenError:
        return error(401, "The token is not valid.")
    try:
        document = json.loads(request.get_data(), parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return error(400, "The body is not valid JSON.")
    text = canonical(total(document))
    return jsonify(sha256=hashlib.sha256(text.encode()).hexdigest(), sum=text)


def total(document) -> Decimal:
    result = Decimal(0)
    stack = [document]
    with localcontext() as context:
        context.prec = 100_000
        while stack:
            value = stack.pop()
            if isinstance(value, Decimal):
                result += value
            elif isinstance(value, dict):
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
    return result


def canonical(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")
