/* user-service store: every SQL statement of the service, and nothing else. Values are always
 * bound (antar/db.h prepares every statement). */
#include <stdlib.h>

#include "user.h"

#define USER_COLS "id, name, email, phone, created_at"

/* The public order columns, plus user_id, driver_id and request_hash for the domain's checks
 * (orders.c strips them before a client sees the order). */
#define ORDER_COLS                                                                                 \
    "id, user_id, status, pickup_lat, pickup_lng, pickup_address, dropoff_lat, dropoff_lng, "      \
    "dropoff_address, vehicle_type, distance_m, duration_s, pickup_eta_s, price, currency, "       \
    "surge_multiplier, "                                                                           \
    "driver_id, request_hash, created_at, updated_at, accepted_at, picked_up_at, completed_at, "   \
    "cancelled_at, expired_at"

antar_err_t store_user_insert(const char *name, const char *email, const char *phone,
                              const char *password_hash, long long *id)
{
    unsigned long long last = 0;
    antar_err_t err =
        antar_db_exec("INSERT INTO users (name, email, phone, password_hash) VALUES (?, ?, ?, ?)",
                      ANTAR_DB_ARGS(ANTAR_DB_S(name), ANTAR_DB_S(email), ANTAR_DB_S(phone),
                                    ANTAR_DB_S(password_hash)),
                      NULL, &last);
    if (err == ANTAR_OK)
        *id = (long long)last;
    return err;
}

antar_err_t store_users_insert_many(const store_user_new_t *rows, size_t n,
                                    const char *password_hash)
{
    if (n == 0 || n > STORE_USERS_BATCH)
        return ANTAR_E_BAD_REQUEST;
    /* A full batch has the same SQL text every time, so it is prepared once; a shorter last
     * batch adds one more. */
    char *sql = antar_db_sql_repeat("INSERT INTO users (name, email, phone, password_hash) VALUES ",
                                    "(?, ?, ?, ?)", n, "");
    antar_db_arg_t *args = calloc(4 * n, sizeof *args);
    antar_err_t err = ANTAR_E_NOMEM;
    if (!sql || !args)
        goto done;
    for (size_t i = 0; i < n; i++) {
        args[4 * i] = ANTAR_DB_S(rows[i].name);
        args[4 * i + 1] = ANTAR_DB_S(rows[i].email);
        args[4 * i + 2] = ANTAR_DB_S(rows[i].phone);
        args[4 * i + 3] = ANTAR_DB_S(password_hash);
    }
    if ((err = antar_db_begin()) != ANTAR_OK)
        goto done;
    err = antar_db_exec(sql, args, 4 * n, NULL, NULL);
    if (err == ANTAR_OK)
        err = antar_db_commit();
    if (err != ANTAR_OK)
        antar_db_rollback();
done:
    free(args);
    free(sql);
    return err;
}

antar_err_t store_users_email_like(const char *pattern, json_t **rows)
{
    return antar_db_query("SELECT id, email FROM users WHERE email LIKE ? ORDER BY id",
                          ANTAR_DB_ARGS(ANTAR_DB_S(pattern)), rows);
}

antar_err_t store_user_get(long long id, json_t **row)
{
    return antar_db_query_one("SELECT " USER_COLS " FROM users WHERE id = ?",
                              ANTAR_DB_ARGS(ANTAR_DB_I(id)), row);
}

antar_err_t store_user_find_login(bool by_email, const char *value, json_t **row)
{
    return antar_db_query_one(by_email
                                  ? "SELECT id, name, password_hash FROM users WHERE email = ?"
                                  : "SELECT id, name, password_hash FROM users WHERE phone = ?",
                              ANTAR_DB_ARGS(ANTAR_DB_S(value)), row);
}

antar_err_t store_user_taken(bool is_email, const char *value, long long exclude_id, bool *taken)
{
    json_t *row = NULL;
    antar_err_t err =
        antar_db_query_one(is_email ? "SELECT id FROM users WHERE email = ? AND id <> ?"
                                    : "SELECT id FROM users WHERE phone = ? AND id <> ?",
                           ANTAR_DB_ARGS(ANTAR_DB_S(value), ANTAR_DB_I(exclude_id)), &row);
    if (err == ANTAR_E_NOT_FOUND) {
        *taken = false;
        return ANTAR_OK;
    }
    if (err == ANTAR_OK) {
        *taken = true;
        json_decref(row);
    }
    return err;
}

antar_err_t store_user_update(long long id, const char *name, const char *email, const char *phone)
{
    return antar_db_exec(
        "UPDATE users SET name = COALESCE(?, name), email = COALESCE(?, email), "
        "phone = COALESCE(?, phone) WHERE id = ?",
        ANTAR_DB_ARGS(ANTAR_DB_S(name), ANTAR_DB_S(email), ANTAR_DB_S(phone), ANTAR_DB_I(id)), NULL,
        NULL);
}

antar_err_t store_order_insert(long long user_id, const order_input_t *in, long long distance_m,
                               long long duration_s, long long price, const char *currency,
                               double surge, const char *request_hash, long long *id)
{
    unsigned long long last = 0;
    antar_err_t err = antar_db_exec(
        "INSERT INTO orders (user_id, status, pickup_lat, pickup_lng, pickup_address, "
        "dropoff_lat, dropoff_lng, dropoff_address, vehicle_type, distance_m, duration_s, price, "
        "currency, surge_multiplier, quote_id, idempotency_key, request_hash) "
        "VALUES (?, 'searching', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ANTAR_DB_ARGS(ANTAR_DB_I(user_id), ANTAR_DB_D(in->pickup_lat), ANTAR_DB_D(in->pickup_lng),
                      ANTAR_DB_S(in->pickup_address), ANTAR_DB_D(in->dropoff_lat),
                      ANTAR_DB_D(in->dropoff_lng), ANTAR_DB_S(in->dropoff_address),
                      ANTAR_DB_S(in->vehicle_type), ANTAR_DB_I(distance_m), ANTAR_DB_I(duration_s),
                      ANTAR_DB_I(price), ANTAR_DB_S(currency), ANTAR_DB_D(surge),
                      ANTAR_DB_S(in->quote_id), ANTAR_DB_S(in->idempotency_key),
                      ANTAR_DB_S(request_hash)),
        NULL, &last);
    if (err == ANTAR_OK)
        *id = (long long)last;
    return err;
}

antar_err_t store_order_get(long long id, long long user_id, json_t **row)
{
    if (user_id > 0)
        return antar_db_query_one("SELECT " ORDER_COLS " FROM orders WHERE id = ? AND user_id = ?",
                                  ANTAR_DB_ARGS(ANTAR_DB_I(id), ANTAR_DB_I(user_id)), row);
    return antar_db_query_one("SELECT " ORDER_COLS " FROM orders WHERE id = ?",
                              ANTAR_DB_ARGS(ANTAR_DB_I(id)), row);
}

antar_err_t store_order_by_key(long long user_id, const char *key, json_t **row)
{
    return antar_db_query_one("SELECT " ORDER_COLS
                              " FROM orders WHERE user_id = ? AND idempotency_key = ?",
                              ANTAR_DB_ARGS(ANTAR_DB_I(user_id), ANTAR_DB_S(key)), row);
}

antar_err_t store_order_active(long long user_id, json_t **row)
{
    return antar_db_query_one("SELECT " ORDER_COLS " FROM orders WHERE active_user_id = ?",
                              ANTAR_DB_ARGS(ANTAR_DB_I(user_id)), row);
}

antar_err_t store_order_list(long long user_id, long long before_id, int limit, json_t **rows)
{
    /* (user_id, id) is indexed: keyset paging never scans the pages already seen. */
    return antar_db_query("SELECT " ORDER_COLS " FROM orders WHERE user_id = ? AND id < ? "
                          "ORDER BY id DESC LIMIT ?",
                          ANTAR_DB_ARGS(ANTAR_DB_I(user_id),
                                        ANTAR_DB_I(before_id > 0 ? before_id : (1LL << 62)),
                                        ANTAR_DB_I(limit)),
                          rows);
}

static antar_err_t exec_won(const char *sql, const antar_db_arg_t *args, size_t nargs, bool *won)
{
    unsigned long long affected = 0;
    antar_err_t err = antar_db_exec(sql, args, nargs, &affected, NULL);
    *won = err == ANTAR_OK && affected == 1;
    return err;
}

antar_err_t store_order_cancel(long long id, long long user_id, const char *reason, bool *won)
{
    return exec_won("UPDATE orders SET status = 'cancelled', cancelled_at = NOW(3), "
                    "cancel_reason = ? WHERE id = ? AND user_id = ? "
                    "AND status IN ('searching', 'accepted')",
                    ANTAR_DB_ARGS(ANTAR_DB_S(reason), ANTAR_DB_I(id), ANTAR_DB_I(user_id)), won);
}

antar_err_t store_order_assign(long long id, long long driver_id, long long offer_id,
                               long long pickup_eta_s, bool *won)
{
    return exec_won("UPDATE orders SET status = 'accepted', driver_id = ?, offer_id = ?, "
                    "pickup_eta_s = ?, accepted_at = NOW(3) WHERE id = ? AND status = 'searching'",
                    ANTAR_DB_ARGS(ANTAR_DB_I(driver_id),
                                  offer_id > 0 ? ANTAR_DB_I(offer_id) : ANTAR_DB_NULLARG,
                                  pickup_eta_s >= 0 ? ANTAR_DB_I(pickup_eta_s) : ANTAR_DB_NULLARG,
                                  ANTAR_DB_I(id)),
                    won);
}

antar_err_t store_order_pickup(long long id, long long driver_id, bool *won)
{
    return exec_won("UPDATE orders SET status = 'picked_up', picked_up_at = NOW(3) "
                    "WHERE id = ? AND driver_id = ? AND status = 'accepted'",
                    ANTAR_DB_ARGS(ANTAR_DB_I(id), ANTAR_DB_I(driver_id)), won);
}

antar_err_t store_order_complete(long long id, long long driver_id, bool *won)
{
    return exec_won("UPDATE orders SET status = 'completed', completed_at = NOW(3) "
                    "WHERE id = ? AND driver_id = ? AND status = 'picked_up'",
                    ANTAR_DB_ARGS(ANTAR_DB_I(id), ANTAR_DB_I(driver_id)), won);
}

antar_err_t store_order_expire(long long id, bool *won)
{
    return exec_won("UPDATE orders SET status = 'expired', expired_at = NOW(3) "
                    "WHERE id = ? AND status = 'searching'",
                    ANTAR_DB_ARGS(ANTAR_DB_I(id)), won);
}

antar_err_t store_rating_insert(long long order_id, long long user_id, long long driver_id,
                                int rating, const char *comment)
{
    return antar_db_exec("INSERT INTO ratings (order_id, user_id, driver_id, rating, comment) "
                         "VALUES (?, ?, ?, ?, ?)",
                         ANTAR_DB_ARGS(ANTAR_DB_I(order_id), ANTAR_DB_I(user_id),
                                       ANTAR_DB_I(driver_id), ANTAR_DB_I(rating),
                                       ANTAR_DB_S(comment)),
                         NULL, NULL);
}

antar_err_t store_rating_get(long long order_id, json_t **row)
{
    return antar_db_query_one(
        "SELECT order_id, rating, comment, created_at FROM ratings WHERE order_id = ?",
        ANTAR_DB_ARGS(ANTAR_DB_I(order_id)), row);
}

antar_err_t store_order_audit(long long after_id, int limit, json_t **rows)
{
    /* Keyset paging on the primary key; the rating is the order's one ratings row, if any. */
    return antar_db_query(
        "SELECT o.id, o.user_id, o.status, o.driver_id, o.offer_id, o.vehicle_type, o.price, "
        "o.idempotency_key, r.rating, o.created_at, o.accepted_at, o.picked_up_at, "
        "o.completed_at, o.cancelled_at, o.expired_at "
        "FROM orders o LEFT JOIN ratings r ON r.order_id = o.id "
        "WHERE o.id > ? ORDER BY o.id LIMIT ?",
        ANTAR_DB_ARGS(ANTAR_DB_I(after_id), ANTAR_DB_I(limit)), rows);
}
