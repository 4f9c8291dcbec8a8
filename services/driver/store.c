/* driver-service store: every SQL statement of the service, nothing else. */
#include <stdlib.h>
#include <string.h>

#include "antar/db.h"
#include "antar/outbox.h"
#include "antar/kv.h"
#include "driver.h"

/* Runs a one-row SELECT whose column "n" is an integer. */
static antar_err_t count_of(const char *sql, const antar_db_arg_t *args, size_t nargs, long long *n)
{
    json_t *row = NULL;
    antar_err_t err = antar_db_query_one(sql, args, nargs, &row);
    if (err == ANTAR_E_NOT_FOUND) {
        *n = 0;
        return ANTAR_OK;
    }
    if (err != ANTAR_OK)
        return err;
    json_t *v = json_object_get(row, "n");
    *n = json_is_integer(v) ? json_integer_value(v) : (long long)json_number_value(v);
    json_decref(row);
    return ANTAR_OK;
}

/* A conditional UPDATE of one row: *changed when it matched (CLIENT_FOUND_ROWS: matched, not
 * necessarily modified). */
static antar_err_t exec_changed(const char *sql, const antar_db_arg_t *args, size_t nargs,
                                bool *changed)
{
    unsigned long long affected = 0;
    antar_err_t err = antar_db_exec(sql, args, nargs, &affected, NULL);
    *changed = err == ANTAR_OK && affected == 1;
    return err;
}

/* The one way every transaction of this file ends: commit when all went well, else roll back.
 * Returns the first error (a failed commit is rolled back too). */
static antar_err_t tx_end(antar_err_t err)
{
    if (err == ANTAR_OK)
        err = antar_db_commit();
    if (err != ANTAR_OK)
        antar_db_rollback();
    return err;
}

/* ---- drivers --------------------------------------------------------------------------- */

#define DRIVER_COLUMNS                                                                             \
    "SELECT d.id, d.name, d.email, d.phone, v.vehicle_type, v.plate_number, d.rating, "            \
    "d.rating_count, d.status, d.lat, d.lng, d.location_updated_at, d.created_at, "                \
    "d.updated_at FROM drivers d JOIN vehicles v ON v.driver_id = d.id "

antar_err_t store_driver_insert(const char *name, const char *email, const char *phone,
                                const char *hash, const char *vehicle_type, const char *plate,
                                long long *id)
{
    unsigned long long new_id = 0;
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    err = antar_db_exec(
        "INSERT INTO drivers (name, email, phone, password_hash) "
        "VALUES (?, ?, ?, ?)",
        ANTAR_DB_ARGS(ANTAR_DB_S(name), ANTAR_DB_S(email), ANTAR_DB_S(phone), ANTAR_DB_S(hash)),
        NULL, &new_id);
    if (err != ANTAR_OK)
        goto out;
    err = antar_db_exec(
        "INSERT INTO vehicles (driver_id, vehicle_type, plate_number) "
        "VALUES (?, ?, ?)",
        ANTAR_DB_ARGS(ANTAR_DB_I((long long)new_id), ANTAR_DB_S(vehicle_type), ANTAR_DB_S(plate)),
        NULL, NULL);
out:
    err = tx_end(err);
    if (err == ANTAR_OK)
        *id = (long long)new_id;
    return err;
}

const char *store_driver_which_duplicate(const char *email, const char *phone, const char *plate,
                                         long long except_id)
{
    long long n = 0;
    if (email &&
        count_of("SELECT COUNT(*) AS n FROM drivers WHERE email = ? AND id <> ?",
                 ANTAR_DB_ARGS(ANTAR_DB_S(email), ANTAR_DB_I(except_id)), &n) == ANTAR_OK &&
        n > 0)
        return "email";
    if (phone &&
        count_of("SELECT COUNT(*) AS n FROM drivers WHERE phone = ? AND id <> ?",
                 ANTAR_DB_ARGS(ANTAR_DB_S(phone), ANTAR_DB_I(except_id)), &n) == ANTAR_OK &&
        n > 0)
        return "phone";
    if (plate &&
        count_of("SELECT COUNT(*) AS n FROM vehicles WHERE plate_number = ? AND driver_id <> ?",
                 ANTAR_DB_ARGS(ANTAR_DB_S(plate), ANTAR_DB_I(except_id)), &n) == ANTAR_OK &&
        n > 0)
        return "plate_number";
    return NULL;
}

antar_err_t store_drivers_insert_many(const store_driver_new_t *rows, size_t n, const char *hash)
{
    antar_db_arg_t *args = NULL;
    char *ins_drivers = NULL, *sel_ids = NULL, *ins_vehicles = NULL;
    json_t *found = NULL, *ids = NULL;
    if (n == 0 || n > STORE_DRIVERS_BATCH)
        return ANTAR_E_BAD_REQUEST;
    /* A full batch has the same SQL text every time, so each statement is prepared once; a
     * shorter last batch adds one more text of each. */
    ins_drivers = antar_db_sql_repeat("INSERT INTO drivers (name, email, phone, password_hash) "
                                      "VALUES ",
                                      "(?, ?, ?, ?)", n, "");
    sel_ids = antar_db_sql_repeat("SELECT id, email FROM drivers WHERE email IN (", "?", n, ")");
    ins_vehicles = antar_db_sql_repeat(
        "INSERT INTO vehicles (driver_id, vehicle_type, plate_number) VALUES ", "(?, ?, ?)", n, "");
    args = calloc(4 * n, sizeof *args);
    ids = json_object();
    antar_err_t err = ANTAR_E_NOMEM;
    if (!ins_drivers || !sel_ids || !ins_vehicles || !args || !ids)
        goto done;
    if ((err = antar_db_begin()) != ANTAR_OK)
        goto done;
    for (size_t i = 0; i < n; i++) {
        args[4 * i] = ANTAR_DB_S(rows[i].name);
        args[4 * i + 1] = ANTAR_DB_S(rows[i].email);
        args[4 * i + 2] = ANTAR_DB_S(rows[i].phone);
        args[4 * i + 3] = ANTAR_DB_S(hash);
    }
    if ((err = antar_db_exec(ins_drivers, args, 4 * n, NULL, NULL)) != ANTAR_OK)
        goto out;
    /* The ids the server gave, by email: not assumed consecutive (auto_increment_increment,
     * interleaved lock mode). */
    for (size_t i = 0; i < n; i++)
        args[i] = ANTAR_DB_S(rows[i].email);
    if ((err = antar_db_query(sel_ids, args, n, &found)) != ANTAR_OK)
        goto out;
    size_t k;
    json_t *r;
    json_array_foreach(found, k, r)
    {
        const char *email = json_string_value(json_object_get(r, "email"));
        if (email)
            json_object_set(ids, email, json_object_get(r, "id"));
    }
    for (size_t i = 0; i < n; i++) {
        json_t *id = json_object_get(ids, rows[i].email);
        if (!json_is_integer(id)) {
            err = ANTAR_E_INTERNAL;
            goto out;
        }
        args[3 * i] = ANTAR_DB_I(json_integer_value(id));
        args[3 * i + 1] = ANTAR_DB_S(rows[i].vehicle_type);
        args[3 * i + 2] = ANTAR_DB_S(rows[i].plate);
    }
    err = antar_db_exec(ins_vehicles, args, 3 * n, NULL, NULL);
out:
    err = tx_end(err);
done:
    json_decref(found);
    json_decref(ids);
    free(args);
    free(ins_drivers);
    free(sel_ids);
    free(ins_vehicles);
    return err;
}

antar_err_t store_drivers_email_like(const char *pattern, json_t **rows)
{
    return antar_db_query("SELECT d.id, d.email, v.vehicle_type FROM drivers d "
                          "JOIN vehicles v ON v.driver_id = d.id WHERE d.email LIKE ? "
                          "ORDER BY d.id",
                          ANTAR_DB_ARGS(ANTAR_DB_S(pattern)), rows);
}

antar_err_t store_driver_get(long long id, json_t **row)
{
    return antar_db_query_one(DRIVER_COLUMNS "WHERE d.id = ?", ANTAR_DB_ARGS(ANTAR_DB_I(id)), row);
}

antar_err_t store_driver_by_login(const char *username, json_t **row)
{
    const char *sql = strchr(username, '@')
                          ? "SELECT d.id, d.name, d.password_hash, v.vehicle_type FROM drivers d "
                            "JOIN vehicles v ON v.driver_id = d.id WHERE d.email = ?"
                          : "SELECT d.id, d.name, d.password_hash, v.vehicle_type FROM drivers d "
                            "JOIN vehicles v ON v.driver_id = d.id WHERE d.phone = ?";
    return antar_db_query_one(sql, ANTAR_DB_ARGS(ANTAR_DB_S(username)), row);
}

antar_err_t store_driver_update(long long id, const driver_patch_t *p)
{
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    /* COALESCE keeps a column when its new value is NULL (not given). */
    err = antar_db_exec("UPDATE drivers SET name = COALESCE(?, name), email = COALESCE(?, email), "
                        "phone = COALESCE(?, phone) WHERE id = ?",
                        ANTAR_DB_ARGS(ANTAR_DB_S(p->name), ANTAR_DB_S(p->email),
                                      ANTAR_DB_S(p->phone), ANTAR_DB_I(id)),
                        NULL, NULL);
    if (err != ANTAR_OK)
        goto out;
    if (p->plate_number) {
        err = antar_db_exec("UPDATE vehicles SET plate_number = ? WHERE driver_id = ?",
                            ANTAR_DB_ARGS(ANTAR_DB_S(p->plate_number), ANTAR_DB_I(id)), NULL, NULL);
    }
out:
    return tx_end(err);
}

antar_err_t store_driver_set_status(long long id, const char *status)
{
    return antar_db_exec("UPDATE drivers SET status = ? WHERE id = ?",
                         ANTAR_DB_ARGS(ANTAR_DB_S(status), ANTAR_DB_I(id)), NULL, NULL);
}

/* Rows per UPDATE: one statement text (prepared once per connection); a short last chunk is
 * padded by repeating its last row, which the join matches to the same driver again. */
#define LOCATION_ROWS 32
#define LOCATION_ROW "SELECT ? AS id, ? AS lat, ? AS lng, ? AS at_ms"
#define LOCATION_ROW_MORE " UNION ALL SELECT ?, ?, ?, ?"
#define LOCATION_ROWS_4 LOCATION_ROW_MORE LOCATION_ROW_MORE LOCATION_ROW_MORE LOCATION_ROW_MORE
#define LOCATION_ROWS_16 LOCATION_ROWS_4 LOCATION_ROWS_4 LOCATION_ROWS_4 LOCATION_ROWS_4

antar_err_t store_drivers_set_locations(const driver_position_t *p, size_t n)
{
    static const char sql[] =
        "UPDATE drivers d JOIN (" LOCATION_ROW LOCATION_ROWS_16 LOCATION_ROWS_4 LOCATION_ROWS_4
            LOCATION_ROWS_4 LOCATION_ROW_MORE LOCATION_ROW_MORE LOCATION_ROW_MORE
        ") v ON v.id = d.id SET d.lat = v.lat, d.lng = v.lng, "
        "d.location_updated_at = FROM_UNIXTIME(v.at_ms / 1000)";
    antar_db_arg_t args[LOCATION_ROWS * 4];
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    for (size_t off = 0; off < n && err == ANTAR_OK; off += LOCATION_ROWS) {
        for (size_t i = 0; i < LOCATION_ROWS; i++) {
            const driver_position_t *q = &p[off + i < n ? off + i : n - 1];
            args[4 * i] = ANTAR_DB_I(q->driver_id);
            args[4 * i + 1] = ANTAR_DB_D(q->lat);
            args[4 * i + 2] = ANTAR_DB_D(q->lng);
            args[4 * i + 3] = ANTAR_DB_I(q->at_ms);
        }
        err = antar_db_exec(sql, args, LOCATION_ROWS * 4, NULL, NULL);
    }
    return tx_end(err);
}

antar_err_t store_driver_active_trips(long long id, long long *n)
{
    return count_of("SELECT COUNT(*) AS n FROM trips WHERE driver_id = ? "
                    "AND status IN ('accepted', 'picked_up')",
                    ANTAR_DB_ARGS(ANTAR_DB_I(id)), n);
}

antar_err_t store_driver_earnings(long long id, const char *day_start, json_t **row)
{
    return antar_db_query_one(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS SIGNED) AS total, COUNT(*) AS trips, "
        "CAST(COALESCE(SUM(CASE WHEN created_at >= ? THEN amount ELSE 0 END), 0) AS SIGNED) "
        "AS today FROM earnings WHERE driver_id = ?",
        ANTAR_DB_ARGS(ANTAR_DB_S(day_start), ANTAR_DB_I(id)), row);
}

static antar_err_t driver_rate_tx(long long id, long long order_id, int rating,
                                  const char *event_id)
{
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    if (event_id && (err = antar_inbox_claim(event_id)) != ANTAR_OK)
        goto out;
    err = antar_db_exec("INSERT INTO driver_ratings (driver_id, order_id, rating) VALUES (?, ?, ?)",
                        ANTAR_DB_ARGS(ANTAR_DB_I(id), ANTAR_DB_I(order_id), ANTAR_DB_I(rating)),
                        NULL, NULL);
    if (err != ANTAR_OK)
        goto out;
    err = antar_db_exec(
        "UPDATE drivers SET rating = (SELECT ROUND(AVG(rating), 2) FROM driver_ratings "
        "WHERE driver_id = ?), rating_count = (SELECT COUNT(*) FROM driver_ratings "
        "WHERE driver_id = ?) WHERE id = ?",
        ANTAR_DB_ARGS(ANTAR_DB_I(id), ANTAR_DB_I(id), ANTAR_DB_I(id)), NULL, NULL);
out:
    return tx_end(err);
}

antar_err_t store_driver_rate(long long id, long long order_id, int rating, const char *event_id)
{
    /* The driver's row is hot (trips, presence, ratings): InnoDB may pick this transaction as a
     * deadlock victim. It was rolled back whole, so running it again is safe. */
    antar_err_t err = ANTAR_E_DB_BUSY;
    for (int attempt = 0; attempt < 3 && err == ANTAR_E_DB_BUSY; attempt++)
        err = driver_rate_tx(id, order_id, rating, event_id);
    return err;
}

antar_err_t store_trip_completed_by(long long driver_id, long long order_id, bool *yes)
{
    long long n = 0;
    antar_err_t err = count_of("SELECT COUNT(*) AS n FROM trips WHERE order_id = ? AND "
                               "driver_id = ? AND status = 'completed'",
                               ANTAR_DB_ARGS(ANTAR_DB_I(order_id), ANTAR_DB_I(driver_id)), &n);
    *yes = n > 0;
    return err;
}

/* ---- offers ---------------------------------------------------------------------------- */

antar_err_t store_offer_create(const offer_new_t *in, const char *customer_first_name,
                               const char *expires_at, long long *id, antar_outcome_t *why)
{
    json_t *row = NULL;
    long long n = 0;
    unsigned long long new_id = 0;
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    /* The driver row lock serialises offers to one driver, so two dispatches can never both
     * see "no live offer" and both insert one. */
    err = antar_db_query_one("SELECT status FROM drivers WHERE id = ? FOR UPDATE",
                             ANTAR_DB_ARGS(ANTAR_DB_I(in->driver_id)), &row);
    if (err != ANTAR_OK)
        goto out;
    const char *status = json_string_value(json_object_get(row, "status"));
    if (!status || strcmp(status, "online") != 0) {
        err = antar_outcome_fail(why, ANTAR_E_CONFLICT, "driver_id", "the driver is offline");
        goto out;
    }
    err = count_of("SELECT COUNT(*) AS n FROM cancelled_orders WHERE order_id = ?",
                   ANTAR_DB_ARGS(ANTAR_DB_I(in->order_id)), &n);
    if (err != ANTAR_OK)
        goto out;
    if (n > 0) {
        err = antar_outcome_fail(why, ANTAR_E_CONFLICT, "order_id", "the order was cancelled");
        goto out;
    }
    err = store_driver_active_trips(in->driver_id, &n);
    if (err != ANTAR_OK)
        goto out;
    if (n > 0) {
        err = antar_outcome_fail(why, ANTAR_E_CONFLICT, "driver_id", "the driver is on a trip");
        goto out;
    }
    /* An accepted offer without its trip yet is an accept in flight: busy as well (for a
     * while only, so that a failure between assign and trip cannot block the driver forever). */
    err = count_of("SELECT COUNT(*) AS n FROM offers o WHERE o.driver_id = ? AND "
                   "((o.status = 'pending' AND o.expires_at > NOW(3)) OR "
                   "(o.status = 'accepted' AND o.updated_at > NOW(3) - INTERVAL 30 SECOND AND "
                   "NOT EXISTS (SELECT 1 FROM trips t WHERE t.offer_id = o.id)))",
                   ANTAR_DB_ARGS(ANTAR_DB_I(in->driver_id)), &n);
    if (err != ANTAR_OK)
        goto out;
    if (n > 0) {
        err = antar_outcome_fail(why, ANTAR_E_CONFLICT, "driver_id",
                                 "the driver already holds a live offer");
        goto out;
    }
    err = antar_db_exec(
        "INSERT INTO offers (order_id, driver_id, vehicle_type, pickup_lat, pickup_lng, "
        "pickup_address, dropoff_lat, dropoff_lng, dropoff_address, price, currency, "
        "customer_first_name, expires_at, driver_lat, driver_lng, pickup_eta_s) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ANTAR_DB_ARGS(ANTAR_DB_I(in->order_id), ANTAR_DB_I(in->driver_id),
                      ANTAR_DB_S(in->vehicle_type), ANTAR_DB_D(in->pickup_lat),
                      ANTAR_DB_D(in->pickup_lng), ANTAR_DB_S(in->pickup_address),
                      ANTAR_DB_D(in->dropoff_lat), ANTAR_DB_D(in->dropoff_lng),
                      ANTAR_DB_S(in->dropoff_address), ANTAR_DB_I(in->price),
                      ANTAR_DB_S(in->currency ? in->currency : "IDR"),
                      ANTAR_DB_S(customer_first_name), ANTAR_DB_S(expires_at),
                      in->has_driver_pos ? ANTAR_DB_D(in->driver_lat) : ANTAR_DB_NULLARG,
                      in->has_driver_pos ? ANTAR_DB_D(in->driver_lng) : ANTAR_DB_NULLARG,
                      in->has_pickup_eta ? ANTAR_DB_I(in->pickup_eta_s) : ANTAR_DB_NULLARG),
        NULL, &new_id);
out:
    json_decref(row);
    err = tx_end(err);
    if (err == ANTAR_OK)
        *id = (long long)new_id;
    return err;
}

antar_err_t store_offer_get(long long id, json_t **row)
{
    return antar_db_query_one("SELECT * FROM offers WHERE id = ?", ANTAR_DB_ARGS(ANTAR_DB_I(id)),
                              row);
}

antar_err_t store_offer_find(long long order_id, long long driver_id, json_t **row)
{
    return antar_db_query_one("SELECT * FROM offers WHERE order_id = ? AND driver_id = ?",
                              ANTAR_DB_ARGS(ANTAR_DB_I(order_id), ANTAR_DB_I(driver_id)), row);
}

antar_err_t store_offers_pending(long long driver_id, json_t **rows)
{
    return antar_db_query("SELECT * FROM offers WHERE driver_id = ? AND status = 'pending' AND "
                          "expires_at > NOW(3) ORDER BY id DESC LIMIT 50",
                          ANTAR_DB_ARGS(ANTAR_DB_I(driver_id)), rows);
}

antar_err_t store_offer_hint_set(long long driver_id, long long expires_ms)
{
    redisReply *r =
        antar_kv_command("SET drv:offer_hint:%lld 1 PXAT %lld", driver_id, expires_ms + 1000);
    antar_err_t err = r && r->type == REDIS_REPLY_STATUS ? ANTAR_OK : ANTAR_E_KV;
    if (r)
        freeReplyObject(r);
    return err;
}

antar_err_t store_offer_hint_get(long long driver_id, bool *maybe)
{
    redisReply *r = antar_kv_command("EXISTS drv:offer_hint:%lld", driver_id);
    antar_err_t err = r && r->type == REDIS_REPLY_INTEGER ? ANTAR_OK : ANTAR_E_KV;
    if (err == ANTAR_OK)
        *maybe = r->integer > 0;
    if (r)
        freeReplyObject(r);
    return err;
}

antar_err_t store_offer_claim(long long id, long long driver_id, long long order_id, long grace_ms,
                              bool *won)
{
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    err = exec_changed(
        "UPDATE offers SET status = 'accepted', responded_at = NOW(3) WHERE id = ? AND "
        "driver_id = ? AND status = 'pending' AND expires_at > NOW(3)",
        ANTAR_DB_ARGS(ANTAR_DB_I(id), ANTAR_DB_I(driver_id)), won);
    /* The claim and "ask user-service" are one fact: should this process die before the
     * answer, the reconciler finds the row and asks. */
    if (err == ANTAR_OK && *won)
        err = store_confirm_add(order_id, "assign", driver_id, id, grace_ms);
    err = tx_end(err);
    if (err != ANTAR_OK)
        *won = false;
    return err;
}

antar_err_t store_offer_lose(long long id, long long order_id, bool *changed)
{
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    err = exec_changed("UPDATE offers SET status = 'lost' WHERE id = ? AND status = 'accepted'",
                       ANTAR_DB_ARGS(ANTAR_DB_I(id)), changed);
    if (err == ANTAR_OK)
        err = store_confirm_done(order_id, "assign");
    return tx_end(err);
}

/* ---- pending confirmations (reconcile.c) ------------------------------------------------ */

antar_err_t store_confirm_add(long long order_id, const char *kind, long long driver_id,
                              long long offer_id, long delay_ms)
{
    return antar_db_exec(
        "INSERT INTO pending_confirms (order_id, kind, driver_id, offer_id, next_at) VALUES "
        "(?, ?, ?, ?, TIMESTAMPADD(MICROSECOND, ?, NOW(3))) ON DUPLICATE KEY UPDATE "
        "next_at = LEAST(next_at, VALUES(next_at))",
        ANTAR_DB_ARGS(ANTAR_DB_I(order_id), ANTAR_DB_S(kind), ANTAR_DB_I(driver_id),
                      ANTAR_DB_I(offer_id), ANTAR_DB_I((long long)delay_ms * 1000)),
        NULL, NULL);
}

antar_err_t store_confirm_done(long long order_id, const char *kind)
{
    return antar_db_exec("DELETE FROM pending_confirms WHERE order_id = ? AND kind = ?",
                         ANTAR_DB_ARGS(ANTAR_DB_I(order_id), ANTAR_DB_S(kind)), NULL, NULL);
}

antar_err_t store_confirm_later(long long order_id, const char *kind, long delay_ms)
{
    return antar_db_exec("UPDATE pending_confirms SET attempts = attempts + 1, "
                         "next_at = TIMESTAMPADD(MICROSECOND, ?, NOW(3)) "
                         "WHERE order_id = ? AND kind = ?",
                         ANTAR_DB_ARGS(ANTAR_DB_I((long long)delay_ms * 1000), ANTAR_DB_I(order_id),
                                       ANTAR_DB_S(kind)),
                         NULL, NULL);
}

antar_err_t store_confirms_due(int limit, json_t **rows)
{
    return antar_db_query("SELECT order_id, kind, driver_id, offer_id, attempts FROM "
                          "pending_confirms WHERE next_at <= NOW(3) ORDER BY next_at LIMIT ?",
                          ANTAR_DB_ARGS(ANTAR_DB_I(limit)), rows);
}

antar_err_t store_confirm_claim(long long order_id, const char *kind, long lease_ms, bool *won)
{
    return exec_changed("UPDATE pending_confirms SET next_at = TIMESTAMPADD(MICROSECOND, ?, "
                        "NOW(3)) WHERE order_id = ? AND kind = ? AND next_at <= NOW(3)",
                        ANTAR_DB_ARGS(ANTAR_DB_I((long long)lease_ms * 1000), ANTAR_DB_I(order_id),
                                      ANTAR_DB_S(kind)),
                        won);
}

antar_err_t store_trip_claim_check(long long order_id, int idle_s, bool *won)
{
    return exec_changed("UPDATE trips SET checked_at = NOW(3) WHERE order_id = ? AND "
                        "(checked_at IS NULL OR checked_at < NOW(3) - INTERVAL ? SECOND)",
                        ANTAR_DB_ARGS(ANTAR_DB_I(order_id), ANTAR_DB_I(idle_s)), won);
}

antar_err_t store_confirms_count(long long *n)
{
    return count_of("SELECT COUNT(*) AS n FROM pending_confirms", ANTAR_DB_NOARGS, n);
}

antar_err_t store_trips_unchecked(int idle_s, int limit, json_t **rows)
{
    return antar_db_query(
        "SELECT order_id, driver_id, offer_id, status FROM trips WHERE status IN "
        "('accepted', 'picked_up') AND (checked_at IS NULL OR checked_at < NOW(3) - INTERVAL ? "
        "SECOND) AND COALESCE(picked_up_at, accepted_at) < NOW(3) - INTERVAL ? SECOND LIMIT ?",
        ANTAR_DB_ARGS(ANTAR_DB_I(idle_s), ANTAR_DB_I(idle_s), ANTAR_DB_I(limit)), rows);
}

/* Every message driver-service sends core is about one driver: its messages keep their order
 * (accepted before available again), other drivers' never wait for them. */
static antar_err_t outbox_to_core(long long driver_id, const char *method, const char *path,
                                  json_t *body)
{
    char key[32];
    snprintf(key, sizeof key, "driver:%lld", driver_id);
    return antar_outbox_add(ANTAR_SVC_CORE, key, method, path, body);
}

antar_err_t store_trip_repair_cancel(long long order_id, long long driver_id, json_t *outbox_body,
                                     const char *outbox_path, bool *changed)
{
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    err = exec_changed("UPDATE trips SET status = 'cancelled', cancelled_at = NOW(3) WHERE "
                       "order_id = ? AND status IN ('accepted', 'picked_up')",
                       ANTAR_DB_ARGS(ANTAR_DB_I(order_id)), changed);
    if (err == ANTAR_OK && *changed)
        err = outbox_to_core(driver_id, "PUT", outbox_path, outbox_body);
    if (err == ANTAR_OK)
        err = store_confirm_done(order_id, "pickup");
    return tx_end(err);
}

antar_err_t store_offer_move(long long id, const char *from, const char *to, bool *changed)
{
    return exec_changed("UPDATE offers SET status = ? WHERE id = ? AND status = ?",
                        ANTAR_DB_ARGS(ANTAR_DB_S(to), ANTAR_DB_I(id), ANTAR_DB_S(from)), changed);
}

antar_err_t store_trip_create(long long offer_id, json_t *outbox_body, const char *outbox_path)
{
    json_t *row = NULL;
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    /* Locking the offer orders this against a cancellation that withdraws it. */
    err = antar_db_query_one("SELECT status, driver_id FROM offers WHERE id = ? FOR UPDATE",
                             ANTAR_DB_ARGS(ANTAR_DB_I(offer_id)), &row);
    if (err != ANTAR_OK)
        goto out;
    const char *status = json_string_value(json_object_get(row, "status"));
    if (!status || strcmp(status, "accepted") != 0) {
        err = ANTAR_E_CONFLICT;
        goto out;
    }
    err = antar_db_exec("DELETE FROM pending_confirms WHERE kind = 'assign' AND order_id = "
                        "(SELECT order_id FROM offers WHERE id = ?)",
                        ANTAR_DB_ARGS(ANTAR_DB_I(offer_id)), NULL, NULL);
    if (err != ANTAR_OK)
        goto out;
    err = antar_db_exec(
        "INSERT INTO trips (order_id, driver_id, offer_id, pickup_lat, pickup_lng, "
        "pickup_address, dropoff_lat, dropoff_lng, dropoff_address, price, currency, "
        "customer_first_name) SELECT order_id, driver_id, id, pickup_lat, pickup_lng, "
        "pickup_address, dropoff_lat, dropoff_lng, dropoff_address, price, currency, "
        "customer_first_name FROM offers WHERE id = ?",
        ANTAR_DB_ARGS(ANTAR_DB_I(offer_id)), NULL, NULL);
    if (err != ANTAR_OK)
        goto out;
    err = outbox_to_core(json_integer_value(json_object_get(row, "driver_id")), "POST", outbox_path,
                         outbox_body);
out:
    json_decref(row);
    return tx_end(err);
}

antar_err_t store_offer_reject(long long id, long long driver_id, json_t *outbox_body,
                               const char *outbox_path, bool *changed)
{
    bool won = false;
    *changed = false;
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    err = exec_changed("UPDATE offers SET status = 'rejected', responded_at = NOW(3) WHERE id = ? "
                       "AND driver_id = ? "
                       "AND status = 'pending'",
                       ANTAR_DB_ARGS(ANTAR_DB_I(id), ANTAR_DB_I(driver_id)), &won);
    if (err != ANTAR_OK || !won) {
        /* Not pending (any more): nothing to tell core, and nothing was changed. */
        antar_db_rollback();
        return err;
    }
    err = tx_end(outbox_to_core(driver_id, "POST", outbox_path, outbox_body));
    *changed = err == ANTAR_OK;
    return err;
}

antar_err_t store_order_cancel(long long order_id, const char *event_id, long long *withdrawn,
                               long long *trips_cancelled)
{
    unsigned long long a = 0, b = 0;
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    if (event_id && (err = antar_inbox_claim(event_id)) != ANTAR_OK)
        goto out;
    err = antar_db_exec("INSERT IGNORE INTO cancelled_orders (order_id) VALUES (?)",
                        ANTAR_DB_ARGS(ANTAR_DB_I(order_id)), NULL, NULL);
    if (err != ANTAR_OK)
        goto out;
    err = antar_db_exec("UPDATE offers SET status = 'withdrawn' WHERE order_id = ? AND "
                        "status IN ('pending', 'accepted')",
                        ANTAR_DB_ARGS(ANTAR_DB_I(order_id)), &a, NULL);
    if (err != ANTAR_OK)
        goto out;
    err = antar_db_exec("UPDATE trips SET status = 'cancelled', cancelled_at = NOW(3) "
                        "WHERE order_id = ? AND status = 'accepted'",
                        ANTAR_DB_ARGS(ANTAR_DB_I(order_id)), &b, NULL);
out:
    err = tx_end(err);
    if (err == ANTAR_OK) {
        *withdrawn = (long long)a;
        *trips_cancelled = (long long)b;
    }
    return err;
}

antar_err_t store_offers_of_order(long long order_id, const char *status, json_t **rows)
{
    return antar_db_query("SELECT id, order_id, driver_id FROM offers WHERE order_id = ? AND "
                          "status = ?",
                          ANTAR_DB_ARGS(ANTAR_DB_I(order_id), ANTAR_DB_S(status)), rows);
}

antar_err_t store_trips_active(json_t **rows)
{
    /* ix_trips_status_checked leads with status: a range over the few active trips. */
    return antar_db_query("SELECT driver_id, order_id FROM trips WHERE status IN ('accepted', "
                          "'picked_up')",
                          ANTAR_DB_NOARGS, rows);
}

/* ---- trips ----------------------------------------------------------------------------- */

#define TRIP_COLUMNS                                                                               \
    "SELECT t.*, e.amount AS earning FROM trips t "                                                \
    "LEFT JOIN earnings e ON e.order_id = t.order_id "

antar_err_t store_trip_get(long long order_id, json_t **row)
{
    return antar_db_query_one(TRIP_COLUMNS "WHERE t.order_id = ?",
                              ANTAR_DB_ARGS(ANTAR_DB_I(order_id)), row);
}

antar_err_t store_trip_pickup(long long order_id, long long driver_id, bool *changed)
{
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    err = exec_changed(
        "UPDATE trips SET status = 'picked_up', picked_up_at = NOW(3) WHERE order_id = ? AND "
        "driver_id = ? AND status = 'accepted'",
        ANTAR_DB_ARGS(ANTAR_DB_I(order_id), ANTAR_DB_I(driver_id)), changed);
    if (err == ANTAR_OK)
        err = store_confirm_done(order_id, "pickup");
    return tx_end(err);
}

antar_err_t store_trip_complete(long long order_id, long long driver_id, long long earning,
                                json_t *outbox_body, const char *outbox_path, json_t *user_body,
                                const char *user_path)
{
    bool won = false;
    antar_err_t err = antar_db_begin();
    if (err != ANTAR_OK)
        return err;
    err = exec_changed(
        "UPDATE trips SET status = 'completed', completed_at = NOW(3) WHERE order_id = ? AND "
        "driver_id = ? AND status = 'picked_up'",
        ANTAR_DB_ARGS(ANTAR_DB_I(order_id), ANTAR_DB_I(driver_id)), &won);
    if (err != ANTAR_OK)
        goto out;
    if (!won) {
        err = ANTAR_E_CONFLICT;
        goto out;
    }
    err = antar_db_exec(
        "INSERT INTO earnings (driver_id, order_id, amount) VALUES (?, ?, ?)",
        ANTAR_DB_ARGS(ANTAR_DB_I(driver_id), ANTAR_DB_I(order_id), ANTAR_DB_I(earning)), NULL,
        NULL);
    if (err != ANTAR_OK)
        goto out;
    err = outbox_to_core(driver_id, "PUT", outbox_path, outbox_body);
    if (err != ANTAR_OK)
        goto out;
    char key[32];
    snprintf(key, sizeof key, "order:%lld", order_id);
    err = antar_outbox_add(ANTAR_SVC_USER, key, "POST", user_path, user_body);
out:
    return tx_end(err);
}

antar_err_t store_trips_list(long long driver_id, long long cursor, int limit, json_t **rows)
{
    return antar_db_query(TRIP_COLUMNS "WHERE t.driver_id = ? AND (? = 0 OR t.id < ?) "
                                       "ORDER BY t.id DESC LIMIT ?",
                          ANTAR_DB_ARGS(ANTAR_DB_I(driver_id), ANTAR_DB_I(cursor),
                                        ANTAR_DB_I(cursor), ANTAR_DB_I(limit)),
                          rows);
}

/* ---- audit (the ops client) -------------------------------------------------------------
 * Keyset paging on each table's primary key: WHERE id > ? ORDER BY id LIMIT ?. */

antar_err_t store_trips_audit(long long after_id, int limit, json_t **rows)
{
    return antar_db_query("SELECT id, order_id, driver_id, offer_id, status, price, accepted_at, "
                          "picked_up_at, completed_at, cancelled_at FROM trips "
                          "WHERE id > ? ORDER BY id LIMIT ?",
                          ANTAR_DB_ARGS(ANTAR_DB_I(after_id), ANTAR_DB_I(limit)), rows);
}

antar_err_t store_offers_audit(long long after_id, int limit, json_t **rows)
{
    return antar_db_query("SELECT id, order_id, driver_id, status, price, created_at, updated_at, "
                          "expires_at FROM offers WHERE id > ? ORDER BY id LIMIT ?",
                          ANTAR_DB_ARGS(ANTAR_DB_I(after_id), ANTAR_DB_I(limit)), rows);
}

antar_err_t store_drivers_audit(long long after_id, int limit, json_t **rows)
{
    /* One statement per page: each total is a correlated subquery on an index that starts with
     * driver_id (ix_driver_ratings_driver, ix_earnings_driver, ix_trips_driver_status), run
     * only for the page's drivers. SUMs are DECIMAL in MariaDB; the casts keep them integers. */
    return antar_db_query(
        "SELECT d.id, d.status, v.vehicle_type, d.rating_count, "
        "(SELECT COUNT(*) FROM driver_ratings r WHERE r.driver_id = d.id) AS ratings_received, "
        "(SELECT CAST(COALESCE(SUM(e.amount), 0) AS SIGNED) FROM earnings e "
        " WHERE e.driver_id = d.id) AS earnings_total, "
        "(SELECT COUNT(*) FROM earnings e WHERE e.driver_id = d.id) AS earnings_count, "
        "(SELECT COUNT(*) FROM trips t WHERE t.driver_id = d.id AND t.status = 'completed') "
        " AS completed_trips, "
        "(SELECT CAST(COALESCE(SUM(t.price), 0) AS SIGNED) FROM trips t "
        " WHERE t.driver_id = d.id AND t.status = 'completed') AS completed_trips_total, "
        "(SELECT CAST(COALESCE(SUM(e.amount), 0) AS SIGNED) FROM trips t "
        " JOIN earnings e ON e.order_id = t.order_id AND e.driver_id = t.driver_id "
        " WHERE t.driver_id = d.id AND t.status = 'completed') AS completed_trips_earnings, "
        "(SELECT COUNT(*) FROM trips t WHERE t.driver_id = d.id "
        " AND t.status IN ('accepted', 'picked_up')) AS active_trips "
        "FROM drivers d JOIN vehicles v ON v.driver_id = d.id "
        "WHERE d.id > ? ORDER BY d.id LIMIT ?",
        ANTAR_DB_ARGS(ANTAR_DB_I(after_id), ANTAR_DB_I(limit)), rows);
}
