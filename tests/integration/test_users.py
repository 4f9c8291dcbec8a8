"""user-service accounts: sign-up (every field, every rejection), duplicates, /users/me read and
partial update, isolation between users, auth (401) and CSRF (403), and the internal credential
check that core's password grant relies on.

The tests talk to the services' own ports (sign-up on user-service, login and CSRF on core) so
that the edge's rate limit on POST /users does not throttle them."""

import pytest

from antar_client import login, service_token, signup_user, unique_email, unique_phone


def valid_signup(**over):
    body = {"name": "Sari Dewi", "email": unique_email("u"), "phone": unique_phone(),
            "password": "rahasia-123"}
    body.update(over)
    return body


# ---- sign-up ------------------------------------------------------------------------------

def test_signup_returns_the_account_without_the_hash(user_api):
    body = valid_signup(email=unique_email("Mixed.Case").replace("mixed", "MiXeD"))
    r = user_api.post("/users", json=body)
    assert r.status == 201, r
    u = r.result
    assert isinstance(u["id"], int) and u["id"] > 0
    assert u["name"] == "Sari Dewi"
    assert u["email"] == body["email"].lower()
    assert u["phone"] == body["phone"]
    assert u["created_at"].endswith("Z")
    for secret in ("password", "password_hash", "hash"):
        assert secret not in u
    assert "rahasia-123" not in r.text


def test_signup_accepts_form_bodies(user_api):
    r = user_api.post("/users", form=valid_signup())
    assert r.status == 201, r


@pytest.mark.parametrize("field", ["name", "email", "phone", "password"])
def test_signup_missing_field(user_api, field):
    body = valid_signup()
    del body[field]
    r = user_api.post("/users", json=body)
    assert r.status == 422, r
    assert r.error["code"] == "missing_field"
    assert r.error["field"] == field


@pytest.mark.parametrize("field,value", [
    ("name", ""),
    ("name", "x" * 101),
    ("name", "   "),
    ("name", 12),
    ("name", "bad\u0001name"),
    ("email", "not-an-email"),
    ("email", "a@"),
    ("email", "@example.com"),
    ("email", "u" * 250 + "@example.com"),
    ("email", None),
    ("phone", "abc12345678"),
    ("phone", "1234567"),
    ("phone", "1234567890123456"),
    ("phone", "+62 812 3456"),
    ("password", "short7!"),
    ("password", "p" * 129),
    ("password", 12345678),
])
def test_signup_invalid_field(user_api, field, value):
    r = user_api.post("/users", json=valid_signup(**{field: value}))
    assert r.status == 422, r
    assert r.error["code"] == "invalid_field"
    assert r.error["field"] == field


def test_signup_boundaries_accepted(user_api):
    r = user_api.post("/users", json=valid_signup(name="x" * 100, password="p" * 128))
    assert r.status == 201, r
    r = user_api.post("/users", json=valid_signup(name="Z", password="12345678"))
    assert r.status == 201, r


def test_signup_unknown_field(user_api):
    r = user_api.post("/users", json=valid_signup(role="admin"))
    assert r.status == 422, r
    assert r.error["code"] == "unknown_field"
    assert r.error["field"] == "role"


def test_signup_bad_bodies(user_api):
    r = user_api.post("/users", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400, r
    r = user_api.post("/users", data="name=x", headers={"Content-Type": "text/plain"})
    assert r.status == 415, r


def test_signup_duplicate_email_any_case(user_api):
    first = signup_user(user_api)
    r = user_api.post("/users", json=valid_signup(email=first["email"].upper()))
    assert r.status == 409, r
    assert r.error["field"] == "email"


def test_signup_duplicate_phone(user_api):
    first = signup_user(user_api)
    r = user_api.post("/users", json=valid_signup(phone=first["phone"]))
    assert r.status == 409, r
    assert r.error["field"] == "phone"


# ---- /users/me ------------------------------------------------------------------------------

def test_me_requires_a_token(user_api):
    assert user_api.get("/users/me").status == 401
    r = user_api.get("/users/me", token="not.a.jwt")
    assert r.status == 401, r
    assert user_api.patch("/users/me", json={"name": "X"}).status == 401


def test_me_reads_own_record(user_api, alice, bob):
    r = user_api.get("/users/me", token=alice.token)
    assert r.status == 200, r
    assert r.result["id"] == alice.id
    assert r.result["email"] == alice.account["email"]
    assert "password_hash" not in r.result
    r = user_api.get("/users/me", token=bob.token)
    assert r.result["id"] == bob.id


def test_no_route_reaches_another_users_record(user_api, alice, bob):
    r = user_api.get(f"/users/{alice.id}", token=bob.token)
    assert r.status in (404, 405), r
    r = user_api.patch(f"/users/{alice.id}", json={"name": "Hacked"}, token=bob.token,
                       csrf=bob.csrf)
    assert r.status in (404, 405), r
    assert user_api.get("/users/me", token=alice.token).result["name"] == "Alice Wijaya"


def test_patch_without_csrf_is_403(user_api, alice):
    r = user_api.patch("/users/me", json={"name": "No Csrf"}, token=alice.token)
    assert r.status == 403, r
    assert r.error["code"] == "csrf_token_invalid"
    r = user_api.patch("/users/me", json={"name": "Wrong"}, token=alice.token, csrf="forged")
    assert r.status == 403, r


def test_patch_with_another_users_csrf_is_403(user_api, alice, bob):
    r = user_api.patch("/users/me", json={"name": "Mixed"}, token=alice.token, csrf=bob.csrf)
    assert r.status == 403, r


def test_patch_partial_update(user_api, alice):
    r = user_api.patch("/users/me", json={"name": "Alice W."}, token=alice.token,
                       csrf=alice.csrf)
    assert r.status == 200, r
    assert r.result["name"] == "Alice W."
    assert r.result["email"] == alice.account["email"]
    new_email = unique_email("NEW")
    r = user_api.patch("/users/me", form={"email": new_email, "phone": unique_phone()},
                       token=alice.token, csrf=alice.csrf)
    assert r.status == 200, r
    assert r.result["email"] == new_email.lower()
    assert r.result["name"] == "Alice W."
    # Setting one's own current value is not a duplicate.
    r = user_api.patch("/users/me", json={"email": new_email}, token=alice.token, csrf=alice.csrf)
    assert r.status == 200, r


def test_patch_empty_is_422(user_api, alice):
    r = user_api.patch("/users/me", json={}, token=alice.token, csrf=alice.csrf)
    assert r.status == 422, r
    assert r.error["code"] == "missing_field"


@pytest.mark.parametrize("field,value,code", [
    ("email", "bad", "invalid_field"),
    ("phone", "12", "invalid_field"),
    ("name", "", "invalid_field"),
    ("name", "x" * 101, "invalid_field"),
    ("password", "newpassword", "unknown_field"),
    ("id", 1, "unknown_field"),
])
def test_patch_invalid(user_api, alice, field, value, code):
    r = user_api.patch("/users/me", json={field: value}, token=alice.token, csrf=alice.csrf)
    assert r.status == 422, r
    assert r.error["code"] == code
    assert r.error["field"] == field


def test_patch_duplicates_name_the_field(user_api, alice, bob):
    r = user_api.patch("/users/me", json={"email": bob.account["email"]}, token=alice.token,
                       csrf=alice.csrf)
    assert r.status == 409, r
    assert r.error["field"] == "email"
    r = user_api.patch("/users/me", json={"phone": bob.account["phone"]}, token=alice.token,
                       csrf=alice.csrf)
    assert r.status == 409, r
    assert r.error["field"] == "phone"
    # Nothing was half-written.
    me = user_api.get("/users/me", token=alice.token).result
    assert me["email"] == alice.account["email"]
    assert me["phone"] == alice.account["phone"]


def test_login_by_phone_and_changed_email(user_api, core_api, alice):
    tok = login(core_api, alice.account["phone"], alice.account["password"], "user-app")
    assert user_api.get("/users/me", token=tok).result["id"] == alice.id


# ---- internal credential check ------------------------------------------------------------

def test_credentials_verify_needs_a_service_token(user_api, alice):
    body = {"username": alice.account["email"], "password": alice.account["password"]}
    assert user_api.post("/internal/credentials/verify", json=body).status == 401
    r = user_api.post("/internal/credentials/verify", json=body, token=alice.token,
                      csrf=alice.csrf)
    assert r.status == 403, r


def test_credentials_verify(user_api, core_api, alice):
    tok = service_token(core_api)
    acc = alice.account
    r = user_api.post("/internal/credentials/verify",
                      json={"username": acc["email"].upper(), "password": acc["password"]},
                      token=tok)
    assert r.status == 200, r
    assert r.result["id"] == alice.id
    assert r.result["sub"] == f"user:{alice.id}"
    r = user_api.post("/internal/credentials/verify",
                      json={"username": acc["phone"], "password": acc["password"]}, token=tok)
    assert r.status == 200, r
    wrong = user_api.post("/internal/credentials/verify",
                          json={"username": acc["email"], "password": "wrong-password"},
                          token=tok)
    unknown = user_api.post("/internal/credentials/verify",
                            json={"username": unique_email("nobody"), "password": "whatever1"},
                            token=tok)
    for r in (wrong, unknown):
        assert r.status == 401, r
        assert r.error["code"] == "invalid_credentials"
    # The same answer for both: nothing tells whether the account exists.
    assert wrong.error == unknown.error
    r = user_api.post("/internal/credentials/verify", json={"username": acc["email"]}, token=tok)
    assert r.status == 422, r
    assert r.error["field"] == "password"


def test_wrong_password_grant_is_rejected(core_api, alice):
    from antar_client import token_response
    r = token_response(core_api, alice.account["email"], "not-the-password", "user-app")
    assert r.status in (400, 401), r
