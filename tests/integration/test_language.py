"""Accept-Language: id gives Indonesian error messages through the edge; the code, the status and
the field never change with the language (docs/errors.md). The messages come from lib/error.c's
Indonesian table, so these expectations are the table's words."""

from antar_client import new_user, signup_user, unique_email, unique_phone

ID = {"Accept-Language": "id"}


def _err(r):
    assert r.body and r.body.get("error"), r
    return r.body["error"]


def test_missing_field_in_indonesian_and_english(edge):
    body = {"name": "Sari", "email": unique_email("lang"), "password": "rahasia-sari-2025"}
    en = edge.post("/users", json=body)
    idn = edge.post("/users", json=body, headers=ID)
    assert en.status == idn.status == 422, (en, idn)
    e_en, e_id = _err(en), _err(idn)
    assert e_en["code"] == e_id["code"] == "missing_field"
    assert e_en["field"] == e_id["field"] == "phone"
    assert e_en["message"] == "phone is required"
    assert e_id["message"] == "phone wajib diisi"
    assert idn.headers.get("Content-Language") == "id", idn.headers
    assert "Content-Language" not in en.headers, en.headers


def test_invalid_and_unknown_fields_name_the_field(edge):
    base = {"name": "Sari", "email": unique_email("lang"), "phone": unique_phone(),
            "password": "rahasia-sari-2025"}
    r = edge.post("/users", json=dict(base, email="not-an-address"), headers=ID)
    assert r.status == 422 and _err(r)["code"] == "invalid_field", r
    assert _err(r)["message"] == "nilai email tidak valid" and _err(r)["field"] == "email"
    r = edge.post("/users", json=dict(base, colour="blue"), headers={"Accept-Language": "id-ID"})
    assert r.status == 422 and _err(r)["code"] == "unknown_field", r
    assert _err(r)["message"] == "colour bukan field dari endpoint ini"


def test_duplicate_sign_up_in_indonesian(edge):
    u = signup_user(edge)
    r = edge.post("/users", json={"name": "Sari", "email": u["email"], "phone": unique_phone(),
                                  "password": "rahasia-sari-2025"}, headers=ID)
    assert r.status == 409, r
    assert _err(r) == {"code": "duplicate", "message": "email sudah terdaftar", "field": "email"}


def test_default_messages_per_code(edge):
    # 401 without a token, 404 for no route, 415 for a text body: each the table's words.
    r = edge.get("/users/me", headers=ID)
    assert r.status == 401 and _err(r)["code"] == "unauthorized", r
    assert _err(r)["message"] == "diperlukan bearer token yang valid"
    r = edge.get("/orders/no-such-thing/at-all", headers=ID)
    assert r.status == 404 and _err(r)["code"] == "not_found", r
    r = edge.post("/users", data="hello", headers=dict(ID, **{"Content-Type": "text/plain"}))
    assert r.status == 415 and _err(r)["code"] == "unsupported_media_type", r
    assert _err(r)["message"] == "gunakan application/json atau application/x-www-form-urlencoded"


def test_csrf_error_in_indonesian_keeps_its_code(edge, user_api, core_api):
    s = new_user(user_api, core_api)
    r = edge.patch("/users/me", json={"name": "Sari W"}, token=s.token, headers=ID)
    assert r.status == 403, r
    assert _err(r) == {"code": "csrf_token_invalid", "message": "diperlukan token CSRF yang valid",
                       "field": None}


def test_english_is_kept_unless_indonesian_is_preferred(edge):
    body = {"name": "Sari", "email": unique_email("lang"), "password": "x" * 12}
    for header in ("en-US,en;q=0.9,id;q=0.8", "id;q=0", "fr", "*"):
        r = edge.post("/users", json=body, headers={"Accept-Language": header})
        assert r.status == 422 and _err(r)["message"] == "phone is required", (header, r)
    r = edge.post("/users", json=body, headers={"Accept-Language": "en;q=0.5, id;q=0.8"})
    assert _err(r)["message"] == "phone wajib diisi", r
