/* test_db.c — lib/db.c and lib/db_migrate.c against a real MariaDB.
 *
 * Needs ANTAR_TEST_DB_HOST/PORT (or ANTAR_TEST_DB_SOCKET), ANTAR_TEST_DB_USER/PASSWORD/NAME,
 * exported by `make test`; without them every test is skipped with a message.
 */
#include <criterion/criterion.h>

#define EXPECT_STR(a, b)                                                                           \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        cr_assert(a_ &&strcmp(a_, b_) == 0, "%s: got \"%.200s\", want \"%.200s\"", #a,             \
                  a_ ? a_ : "(null)", b_);                                                         \
    } while (0)
#define EXPECT_INT(a, b)                                                                           \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        cr_assert(a_ == b_, "%s: got %lld, want %lld", #a, a_, b_);                                \
    } while (0)
#define EXPECT_DBL(a, b)                                                                           \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        cr_assert(a_ - b_ < 1e-9 && b_ - a_ < 1e-9, "%s: got %g, want %g", #a, a_, b_);            \
    } while (0)

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mysql.h>

#include "antar/config.h"
#include "antar/db.h"
#include "antar/log.h"
#include "test_support.h"

static antar_config_t cfg;
static bool ready;

static void setup(void)
{
    if (!test_db_env())
        return;
    antar_log_init("test");
    antar_config_load(&cfg, "user");
    ready = antar_db_init(&cfg) == 0;
}

static void teardown(void)
{
    if (ready)
        antar_db_cleanup();
}

#define NEED_DB()                                                                                  \
    do {                                                                                           \
        if (!ready)                                                                                \
            cr_skip_test("no test database (ANTAR_TEST_DB_* unset; run via make test)");           \
    } while (0)

TestSuite(db, .init = setup, .fini = teardown);

static void ok(antar_err_t e, const char *what)
{
    cr_assert(e == ANTAR_OK, "%s: %s", what, antar_err_code(e));
}

static void make_types_table(void)
{
    /* DDL through exec (prepared): fine for tests, and it exercises the no-result path. */
    ok(antar_db_exec("DROP TABLE IF EXISTS t_types", ANTAR_DB_NOARGS, NULL, NULL), "drop");
    ok(antar_db_exec("CREATE TABLE t_types (id BIGINT AUTO_INCREMENT PRIMARY KEY, i INT,"
                     " big BIGINT, u INT UNSIGNED, d DOUBLE, dec_v DECIMAL(12,2), s VARCHAR(255),"
                     " t MEDIUMTEXT, dt DATETIME(3), day DATE, n VARCHAR(10) NULL,"
                     " flag TINYINT(1), st ENUM('a','b'), UNIQUE KEY uq_s (s))"
                     " DEFAULT CHARSET=utf8mb4",
                     ANTAR_DB_NOARGS, NULL, NULL),
       "create");
}

Test(db, ping)
{
    NEED_DB();
    ok(antar_db_ping(), "ping");
}

Test(db, round_trip_every_type)
{
    NEED_DB();
    make_types_table();
    const char *hostile = "'; DROP TABLE t_types; --";
    const char *uni = "Sari \xF0\x9F\x9A\x80 \xC3\xB1 \xE6\x97\xA5\xE6\x9C\xAC \" \\ \n end";
    size_t biglen = 200000;
    char *bigtext = malloc(biglen + 1);
    for (size_t i = 0; i < biglen; i++)
        bigtext[i] = (char)('a' + i % 26);
    bigtext[biglen] = '\0';

    unsigned long long aff = 0, id = 0;
    ok(antar_db_exec("INSERT INTO t_types (i, big, u, d, dec_v, s, t, dt, day, n, flag, st)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     ANTAR_DB_ARGS(ANTAR_DB_I(-42), ANTAR_DB_I(9007199254740993LL),
                                   ANTAR_DB_I(4000000000LL), ANTAR_DB_D(-6.2088),
                                   ANTAR_DB_D(12345.67), ANTAR_DB_S(hostile), ANTAR_DB_S(uni),
                                   ANTAR_DB_S("2026-11-21 08:30:00.123"), ANTAR_DB_S("2026-01-02"),
                                   ANTAR_DB_S(NULL), ANTAR_DB_I(1), ANTAR_DB_S("b")),
                     &aff, &id),
       "insert");
    EXPECT_INT(aff, 1);
    cr_assert(id > 0);
    ok(antar_db_exec("INSERT INTO t_types (s, t, n) VALUES (?, ?, ?)",
                     ANTAR_DB_ARGS(ANTAR_DB_S("big"), ANTAR_DB_S(bigtext), ANTAR_DB_NULLARG), NULL,
                     NULL),
       "insert big");

    json_t *rows = NULL;
    ok(antar_db_query("SELECT * FROM t_types ORDER BY id", ANTAR_DB_NOARGS, &rows), "select");
    EXPECT_INT(json_array_size(rows), 2);
    json_t *r = json_array_get(rows, 0);
    EXPECT_INT(json_integer_value(json_object_get(r, "id")), (long long)id);
    EXPECT_INT(json_integer_value(json_object_get(r, "i")), -42);
    EXPECT_INT(json_integer_value(json_object_get(r, "big")), 9007199254740993LL);
    EXPECT_INT(json_integer_value(json_object_get(r, "u")), 4000000000LL);
    cr_assert(json_is_real(json_object_get(r, "d")));
    EXPECT_DBL(json_real_value(json_object_get(r, "d")), -6.2088);
    cr_assert(json_is_real(json_object_get(r, "dec_v")));
    EXPECT_DBL(json_real_value(json_object_get(r, "dec_v")), 12345.67);
    EXPECT_STR((char *)json_string_value(json_object_get(r, "s")), (char *)hostile);
    EXPECT_STR((char *)json_string_value(json_object_get(r, "t")), (char *)uni);
    EXPECT_STR((char *)json_string_value(json_object_get(r, "dt")), "2026-11-21T08:30:00.123Z");
    EXPECT_STR((char *)json_string_value(json_object_get(r, "day")), "2026-01-02");
    cr_assert(json_is_null(json_object_get(r, "n")), "NULL column must be JSON null");
    EXPECT_INT(json_integer_value(json_object_get(r, "flag")), 1);
    EXPECT_STR((char *)json_string_value(json_object_get(r, "st")), "b");
    json_t *r2 = json_array_get(rows, 1);
    EXPECT_INT(json_string_length(json_object_get(r2, "t")), biglen);
    EXPECT_STR((char *)json_string_value(json_object_get(r2, "t")), bigtext);
    cr_assert(json_is_null(json_object_get(r2, "i")));
    cr_assert(json_is_null(json_object_get(r2, "dt")));
    json_decref(rows);

    /* The hostile string was data: the table is still there, and a lookup by it matches. */
    json_t *row = NULL;
    ok(antar_db_query_one("SELECT COUNT(*) AS c FROM t_types WHERE s = ?",
                          ANTAR_DB_ARGS(ANTAR_DB_S(hostile)), &row),
       "lookup hostile");
    EXPECT_INT(json_integer_value(json_object_get(row, "c")), 1);
    json_decref(row);
    free(bigtext);
}

Test(db, utc_session_and_now)
{
    NEED_DB();
    json_t *row = NULL;
    ok(antar_db_query_one("SELECT @@session.time_zone AS tz, NOW(3) AS now_v, @@session.sql_mode"
                          " AS m, @@character_set_client AS cs",
                          ANTAR_DB_NOARGS, &row),
       "session");
    EXPECT_STR((char *)json_string_value(json_object_get(row, "tz")), "+00:00");
    cr_assert(strstr(json_string_value(json_object_get(row, "m")), "STRICT_ALL_TABLES"));
    EXPECT_STR((char *)json_string_value(json_object_get(row, "cs")), "utf8mb4");
    const char *now = json_string_value(json_object_get(row, "now_v"));
    EXPECT_INT(strlen(now), 24);
    cr_assert(now[10] == 'T' && now[23] == 'Z', "%s", now);
    json_decref(row);
}

Test(db, duplicate_key)
{
    NEED_DB();
    make_types_table();
    ok(antar_db_exec("INSERT INTO t_types (s) VALUES (?)", ANTAR_DB_ARGS(ANTAR_DB_S("dup")), NULL,
                     NULL),
       "first");
    antar_err_t e = antar_db_exec("INSERT INTO t_types (s) VALUES (?)",
                                  ANTAR_DB_ARGS(ANTAR_DB_S("dup")), NULL, NULL);
    EXPECT_INT(e, ANTAR_E_DUPLICATE);
    /* The cached statement still works after the error. */
    ok(antar_db_exec("INSERT INTO t_types (s) VALUES (?)", ANTAR_DB_ARGS(ANTAR_DB_S("dup2")), NULL,
                     NULL),
       "after dup");
}

Test(db, query_one_not_found_and_errors)
{
    NEED_DB();
    make_types_table();
    json_t *row = (json_t *)0x1;
    antar_err_t e = antar_db_query_one("SELECT id FROM t_types WHERE id = ?",
                                       ANTAR_DB_ARGS(ANTAR_DB_I(123456)), &row);
    EXPECT_INT(e, ANTAR_E_NOT_FOUND);
    cr_assert(row == (json_t *)0x1, "row must be left unchanged on failure");
    json_t *rows = NULL;
    ok(antar_db_query("SELECT id FROM t_types", ANTAR_DB_NOARGS, &rows), "empty");
    EXPECT_INT(json_array_size(rows), 0);
    json_decref(rows);
    /* Wrong number of arguments and bad SQL: errors, not crashes. */
    e = antar_db_exec("INSERT INTO t_types (s) VALUES (?)", ANTAR_DB_NOARGS, NULL, NULL);
    EXPECT_INT(e, ANTAR_E_INTERNAL);
    e = antar_db_exec("INSERT INTO no_such_table VALUES (?)", ANTAR_DB_ARGS(ANTAR_DB_I(1)), NULL,
                      NULL);
    EXPECT_INT(e, ANTAR_E_INTERNAL);
    /* Strict mode: a too-long value is an error, not a silent truncation. */
    e = antar_db_exec("INSERT INTO t_types (n) VALUES (?)",
                      ANTAR_DB_ARGS(ANTAR_DB_S("much longer than ten")), NULL, NULL);
    EXPECT_INT(e, ANTAR_E_INTERNAL);
    ok(antar_db_ping(), "still usable");
}

Test(db, transaction_rollback_and_commit)
{
    NEED_DB();
    make_types_table();
    antar_db_rollback(); /* safe with none open */
    ok(antar_db_begin(), "begin");
    ok(antar_db_exec("INSERT INTO t_types (s) VALUES (?)", ANTAR_DB_ARGS(ANTAR_DB_S("gone")), NULL,
                     NULL),
       "insert in tx");
    antar_db_rollback();
    json_t *row = NULL;
    EXPECT_INT(antar_db_query_one("SELECT id FROM t_types WHERE s = ?",
                                  ANTAR_DB_ARGS(ANTAR_DB_S("gone")), &row),
               ANTAR_E_NOT_FOUND);

    ok(antar_db_begin(), "begin 2");
    ok(antar_db_exec("INSERT INTO t_types (s) VALUES (?)", ANTAR_DB_ARGS(ANTAR_DB_S("kept")), NULL,
                     NULL),
       "insert 2");
    ok(antar_db_commit(), "commit");
    ok(antar_db_query_one("SELECT id FROM t_types WHERE s = ?", ANTAR_DB_ARGS(ANTAR_DB_S("kept")),
                          &row),
       "kept");
    json_decref(row);
}

Test(db, affected_counts_matched_rows)
{
    NEED_DB();
    make_types_table();
    ok(antar_db_exec("INSERT INTO t_types (s, i) VALUES (?, 1)", ANTAR_DB_ARGS(ANTAR_DB_S("x")),
                     NULL, NULL),
       "insert");
    unsigned long long aff = 99;
    ok(antar_db_exec("UPDATE t_types SET i = 1 WHERE s = ?", ANTAR_DB_ARGS(ANTAR_DB_S("x")), &aff,
                     NULL),
       "update same");
    EXPECT_INT(aff, 1);
    ok(antar_db_exec("UPDATE t_types SET i = 2 WHERE s = ?", ANTAR_DB_ARGS(ANTAR_DB_S("nope")),
                     &aff, NULL),
       "update none");
    EXPECT_INT(aff, 0);
}

static MYSQL *raw_connect(void)
{
    MYSQL *m = mysql_init(NULL);
    const char *sock = cfg.db_socket[0] ? cfg.db_socket : NULL;
    if (!mysql_real_connect(m, sock ? "localhost" : cfg.db_host, cfg.db_user, cfg.db_password,
                            cfg.db_name, sock ? 0 : (unsigned)cfg.db_port, sock, 0)) {
        mysql_close(m);
        return NULL;
    }
    return m;
}

static void kill_conn(long long id)
{
    MYSQL *m = raw_connect();
    cr_assert(m != NULL, "raw connection");
    char q[64];
    snprintf(q, sizeof(q), "KILL %lld", id); /* our own integer, not input */
    EXPECT_INT(mysql_real_query(m, q, strlen(q)), 0);
    mysql_close(m);
    usleep(100000);
}

static long long my_conn_id(void)
{
    json_t *row = NULL;
    ok(antar_db_query_one("SELECT CONNECTION_ID() AS id", ANTAR_DB_NOARGS, &row), "conn id");
    long long id = json_integer_value(json_object_get(row, "id"));
    json_decref(row);
    return id;
}

Test(db, reconnects_after_server_gone)
{
    NEED_DB();
    long long id = my_conn_id();
    kill_conn(id);
    /* Outside a transaction: reconnect and retry once, transparently. */
    long long id2 = my_conn_id();
    cr_assert(id2 != id, "a new connection was opened");

    /* Inside a transaction: no silent replay; the error surfaces, then the next use works. */
    ok(antar_db_begin(), "begin");
    kill_conn(id2);
    antar_err_t e = antar_db_exec("SELECT 1", ANTAR_DB_NOARGS, NULL, NULL);
    EXPECT_INT(e, ANTAR_E_DB);
    antar_db_rollback();
    ok(antar_db_ping(), "after reconnect");
}

static void *thread_conn_id(void *arg)
{
    long long *out = arg;
    json_t *row = NULL;
    if (antar_db_query_one("SELECT CONNECTION_ID() AS id", ANTAR_DB_NOARGS, &row) == ANTAR_OK)
        *out = json_integer_value(json_object_get(row, "id"));
    json_decref(row);
    antar_db_thread_end();
    return NULL;
}

Test(db, one_connection_per_thread)
{
    NEED_DB();
    long long a = 0, b = 0;
    pthread_t t1, t2;
    pthread_create(&t1, NULL, thread_conn_id, &a);
    pthread_create(&t2, NULL, thread_conn_id, &b);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    cr_assert(a > 0 && b > 0 && a != b, "a=%lld b=%lld", a, b);
    cr_assert(my_conn_id() != a);
}

/* Two transactions lock two rows in opposite orders: InnoDB rolls one back as the deadlock
 * victim. That one must read as DB_BUSY (503, "send it again"), never as a 409 conflict, which
 * an outbox counts as a final answer and drops (a rating was lost that way under the soak). */
static pthread_barrier_t dl_barrier;

typedef struct {
    int first, second;
    antar_err_t err;
} dl_arg_t;

static void *deadlock_side(void *p)
{
    dl_arg_t *a = p;
    antar_err_t e = antar_db_begin();
    if (e == ANTAR_OK)
        e = antar_db_exec("UPDATE t_dl SET v = v + 1 WHERE id = ?",
                          ANTAR_DB_ARGS(ANTAR_DB_I(a->first)), NULL, NULL);
    pthread_barrier_wait(&dl_barrier); /* both hold their first row */
    if (e == ANTAR_OK)
        e = antar_db_exec("UPDATE t_dl SET v = v + 1 WHERE id = ?",
                          ANTAR_DB_ARGS(ANTAR_DB_I(a->second)), NULL, NULL);
    if (e == ANTAR_OK)
        e = antar_db_commit();
    else
        antar_db_rollback();
    a->err = e;
    antar_db_thread_end();
    return NULL;
}

Test(db, a_deadlock_victim_is_busy_not_conflict)
{
    NEED_DB();
    ok(antar_db_exec("DROP TABLE IF EXISTS t_dl", ANTAR_DB_NOARGS, NULL, NULL), "drop");
    ok(antar_db_exec("CREATE TABLE t_dl (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB",
                     ANTAR_DB_NOARGS, NULL, NULL),
       "create");
    ok(antar_db_exec("INSERT INTO t_dl VALUES (1, 0), (2, 0)", ANTAR_DB_NOARGS, NULL, NULL),
       "rows");
    pthread_barrier_init(&dl_barrier, NULL, 2);
    dl_arg_t a = {1, 2, ANTAR_OK}, b = {2, 1, ANTAR_OK};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, deadlock_side, &a);
    pthread_create(&t2, NULL, deadlock_side, &b);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_barrier_destroy(&dl_barrier);
    cr_assert((a.err == ANTAR_OK) != (b.err == ANTAR_OK), "exactly one commits: %s / %s",
              antar_err_code(a.err), antar_err_code(b.err));
    antar_err_t victim = a.err == ANTAR_OK ? b.err : a.err;
    cr_assert(victim == ANTAR_E_DB_BUSY, "the victim got %s", antar_err_code(victim));
    cr_assert_eq(antar_err_status(victim), 503);
    json_t *row = NULL;
    ok(antar_db_query_one("SELECT CAST(SUM(v) AS SIGNED) AS n FROM t_dl", ANTAR_DB_NOARGS, &row),
       "sum");
    cr_assert_eq(json_integer_value(json_object_get(row, "n")), 2, "only the winner's two updates");
    json_decref(row);
}

/* ---- migrations -------------------------------------------------------------------------- */

static char migdir[64];

static void write_file(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", migdir, name);
    FILE *f = fopen(p, "w");
    cr_assert(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void make_migrations(void)
{
    snprintf(migdir, sizeof(migdir), "/tmp/antar-test-mig-XXXXXX");
    cr_assert(mkdtemp(migdir) != NULL);
    /* Versions far above any real service's, so a shared test schema is not confused. */
    write_file("900001_first.sql",
               "-- the first migration\n"
               "CREATE TABLE t_mig (id INT PRIMARY KEY, note VARCHAR(64));\n"
               "-- a ';' inside a line does not split\nINSERT INTO t_mig VALUES (1, 'a;b');\n"
               "INSERT INTO t_mig VALUES (2,\n  'two');\n\n");
    write_file("900010_second.sql", "ALTER TABLE t_mig ADD COLUMN extra INT NULL;\n"
                                    "INSERT INTO t_mig (id, note) VALUES (10, 'ten');");
    write_file("900002_between.sql", "INSERT INTO t_mig (id, note) VALUES (3, 'three');\n");
    write_file("README.md", "not a migration");
    write_file("notes.sql", "not a migration either;\n");
    ok(antar_db_exec("DROP TABLE IF EXISTS t_mig", ANTAR_DB_NOARGS, NULL, NULL), "drop");
    antar_err_t e = antar_db_exec("DELETE FROM schema_migrations WHERE version >= 900000",
                                  ANTAR_DB_NOARGS, NULL, NULL);
    (void)e; /* the table may not exist yet */
}

static void remove_migrations(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", migdir);
    EXPECT_INT(system(cmd), 0);
}

static void check_migrated(void)
{
    json_t *rows = NULL;
    ok(antar_db_query("SELECT id, note, extra FROM t_mig ORDER BY id", ANTAR_DB_NOARGS, &rows),
       "t_mig");
    EXPECT_INT(json_array_size(rows), 4);
    EXPECT_STR((char *)json_string_value(json_object_get(json_array_get(rows, 0), "note")), "a;b");
    json_decref(rows);
    ok(antar_db_query("SELECT version, name, applied_at FROM schema_migrations WHERE version >="
                      " 900000 ORDER BY version",
                      ANTAR_DB_NOARGS, &rows),
       "schema_migrations");
    EXPECT_INT(json_array_size(rows), 3);
    EXPECT_STR((char *)json_string_value(json_object_get(json_array_get(rows, 1), "name")),
               "900002_between.sql");
    json_decref(rows);
}

Test(db, migrate_applies_each_file_once)
{
    NEED_DB();
    ok(antar_db_migrate(NULL), "toolkit tables");
    make_migrations();
    ok(antar_db_migrate(migdir), "first run");
    check_migrated();
    ok(antar_db_migrate(migdir), "second run");
    check_migrated();
    /* The toolkit tables exist with their columns. */
    json_t *rows = NULL;
    ok(antar_db_query(
           "SELECT id, event_id, target, method, path, body, traceparent, status,"
           " attempts, next_at, last_error, created_at, delivered_at FROM outbox LIMIT 1",
           ANTAR_DB_NOARGS, &rows),
       "outbox");
    json_decref(rows);
    ok(antar_db_query("SELECT event_id, received_at FROM inbox LIMIT 1", ANTAR_DB_NOARGS, &rows),
       "inbox");
    json_decref(rows);
    remove_migrations();
}

static void *thread_migrate(void *arg)
{
    antar_err_t *out = arg;
    *out = antar_db_migrate(migdir);
    antar_db_thread_end();
    return NULL;
}

Test(db, migrate_concurrent_starts)
{
    NEED_DB();
    ok(antar_db_migrate(NULL), "toolkit tables");
    make_migrations();
    antar_err_t a = ANTAR_E_INTERNAL, b = ANTAR_E_INTERNAL;
    pthread_t t1, t2;
    pthread_create(&t1, NULL, thread_migrate, &a);
    pthread_create(&t2, NULL, thread_migrate, &b);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    ok(a, "thread a");
    ok(b, "thread b");
    check_migrated();
    remove_migrations();
}

Test(db, migrate_failure_is_reported_and_not_recorded)
{
    NEED_DB();
    ok(antar_db_migrate(NULL), "toolkit tables");
    make_migrations();
    write_file("900020_broken.sql", "CREATE TABLE t_mig_broken (id INT PRIMARY KEY;\n");
    antar_err_t e = antar_db_migrate(migdir);
    cr_assert((e) != (ANTAR_OK));
    json_t *row = NULL;
    EXPECT_INT(antar_db_query_one("SELECT version FROM schema_migrations WHERE version = ?",
                                  ANTAR_DB_ARGS(ANTAR_DB_I(900020)), &row),
               ANTAR_E_NOT_FOUND);
    check_migrated(); /* the good ones before it were applied */
    cr_assert((antar_db_migrate("/nonexistent/dir")) != (ANTAR_OK));
    remove_migrations();
}

Test(db, rfc3339_text_binds_as_utc_datetime)
{
    NEED_DB();
    make_types_table();
    ok(antar_db_exec("INSERT INTO t_types (s, dt) VALUES ('z', ?), ('off', ?), ('plain', ?)",
                     ANTAR_DB_ARGS(ANTAR_DB_S("2026-11-21T08:30:00.123Z"),
                                   ANTAR_DB_S("2026-11-21T15:30:00.5+07:00"),
                                   ANTAR_DB_S("2026-11-21 08:30:00")),
                     NULL, NULL),
       "insert");
    json_t *rows = NULL;
    ok(antar_db_query("SELECT s, dt FROM t_types WHERE dt >= ? ORDER BY id",
                      ANTAR_DB_ARGS(ANTAR_DB_S("2026-11-21T08:30:00Z")), &rows),
       "select");
    EXPECT_INT(json_array_size(rows), 3);
    EXPECT_STR(json_string_value(json_object_get(json_array_get(rows, 0), "dt")),
               "2026-11-21T08:30:00.123Z");
    EXPECT_STR(json_string_value(json_object_get(json_array_get(rows, 1), "dt")),
               "2026-11-21T08:30:00.500Z");
    EXPECT_STR(json_string_value(json_object_get(json_array_get(rows, 2), "dt")),
               "2026-11-21T08:30:00.000Z");
    json_decref(rows);
    /* Text that merely looks similar stays text. */
    ok(antar_db_exec("INSERT INTO t_types (s) VALUES (?)",
                     ANTAR_DB_ARGS(ANTAR_DB_S("2026-11-21T08:30:00.123Z trailing")), NULL, NULL),
       "text");
}

Test(db, exec_of_a_select_leaves_the_connection_usable)
{
    NEED_DB();
    ok(antar_db_exec("SELECT 1 UNION SELECT 2", ANTAR_DB_NOARGS, NULL, NULL), "exec select");
    ok(antar_db_ping(), "ping after");
}

/* No database needed: the SQL text of multi-row statements. */
Test(db, sql_repeat_builds_placeholder_groups)
{
    char *s = antar_db_sql_repeat("INSERT INTO t (a, b) VALUES ", "(?, ?)", 3, "");
    EXPECT_STR(s, "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)");
    free(s);
    s = antar_db_sql_repeat("SELECT id FROM t WHERE k IN (", "?", 1, ")");
    EXPECT_STR(s, "SELECT id FROM t WHERE k IN (?)");
    free(s);
    cr_assert_null(antar_db_sql_repeat("x", "?", 0, ""), "n = 0 has no statement");
    cr_assert_null(antar_db_sql_repeat(NULL, "?", 2, ""));
}

/* A multi-row INSERT from it binds every row's values. */
Test(db, sql_repeat_multi_row_insert)
{
    NEED_DB();
    make_types_table();
    char *sql = antar_db_sql_repeat("INSERT INTO t_types (s, i) VALUES ", "(?, ?)", 3, "");
    cr_assert_not_null(sql);
    ok(antar_db_exec(sql,
                     ANTAR_DB_ARGS(ANTAR_DB_S("r1"), ANTAR_DB_I(1), ANTAR_DB_S("r2"), ANTAR_DB_I(2),
                                   ANTAR_DB_S("r3"), ANTAR_DB_I(3)),
                     NULL, NULL),
       "insert");
    free(sql);
    json_t *rows = NULL;
    ok(antar_db_query("SELECT CAST(SUM(i) AS SIGNED) AS n, COUNT(*) AS c FROM t_types",
                      ANTAR_DB_NOARGS, &rows),
       "select");
    EXPECT_INT(json_integer_value(json_object_get(json_array_get(rows, 0), "n")), 6);
    EXPECT_INT(json_integer_value(json_object_get(json_array_get(rows, 0), "c")), 3);
    json_decref(rows);
}
