/* user-service's domain (services/user/users.c and orders.c, included directly: the unit tests
 * link the toolkit, not the services), with no HTTP and no database: the store below is a table
 * in memory behind store.c's interface (user.h), and core's fare endpoint is a tiny server on
 * 127.0.0.1 (test_support.h). What is checked is what the domain decides and the outcome it
 * fills for the route layer (error, field, message): validation, duplicates, the order's state
 * transitions, and a fare refused or not given by core. The SQL itself is the integration
 * tests' (test_users.py, test_orders.py). */
#include <criterion/criterion.h>
#include <sodium.h>

#include "../../services/user/orders.c"
#include "../../services/user/users.c"
#include "antar/config.h"
#include "antar/password.h"
#include "test_support.h"

/* ---- the store, in memory ---------------------------------------------------------------- */

static json_t *users;  /* [{id, name, email, phone, password_hash, created_at}] */
static json_t *orders; /* [{id, user_id, driver_id, status, request_hash, idempotency_key}] */
static int user_inserts;

static json_t *find(json_t *table, long long id)
{
    size_t i;
    json_t *row;
    json_array_foreach(table, i,
                       row) if (json_integer_value(json_object_get(row, "id")) == id) return row;
    return NULL;
}

static const char *col(json_t *row, const char *k)
{
    const char *s = json_string_value(json_object_get(row, k));
    return s ? s : "";
}

static long long add_user(const char *name, const char *email, const char *phone, const char *hash)
{
    long long id = (long long)json_array_size(users) + 1;
    json_array_append_new(users,
                          json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "id", (json_int_t)id, "name", name,
                                    "email", email, "phone", phone, "password_hash", hash,
                                    "created_at", "2026-01-01T00:00:00Z"));
    return id;
}

static long long add_order(long long user_id, const char *status, long long driver_id)
{
    long long id = (long long)json_array_size(orders) + 100;
    json_array_append_new(orders,
                          json_pack("{s:I,s:I,s:I,s:s,s:s,s:n}", "id", (json_int_t)id, "user_id",
                                    (json_int_t)user_id, "driver_id", (json_int_t)driver_id,
                                    "status", status, "request_hash", "", "idempotency_key"));
    return id;
}

antar_err_t store_user_taken(bool is_email, const char *value, long long exclude_id, bool *taken)
{
    size_t i;
    json_t *row;
    *taken = false;
    json_array_foreach(users, i, row)
    {
        if (json_integer_value(json_object_get(row, "id")) != exclude_id &&
            !strcmp(col(row, is_email ? "email" : "phone"), value))
            *taken = true;
    }
    return ANTAR_OK;
}

antar_err_t store_user_insert(const char *name, const char *email, const char *phone,
                              const char *password_hash, long long *id)
{
    bool a, b;
    store_user_taken(true, email, 0, &a);
    store_user_taken(false, phone, 0, &b);
    if (a || b)
        return ANTAR_E_DUPLICATE;
    user_inserts++;
    *id = add_user(name, email, phone, password_hash);
    return ANTAR_OK;
}

antar_err_t store_user_get(long long id, json_t **row)
{
    json_t *u = find(users, id);
    if (!u)
        return ANTAR_E_NOT_FOUND;
    *row = json_deep_copy(u);
    json_object_del(*row, "password_hash");
    return ANTAR_OK;
}

antar_err_t store_user_find_login(bool by_email, const char *value, json_t **row)
{
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u) if (!strcmp(col(u, by_email ? "email" : "phone"), value))
    {
        *row = json_deep_copy(u);
        return ANTAR_OK;
    }
    return ANTAR_E_NOT_FOUND;
}

antar_err_t store_user_update(long long id, const char *name, const char *email, const char *phone)
{
    json_t *u = find(users, id);
    if (!u)
        return ANTAR_E_NOT_FOUND;
    if (name)
        json_object_set_new(u, "name", json_string(name));
    if (email)
        json_object_set_new(u, "email", json_string(email));
    if (phone)
        json_object_set_new(u, "phone", json_string(phone));
    return ANTAR_OK;
}

antar_err_t store_order_get(long long id, long long user_id, json_t **row)
{
    json_t *o = find(orders, id);
    if (!o || (user_id && json_integer_value(json_object_get(o, "user_id")) != user_id))
        return ANTAR_E_NOT_FOUND;
    *row = json_deep_copy(o);
    return ANTAR_OK;
}

antar_err_t store_order_active(long long user_id, json_t **row)
{
    size_t i;
    json_t *o;
    json_array_foreach(orders, i, o)
    {
        const char *st = col(o, "status");
        if (json_integer_value(json_object_get(o, "user_id")) == user_id &&
            (!strcmp(st, "searching") || !strcmp(st, "accepted") || !strcmp(st, "picked_up"))) {
            *row = json_deep_copy(o);
            return ANTAR_OK;
        }
    }
    return ANTAR_E_NOT_FOUND;
}

antar_err_t store_order_by_key(long long user_id, const char *key, json_t **row)
{
    size_t i;
    json_t *o;
    json_array_foreach(orders, i, o)
    {
        if (json_integer_value(json_object_get(o, "user_id")) == user_id &&
            !strcmp(col(o, "idempotency_key"), key)) {
            *row = json_deep_copy(o);
            return ANTAR_OK;
        }
    }
    return ANTAR_E_NOT_FOUND;
}

/* A conditional transition: from status `from` (by driver_id when it is set) to `to`. */
static antar_err_t move(long long id, const char *from, const char *to, long long driver_id,
                        bool check_driver, bool *won)
{
    json_t *o = find(orders, id);
    *won = o && !strcmp(col(o, "status"), from) &&
           (!check_driver || json_integer_value(json_object_get(o, "driver_id")) == driver_id);
    if (*won) {
        json_object_set_new(o, "status", json_string(to));
        json_object_set_new(o, "driver_id", json_integer(driver_id));
    }
    return ANTAR_OK;
}

antar_err_t store_order_assign(long long id, long long driver_id, long long offer_id,
                               long long pickup_eta_s, bool *won)
{
    (void)offer_id;
    antar_err_t err = move(id, "searching", "accepted", driver_id, false, won);
    json_t *o = find(orders, id);
    if (err == ANTAR_OK && *won && o)
        json_object_set_new(o, "pickup_eta_s",
                            pickup_eta_s >= 0 ? json_integer(pickup_eta_s) : json_null());
    return err;
}

antar_err_t store_order_pickup(long long id, long long driver_id, bool *won)
{
    return move(id, "accepted", "picked_up", driver_id, true, won);
}

antar_err_t store_order_complete(long long id, long long driver_id, bool *won)
{
    return move(id, "picked_up", "completed", driver_id, true, won);
}

/* Not reached by these tests (they need the database's transactions): refuse loudly. */
antar_err_t store_order_insert(long long user_id, const order_input_t *in, long long distance_m,
                               long long duration_s, long long price, const char *currency,
                               double surge, const char *request_hash, long long *id)
{
    (void)user_id, (void)in, (void)distance_m, (void)duration_s, (void)price, (void)currency;
    (void)surge, (void)request_hash, (void)id;
    cr_assert_fail("store_order_insert is not expected here");
    return ANTAR_E_DB;
}
antar_err_t store_order_list(long long user_id, long long before_id, int limit, json_t **rows)
{
    (void)user_id, (void)before_id, (void)limit, (void)rows;
    return ANTAR_E_DB;
}
antar_err_t store_order_cancel(long long id, long long user_id, const char *reason, bool *won)
{
    (void)id, (void)user_id, (void)reason, (void)won;
    return ANTAR_E_DB;
}
antar_err_t store_order_expire(long long id, bool *won)
{
    (void)id, (void)won;
    return ANTAR_E_DB;
}
antar_err_t store_rating_insert(long long order_id, long long user_id, long long driver_id,
                                int rating, const char *comment)
{
    (void)order_id, (void)user_id, (void)driver_id, (void)rating, (void)comment;
    return ANTAR_E_DB;
}
antar_err_t store_rating_get(long long order_id, json_t **row)
{
    (void)order_id, (void)row;
    return ANTAR_E_DB;
}
antar_err_t store_order_audit(long long after_id, int limit, json_t **rows)
{
    (void)after_id, (void)limit, (void)rows;
    return ANTAR_E_DB;
}

/* ---- core's fare endpoint ----------------------------------------------------------------- */

static void core(int fd, const test_req_t *r)
{
    /* driver-service's profiles (the same server plays both peers). */
    if (!strcmp(r->path, "/internal/drivers/7")) {
        test_srv_reply(fd, 200, "application/json",
                       "{\"status\":200,\"result\":{\"id\":7,\"name\":\"Agus\",\"secret\":1},"
                       "\"error\":null}");
        return;
    }
    if (!strcmp(r->path, "/internal/drivers/9")) {
        test_srv_reply(fd, 503, "application/json", "");
        return;
    }
    if (!strncmp(r->path, "/internal/drivers/", 18)) {
        test_srv_reply(fd, 404, "application/json", "");
        return;
    }
    if (strstr(r->body, "\"quote_id\": \"expired\"") || strstr(r->body, "\"quote_id\":\"expired\""))
        test_srv_reply(fd, 422, "application/json",
                       "{\"status\":422,\"result\":null,\"error\":{\"code\":\"invalid_field\","
                       "\"message\":\"the quote has expired\",\"field\":\"quote_id\"}}");
    else if (strstr(r->body, "\"quote_id\": \"alien\"") ||
             strstr(r->body, "\"quote_id\":\"alien\""))
        test_srv_reply(fd, 422, "application/json",
                       "{\"status\":422,\"result\":null,\"error\":{\"code\":\"invalid_field\","
                       "\"message\":\"user_id is wrong\",\"field\":\"user_id\"}}");
    else if (strstr(r->body, "car"))
        test_srv_reply(
            fd, 503, "application/json",
            "{\"status\":503,\"result\":null,\"error\":{\"code\":"
            "\"redis_unavailable\",\"message\":\"redis is unavailable\",\"field\":null}}");
    else
        test_srv_reply(fd, 200, "application/json",
                       "{\"status\":200,\"result\":{\"price\":-5},\"error\":null}");
}

static antar_config_t cfg;

static void setup(void)
{
    cr_assert(sodium_init() >= 0);
    setenv("ANTAR_ARGON2_OPSLIMIT", "1", 1);
    setenv("ANTAR_ARGON2_MEMLIMIT", "8192", 1);
    test_httpc_start(&cfg, core, 1000);
    users = json_array();
    orders = json_array();
    user_inserts = 0;
}

static void teardown(void)
{
    antar_httpc_thread_end();
    json_decref(users);
    json_decref(orders);
}

TestSuite(user_domain, .init = setup, .fini = teardown);

/* err and why must be want, naming field ("" for none) and saying msg. */
static void assert_why(antar_err_t err, const antar_outcome_t *why, antar_err_t want,
                       const char *field, const char *msg)
{
    cr_assert_eq(err, want, "error %s, want %s", antar_err_code(err), antar_err_code(want));
    cr_assert_eq(why->err, want, "the outcome records %s, want %s", antar_err_code(why->err),
                 antar_err_code(want));
    cr_assert_str_eq(why->field, field);
    cr_assert_str_eq(why->message, msg);
}

/* ---- accounts ----------------------------------------------------------------------------- */

Test(user_domain, signup_refuses_a_blank_name_before_anything_is_stored)
{
    antar_outcome_t why = {0};
    json_t *out = NULL;
    antar_err_t err = users_signup(" \t ", "a@b.id", "+6281200000001", "password1", &out, &why);
    assert_why(err, &why, ANTAR_E_INVALID_FIELD, "name", "name must not be blank");
    cr_assert_null(out);
    cr_assert_eq(user_inserts, 0);
}

Test(user_domain, signup_names_the_field_already_taken)
{
    add_user("Sari", "sari@example.id", "+6281200000001", "x");
    antar_outcome_t why = {0};
    json_t *out = NULL;
    antar_err_t err =
        users_signup("Budi", "SARI@Example.id", "+6281200000002", "password1", &out, &why);
    assert_why(err, &why, ANTAR_E_DUPLICATE, "email", "an account with this email already exists");
    err = users_signup("Budi", "budi@example.id", "+6281200000001", "password1", &out, &why);
    assert_why(err, &why, ANTAR_E_DUPLICATE, "phone", "an account with this phone already exists");
    cr_assert_eq(user_inserts, 0, "a duplicate costs no insert (and no hash)");
}

Test(user_domain, signup_stores_the_email_lower_cased)
{
    antar_outcome_t why = {0};
    json_t *out = NULL;
    cr_assert_eq(
        users_signup("Sari Dewi", "Sari@Example.ID", "+6281200000001", "password1", &out, &why),
        ANTAR_OK);
    cr_assert_str_eq(col(out, "email"), "sari@example.id");
    cr_assert_null(json_object_get(out, "password_hash"), "never the hash");
    cr_assert_eq(why.err, ANTAR_OK, "nothing recorded on success");
    json_decref(out);
}

Test(user_domain, a_missing_account_is_no_such_account)
{
    antar_outcome_t why = {0};
    json_t *out = NULL;
    assert_why(users_get(42, &out, &why), &why, ANTAR_E_NOT_FOUND, "", "no such account");
    why = (antar_outcome_t){0};
    assert_why(users_update(42, "New", NULL, NULL, &out, &why), &why, ANTAR_E_NOT_FOUND, "",
               "no such account");
}

Test(user_domain, update_refuses_blank_names_and_others_values)
{
    long long me = add_user("Sari", "sari@example.id", "+6281200000001", "x");
    add_user("Budi", "budi@example.id", "+6281200000002", "x");
    antar_outcome_t why = {0};
    json_t *out = NULL;
    assert_why(users_update(me, "  ", NULL, NULL, &out, &why), &why, ANTAR_E_INVALID_FIELD, "name",
               "name must not be blank");
    assert_why(users_update(me, NULL, "BUDI@example.id", NULL, &out, &why), &why, ANTAR_E_DUPLICATE,
               "email", "an account with this email already exists");
    cr_assert_str_eq(col(find(users, me), "email"), "sari@example.id", "nothing changed");
    /* Its own values are not "taken". */
    cr_assert_eq(users_update(me, NULL, "sari@example.id", "+6281200000001", &out, &why), ANTAR_OK);
    json_decref(out);
}

Test(user_domain, credentials_are_checked_without_telling_which_part_is_wrong)
{
    char hash[ANTAR_PASSWORD_HASH_MAX];
    cr_assert_eq(antar_password_hash("rahasia-123", hash), ANTAR_OK);
    long long id = add_user("Sari Dewi", "sari@example.id", "+6281200000001", hash);
    json_t *who = NULL;
    cr_assert_eq(users_verify_credentials("nobody@example.id", "rahasia-123", &who),
                 ANTAR_E_UNAUTHORIZED);
    cr_assert_eq(users_verify_credentials("sari@example.id", "wrong-one", &who),
                 ANTAR_E_UNAUTHORIZED);
    cr_assert_null(who);
    cr_assert_eq(users_verify_credentials("SARI@example.id", "rahasia-123", &who), ANTAR_OK);
    char sub[32];
    snprintf(sub, sizeof sub, "user:%lld", id);
    cr_assert_str_eq(col(who, "sub"), sub);
    json_decref(who);
    cr_assert_eq(users_verify_credentials("+6281200000001", "rahasia-123", &who), ANTAR_OK,
                 "by phone too");
    json_decref(who);
}

/* ---- order transitions -------------------------------------------------------------------- */

Test(user_domain, assign_then_a_second_driver_conflicts_and_a_retry_is_served)
{
    long long o = add_order(1, "searching", 0);
    antar_outcome_t why = {0};
    json_t *out = NULL;
    cr_assert_eq(orders_assign(o, 7, 70, 240, NULL, &out, &why), ANTAR_OK);
    cr_assert_str_eq(col(out, "status"), "accepted");
    cr_assert_eq(json_integer_value(json_object_get(out, "pickup_eta_s")), 240);
    json_decref(out);
    out = NULL;
    assert_why(orders_assign(o, 8, 80, 240, NULL, &out, &why), &why, ANTAR_E_CONFLICT, "",
               "the order is accepted for another driver");
    cr_assert_null(out);
    why = (antar_outcome_t){0};
    cr_assert_eq(orders_assign(o, 7, 70, 240, NULL, &out, &why), ANTAR_OK,
                 "the same driver again is a retry, answered with the order");
    json_decref(out);
}

Test(user_domain, complete_before_pickup_is_not_yet_and_says_where_the_order_is)
{
    long long o = add_order(1, "accepted", 7);
    antar_outcome_t why = {0};
    json_t *out = NULL;
    assert_why(orders_complete(o, 7, NULL, &out, &why), &why, ANTAR_E_NOT_YET, "",
               "the order is accepted, not picked_up");
    cr_assert_eq(orders_pickup(o, 7, NULL, &out, &why), ANTAR_OK);
    json_decref(out);
    cr_assert_eq(orders_complete(o, 7, NULL, &out, &why), ANTAR_OK);
    cr_assert_str_eq(col(out, "status"), "completed");
    json_decref(out);
    assert_why(orders_pickup(o, 7, NULL, &out, &why), &why, ANTAR_E_CONFLICT, "",
               "the order is completed, not accepted");
}

Test(user_domain, another_drivers_pickup_conflicts)
{
    long long o = add_order(1, "accepted", 7);
    antar_outcome_t why = {0};
    json_t *out = NULL;
    assert_why(orders_pickup(o, 9, NULL, &out, &why), &why, ANTAR_E_CONFLICT, "",
               "the order is accepted for another driver");
    cr_assert_str_eq(col(find(orders, o), "status"), "accepted", "nothing moved");
}

Test(user_domain, unknown_and_other_peoples_orders_are_no_such_order)
{
    long long o = add_order(1, "completed", 7);
    antar_outcome_t why = {0};
    json_t *out = NULL;
    assert_why(orders_get_for_user(2, o, &out, &why), &why, ANTAR_E_NOT_FOUND, "", "no such order");
    why = (antar_outcome_t){0};
    assert_why(orders_rate(2, o, 5, NULL, &out, &why), &why, ANTAR_E_NOT_FOUND, "",
               "no such order");
    why = (antar_outcome_t){0};
    assert_why(orders_assign(999, 7, 0, -1, NULL, &out, &why), &why, ANTAR_E_NOT_FOUND, "",
               "no such order");
    why = (antar_outcome_t){0};
    assert_why(orders_get_internal(999, &out, &why), &why, ANTAR_E_NOT_FOUND, "", "no such order");
}

Test(user_domain, only_a_completed_order_can_be_rated)
{
    long long o = add_order(1, "picked_up", 7);
    antar_outcome_t why = {0};
    json_t *out = NULL;
    assert_why(orders_rate(1, o, 5, "ok", &out, &why), &why, ANTAR_E_CONFLICT, "",
               "the order is picked_up: only a completed order can be rated");
}

/* ---- placing an order ------------------------------------------------------------------- */

static order_input_t order_in(const char *vehicle, const char *quote_id, const char *key)
{
    return (order_input_t){.pickup_lat = -6.2,
                           .pickup_lng = 106.8,
                           .dropoff_lat = -6.25,
                           .dropoff_lng = 106.85,
                           .pickup_address = "Jl. Sudirman 1",
                           .dropoff_address = "Jl. Thamrin 2",
                           .vehicle_type = vehicle,
                           .quote_id = quote_id,
                           .idempotency_key = key};
}

Test(user_domain, a_second_active_order_conflicts_before_core_is_asked)
{
    long long active = add_order(1, "searching", 0);
    order_input_t in = order_in("motorcycle", NULL, NULL);
    antar_outcome_t why = {0};
    json_t *out = NULL;
    bool replayed = false;
    char msg[80];
    snprintf(msg, sizeof msg, "you already have an active order (id %lld)", active);
    assert_why(orders_create(1, &in, &out, &replayed, &why), &why, ANTAR_E_CONFLICT, "", msg);
    cr_assert_eq(test_srv_count("/internal/fares/quote"), 0, "core was not asked");
}

Test(user_domain, a_reused_idempotency_key_with_another_body_conflicts)
{
    long long o = add_order(1, "completed", 7);
    json_object_set_new(find(orders, o), "idempotency_key", json_string("k-1"));
    json_object_set_new(find(orders, o), "request_hash", json_string("another request"));
    order_input_t in = order_in("motorcycle", NULL, "k-1");
    antar_outcome_t why = {0};
    json_t *out = NULL;
    bool replayed = false;
    assert_why(orders_create(1, &in, &out, &replayed, &why), &why, ANTAR_E_CONFLICT,
               "Idempotency-Key",
               "this Idempotency-Key was already used for a different order request");
    cr_assert(!replayed);
}

Test(user_domain, a_fare_core_refuses_is_the_clients_field_error)
{
    order_input_t in = order_in("motorcycle", "expired", NULL);
    antar_outcome_t why = {0};
    json_t *out = NULL;
    bool replayed = false;
    assert_why(orders_create(1, &in, &out, &replayed, &why), &why, ANTAR_E_INVALID_FIELD,
               "quote_id", "the quote has expired");
    /* A field the client did not send is not named. */
    in = order_in("motorcycle", "alien", NULL);
    assert_why(orders_create(1, &in, &out, &replayed, &why), &why, ANTAR_E_INVALID_FIELD, "",
               "user_id is wrong");
}

Test(user_domain, core_failing_is_a_5xx_that_says_so)
{
    order_input_t in = order_in("car", NULL, NULL);
    antar_outcome_t why = {0};
    json_t *out = NULL;
    bool replayed = false;
    assert_why(orders_create(1, &in, &out, &replayed, &why), &why, ANTAR_E_UNAVAILABLE, "",
               "core-service is unavailable");
    in = order_in("motorcycle", NULL, NULL);
    assert_why(orders_create(1, &in, &out, &replayed, &why), &why, ANTAR_E_UPSTREAM, "",
               "core-service answered a fare without a valid price");
    cr_assert_eq(json_array_size(orders), 0, "no order stored");
}

/* ---- the driver's profile on a customer's order ------------------------------------------- */

static json_t *driver_of(long long driver_id)
{
    long long o = add_order(1, "accepted", driver_id);
    antar_outcome_t why = {0};
    json_t *out = NULL;
    cr_assert_eq(orders_get_for_user(1, o, &out, &why), ANTAR_OK);
    json_t *d = json_incref(json_object_get(out, "driver"));
    json_decref(out);
    return d;
}

Test(user_domain, the_drivers_public_profile_only)
{
    json_t *d = driver_of(7);
    cr_assert_str_eq(col(d, "name"), "Agus");
    cr_assert_null(json_object_get(d, "secret"), "only the public fields are copied");
    json_decref(d);
}

Test(user_domain, a_driver_service_away_or_refusing_still_serves_the_order)
{
    json_t *d = driver_of(9); /* 503: away */
    cr_assert(json_is_true(json_object_get(d, "degraded")), "degraded, not an error");
    json_decref(d);
    d = driver_of(8); /* 404: a refusal about this driver */
    cr_assert(json_is_true(json_object_get(d, "degraded")));
    json_decref(d);
    cr_assert_eq(test_srv_count("/internal/drivers/8"), 1);
}
