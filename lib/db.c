/* db.c — MariaDB through Connector/C: one connection per thread, prepared statements only.
 *
 * Each thread owns one MYSQL* (a pthread key's destructor closes it when the thread ends, or
 * antar_db_thread_end does it earlier). Statements are prepared once per connection and kept
 * in a small LRU table keyed by SQL text, so a hot query costs one round trip. When the server
 * went away we reconnect and retry once, but only outside a transaction: inside one, the server
 * has already rolled the work back and replaying the last statement alone would be wrong.
 */
#include "antar/db.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mysql.h>
#include <errmsg.h>

#include "antar/log.h"

#include "db_internal.h"

#define STMT_CACHE_SIZE 32

typedef struct {
    char *sql;
    MYSQL_STMT *stmt;
    unsigned long long used; /* LRU tick */
} stmt_slot_t;

typedef struct {
    MYSQL *my;
    bool in_tx;
    unsigned long long tick;
    stmt_slot_t cache[STMT_CACHE_SIZE];
} db_conn_t;

static const antar_config_t *g_cfg;
static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static bool g_inited;

static void conn_close(db_conn_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < STMT_CACHE_SIZE; i++) {
        if (c->cache[i].stmt)
            mysql_stmt_close(c->cache[i].stmt);
        free(c->cache[i].sql);
        c->cache[i].stmt = NULL;
        c->cache[i].sql = NULL;
    }
    if (c->my)
        mysql_close(c->my);
    c->my = NULL;
    c->in_tx = false;
}

static void conn_destroy(void *p)
{
    db_conn_t *c = p;
    conn_close(c);
    free(c);
    mysql_thread_end();
}

static void key_create(void)
{
    if (pthread_key_create(&g_key, conn_destroy) != 0) {
        fprintf(stderr, "antar_db: pthread_key_create failed\n");
        abort(); /* out of resources at start-up: nothing sensible to do */
    }
}

int antar_db_init(const antar_config_t *cfg)
{
    if (!cfg)
        return -1;
    g_cfg = cfg;
    pthread_once(&g_key_once, key_create);
    if (!g_inited) {
        if (mysql_library_init(0, NULL, NULL) != 0) {
            antar_logf("error", "mysql_library_init failed");
            return -1;
        }
        g_inited = true;
    }
    return 0;
}

void antar_db_thread_end(void)
{
    if (!g_inited)
        return;
    db_conn_t *c = pthread_getspecific(g_key);
    if (c) {
        pthread_setspecific(g_key, NULL);
        conn_destroy(c);
    }
}

void antar_db_cleanup(void)
{
    antar_db_thread_end();
    if (g_inited) {
        mysql_library_end();
        g_inited = false;
    }
}

/* The errors that mean "this connection is dead": worth one reconnect. */
static bool err_is_gone(unsigned e)
{
    return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == 2055 /* lost at reading */
           || e == 1927 /* ER_CONNECTION_KILLED */ || e == 4031 /* idle disconnect */;
}

antar_err_t antar_db_map_errno(unsigned e)
{
    switch (e) {
    case 0:
        return ANTAR_OK;
    case 1062: /* ER_DUP_ENTRY */
    case 1586: /* ER_DUP_ENTRY_WITH_KEY_NAME */
        return ANTAR_E_DUPLICATE;
    /* Transient: the transaction was rolled back (or its statement was) and running it again
     * can succeed. Not a 409: a caller that counts a conflict as a final answer (an outbox
     * delivery) would drop a change that was never refused. */
    case 1213: /* ER_LOCK_DEADLOCK */
    case 1205: /* ER_LOCK_WAIT_TIMEOUT */
        return ANTAR_E_DB_BUSY;
    case 1040: /* too many connections */
    case 1045: /* access denied */
    case 1049: /* unknown database */
    case 1927:
    case 4031:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_UNKNOWN_HOST:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case 2055:
        return ANTAR_E_DB;
    default:
        return ANTAR_E_INTERNAL;
    }
}

/* Logs errno, SQLSTATE and the SQL text only: the server's message can quote bound values
 * ("Duplicate entry 'sari@x.id' …"), and those never go to the log. */
static void log_db_error(const char *what, unsigned e, const char *sqlstate, const char *sql)
{
    antar_err_t err = antar_db_map_errno(e);
    /* Duplicates and conflicts are expected outcomes the caller handles; not worth an error. */
    const char *level =
        (err == ANTAR_E_DUPLICATE || err == ANTAR_E_CONFLICT || err == ANTAR_E_DB_BUSY) ? "debug"
                                                                                        : "error";
    json_t *f = json_object();
    if (!f)
        return;
    json_object_set_new(f, "op", json_string(what));
    json_object_set_new(f, "errno", json_integer(e));
    json_object_set_new(f, "sqlstate", json_string(sqlstate ? sqlstate : ""));
    if (sql) {
        /* The SQL is ours and holds only placeholders; cap it to keep the line short. */
        json_object_set_new(f, "sql", json_stringn(sql, strnlen(sql, 300)));
    }
    antar_log_json(level, "db_error", f);
}

static MYSQL *open_mysql(void)
{
    if (!g_cfg)
        return NULL;
    MYSQL *my = mysql_init(NULL);
    if (!my)
        return NULL;
    unsigned int t = g_cfg->db_timeout_s > 0 ? (unsigned)g_cfg->db_timeout_s : 3;
    mysql_optionsv(my, MYSQL_OPT_CONNECT_TIMEOUT, &t);
    mysql_optionsv(my, MYSQL_OPT_READ_TIMEOUT, &t);
    mysql_optionsv(my, MYSQL_OPT_WRITE_TIMEOUT, &t);
    mysql_optionsv(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    /* We reconnect ourselves, knowing whether a transaction was open; the library must not. */
    my_bool no = 0;
    mysql_optionsv(my, MYSQL_OPT_RECONNECT, &no);

    const char *sock = g_cfg->db_socket[0] ? g_cfg->db_socket : NULL;
    const char *host = sock ? "localhost" : g_cfg->db_host;
    unsigned port = sock ? 0 : (unsigned)g_cfg->db_port;
    /* CLIENT_FOUND_ROWS: "affected" counts matched rows, so an UPDATE that leaves a row as it
     * was still reports 1 and callers can read 0 as "no such row / wrong state". */
    if (!mysql_real_connect(my, host, g_cfg->db_user, g_cfg->db_password, g_cfg->db_name, port,
                            sock, CLIENT_FOUND_ROWS)) {
        json_t *f = json_object();
        json_object_set_new(f, "errno", json_integer(mysql_errno(my)));
        /* Connect errors name host/user/db, never the password: safe to log. */
        json_object_set_new(f, "error", json_string(mysql_error(my)));
        antar_log_json("error", "db_connect_failed", f);
        mysql_close(my);
        return NULL;
    }
    /* Constant session set-up, no input involved: a plain query is fine here. */
    static const char setup[] =
        "SET time_zone='+00:00', sql_mode='STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
        "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', NAMES utf8mb4";
    if (mysql_real_query(my, setup, sizeof(setup) - 1) != 0) {
        log_db_error("session_setup", mysql_errno(my), mysql_sqlstate(my), NULL);
        mysql_close(my);
        return NULL;
    }
    return my;
}

/* This thread's connection state, created on first use (never NULL unless out of memory). */
static db_conn_t *conn_state(void)
{
    if (!g_inited)
        return NULL;
    db_conn_t *c = pthread_getspecific(g_key);
    if (!c) {
        mysql_thread_init();
        c = calloc(1, sizeof(*c));
        if (!c)
            return NULL;
        if (pthread_setspecific(g_key, c) != 0) {
            free(c);
            return NULL;
        }
    }
    return c;
}

/* This thread's open connection, connecting lazily. */
static db_conn_t *conn_get(void)
{
    db_conn_t *c = conn_state();
    if (!c)
        return NULL;
    if (!c->my) {
        c->my = open_mysql();
        c->in_tx = false;
        if (!c->my)
            return NULL;
    }
    return c;
}

bool antar_db_in_tx(void)
{
    db_conn_t *c = conn_state();
    return c && c->my && c->in_tx;
}

/* Cached prepared statement for sql, preparing (and evicting the LRU slot) when needed.
 * On failure returns NULL with *e = the server/client errno. */
static MYSQL_STMT *stmt_get(db_conn_t *c, const char *sql, unsigned *e)
{
    stmt_slot_t *victim = &c->cache[0];
    c->tick++;
    for (size_t i = 0; i < STMT_CACHE_SIZE; i++) {
        stmt_slot_t *s = &c->cache[i];
        /* By content, never by pointer: callers may build SQL in a reused buffer. */
        if (s->sql && strcmp(s->sql, sql) == 0) {
            s->used = c->tick;
            return s->stmt;
        }
        if (!s->sql) {
            if (victim->sql)
                victim = s;
        } else if (victim->sql && s->used < victim->used) {
            victim = s;
        }
    }
    MYSQL_STMT *st = mysql_stmt_init(c->my);
    if (!st) {
        *e = CR_OUT_OF_MEMORY;
        return NULL;
    }
    /* Have store_result compute max_length, so result buffers are sized once per query. */
    my_bool upd = 1;
    mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &upd);
    if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
        *e = mysql_stmt_errno(st);
        log_db_error("prepare", *e, mysql_stmt_sqlstate(st), sql);
        mysql_stmt_close(st);
        return NULL;
    }
    char *copy = strdup(sql);
    if (!copy) {
        mysql_stmt_close(st);
        *e = CR_OUT_OF_MEMORY;
        return NULL;
    }
    if (victim->stmt)
        mysql_stmt_close(victim->stmt);
    free(victim->sql);
    victim->sql = copy;
    victim->stmt = st;
    victim->used = c->tick;
    return st;
}

/* Drop a cached statement after an error that may have left it unusable. */
static void stmt_forget(db_conn_t *c, MYSQL_STMT *st)
{
    for (size_t i = 0; i < STMT_CACHE_SIZE; i++) {
        if (c->cache[i].stmt == st) {
            mysql_stmt_close(st);
            free(c->cache[i].sql);
            c->cache[i].stmt = NULL;
            c->cache[i].sql = NULL;
            return;
        }
    }
}

static bool is_int_type(enum enum_field_types t)
{
    return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT || t == MYSQL_TYPE_LONG ||
           t == MYSQL_TYPE_INT24 || t == MYSQL_TYPE_LONGLONG || t == MYSQL_TYPE_YEAR;
}

static bool is_time_type(enum enum_field_types t)
{
    return t == MYSQL_TYPE_DATETIME || t == MYSQL_TYPE_TIMESTAMP || t == MYSQL_TYPE_DATE ||
           t == MYSQL_TYPE_TIME;
}

typedef struct {
    long long i;
    double d;
    MYSQL_TIME tm;
    char *buf;
    unsigned long cap;
    unsigned long len;
    my_bool is_null;
    my_bool error;
} col_buf_t;

static json_t *time_to_json(enum enum_field_types t, const MYSQL_TIME *tm)
{
    char out[40];
    if (t == MYSQL_TYPE_DATE) {
        snprintf(out, sizeof(out), "%04u-%02u-%02u", tm->year, tm->month, tm->day);
    } else if (t == MYSQL_TYPE_TIME) {
        snprintf(out, sizeof(out), "%s%02u:%02u:%02u", tm->neg ? "-" : "", tm->hour, tm->minute,
                 tm->second);
    } else {
        /* The session runs in UTC ('+00:00'), so the stored wall time is UTC. */
        snprintf(out, sizeof(out), "%04u-%02u-%02uT%02u:%02u:%02u.%03luZ", tm->year, tm->month,
                 tm->day, tm->hour, tm->minute, tm->second,
                 (unsigned long)(tm->second_part / 1000));
    }
    return json_string(out);
}

/* Fetch all rows of an executed statement into a new array. Returns 0 or the errno. */
static unsigned fetch_rows(MYSQL_STMT *st, json_t **rows_out)
{
    unsigned e = 0;
    MYSQL_RES *meta = NULL;
    MYSQL_BIND *binds = NULL;
    col_buf_t *cols = NULL;
    json_t *rows = NULL;

    if (mysql_stmt_store_result(st) != 0) {
        e = mysql_stmt_errno(st);
        goto fail;
    }
    /* Metadata after store_result so max_length reflects the longest value. */
    meta = mysql_stmt_result_metadata(st);
    if (!meta) {
        e = mysql_stmt_errno(st) ? mysql_stmt_errno(st) : CR_UNKNOWN_ERROR;
        goto fail;
    }
    unsigned n = mysql_num_fields(meta);
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    binds = calloc(n ? n : 1, sizeof(*binds));
    cols = calloc(n ? n : 1, sizeof(*cols));
    rows = json_array();
    if (!binds || !cols || !rows) {
        e = CR_OUT_OF_MEMORY;
        goto fail;
    }
    for (unsigned i = 0; i < n; i++) {
        enum enum_field_types t = fields[i].type;
        MYSQL_BIND *b = &binds[i];
        b->is_null = &cols[i].is_null;
        b->error = &cols[i].error;
        b->length = &cols[i].len;
        if (is_int_type(t)) {
            b->buffer_type = MYSQL_TYPE_LONGLONG;
            b->buffer = &cols[i].i;
            b->is_unsigned = (fields[i].flags & UNSIGNED_FLAG) ? 1 : 0;
        } else if (t == MYSQL_TYPE_FLOAT || t == MYSQL_TYPE_DOUBLE) {
            b->buffer_type = MYSQL_TYPE_DOUBLE;
            b->buffer = &cols[i].d;
        } else if (is_time_type(t)) {
            b->buffer_type = t;
            b->buffer = &cols[i].tm;
            b->buffer_length = sizeof(MYSQL_TIME);
        } else {
            /* DECIMAL comes back as text and is converted below, exactly. */
            cols[i].cap = fields[i].max_length + 1;
            if (cols[i].cap < 64)
                cols[i].cap = 64;
            cols[i].buf = malloc(cols[i].cap);
            if (!cols[i].buf) {
                e = CR_OUT_OF_MEMORY;
                goto fail;
            }
            b->buffer_type = MYSQL_TYPE_STRING;
            b->buffer = cols[i].buf;
            b->buffer_length = cols[i].cap;
        }
    }
    if (n && mysql_stmt_bind_result(st, binds) != 0) {
        e = mysql_stmt_errno(st);
        goto fail;
    }
    for (;;) {
        int rc = mysql_stmt_fetch(st);
        if (rc == MYSQL_NO_DATA)
            break;
        if (rc == 1) {
            e = mysql_stmt_errno(st) ? mysql_stmt_errno(st) : CR_UNKNOWN_ERROR;
            goto fail;
        }
        json_t *row = json_object();
        if (!row) {
            e = CR_OUT_OF_MEMORY;
            goto fail;
        }
        json_array_append_new(rows, row);
        for (unsigned i = 0; i < n; i++) {
            enum enum_field_types t = fields[i].type;
            col_buf_t *cb = &cols[i];
            json_t *v = NULL;
            if (cb->is_null) {
                v = json_null();
            } else if (is_int_type(t)) {
                if (binds[i].is_unsigned &&
                    (unsigned long long)cb->i > (unsigned long long)LLONG_MAX)
                    v = json_real((double)(unsigned long long)cb->i);
                else
                    v = json_integer(cb->i);
            } else if (t == MYSQL_TYPE_FLOAT || t == MYSQL_TYPE_DOUBLE) {
                v = json_real(cb->d);
            } else if (is_time_type(t)) {
                v = time_to_json(t, &cb->tm);
            } else {
                if (cb->len >= cb->cap) {
                    /* Longer than max_length promised (or it was not computed): grow, and
                     * fetch this column again. */
                    char *nb = realloc(cb->buf, cb->len + 1);
                    if (!nb) {
                        e = CR_OUT_OF_MEMORY;
                        goto fail;
                    }
                    cb->buf = nb;
                    cb->cap = cb->len + 1;
                    binds[i].buffer = cb->buf;
                    binds[i].buffer_length = cb->cap;
                    if (mysql_stmt_fetch_column(st, &binds[i], i, 0) != 0) {
                        e = mysql_stmt_errno(st) ? mysql_stmt_errno(st) : CR_UNKNOWN_ERROR;
                        goto fail;
                    }
                    /* Rebind so the next row uses the larger buffer. */
                    if (mysql_stmt_bind_result(st, binds) != 0) {
                        e = mysql_stmt_errno(st);
                        goto fail;
                    }
                }
                if (t == MYSQL_TYPE_DECIMAL || t == MYSQL_TYPE_NEWDECIMAL) {
                    char tmp[80];
                    size_t l = cb->len < sizeof(tmp) - 1 ? cb->len : sizeof(tmp) - 1;
                    memcpy(tmp, cb->buf, l);
                    tmp[l] = '\0';
                    v = json_real(strtod(tmp, NULL));
                } else {
                    v = json_stringn(cb->buf, cb->len);
                    if (!v) {
                        /* Not valid UTF-8 (a binary column): null rather than a broken
                         * document. Our schemas keep text in utf8mb4 columns. */
                        antar_log_json("warn", "db_non_utf8_column",
                                       json_pack("{s:s}", "column", fields[i].name));
                        v = json_null();
                    }
                }
            }
            if (!v) {
                e = CR_OUT_OF_MEMORY;
                goto fail;
            }
            json_object_set_new(row, fields[i].name, v);
        }
    }
    *rows_out = rows;
    rows = NULL;
fail:
    if (cols) {
        for (unsigned i = 0; meta && i < mysql_num_fields(meta); i++)
            free(cols[i].buf);
    }
    free(cols);
    free(binds);
    if (meta)
        mysql_free_result(meta);
    json_decref(rows);
    mysql_stmt_free_result(st);
    return e;
}

static bool digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int num(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* A text argument that is exactly an RFC 3339 timestamp ("2026-11-21T08:30:00.123Z", or with
 * an offset) is bound as a DATETIME in UTC: that is the form db.c returns times in and the one
 * the API speaks, while MariaDB's strict mode rejects the 'Z' as text. */
static bool rfc3339_to_time(const char *s, MYSQL_TIME *tm)
{
    size_t len = strlen(s);
    if (len < 20 || len > 32 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
        !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) || s[13] != ':' ||
        !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
        return false;
    const char *p = s + 19;
    unsigned long usec = 0;
    if (*p == '.') {
        int nd = 0;
        p++;
        while (p[nd] >= '0' && p[nd] <= '9')
            nd++;
        if (nd < 1 || nd > 9)
            return false;
        for (int i = 0; i < 6; i++)
            usec = usec * 10 + (unsigned long)(i < nd ? p[i] - '0' : 0);
        p += nd;
    }
    int off_min = 0;
    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
        off_min = 0;
    } else if ((p[0] == '+' || p[0] == '-') && digits(p + 1, 2) && p[3] == ':' &&
               digits(p + 4, 2) && p[6] == '\0') {
        off_min = (num(p + 1, 2) * 60 + num(p + 4, 2)) * (p[0] == '-' ? -1 : 1);
    } else {
        return false;
    }
    struct tm t = {.tm_year = num(s, 4) - 1900,
                   .tm_mon = num(s + 5, 2) - 1,
                   .tm_mday = num(s + 8, 2),
                   .tm_hour = num(s + 11, 2),
                   .tm_min = num(s + 14, 2),
                   .tm_sec = num(s + 17, 2)};
    if (t.tm_mon > 11 || t.tm_mday < 1 || t.tm_mday > 31 || t.tm_hour > 23 || t.tm_min > 59 ||
        t.tm_sec > 60)
        return false;
    time_t secs = timegm(&t) - (time_t)off_min * 60;
    struct tm u;
    if (!gmtime_r(&secs, &u))
        return false;
    memset(tm, 0, sizeof(*tm));
    tm->year = (unsigned)u.tm_year + 1900;
    tm->month = (unsigned)u.tm_mon + 1;
    tm->day = (unsigned)u.tm_mday;
    tm->hour = (unsigned)u.tm_hour;
    tm->minute = (unsigned)u.tm_min;
    tm->second = (unsigned)u.tm_sec;
    tm->second_part = usec;
    tm->time_type = MYSQL_TIMESTAMP_DATETIME;
    return true;
}

/* One attempt: prepare (cached), bind, execute, fetch. Returns 0 or the errno; *st_out is the
 * statement used (for its SQLSTATE). */
static unsigned run_once(db_conn_t *c, const char *sql, const antar_db_arg_t *args, size_t nargs,
                         json_t **rows, unsigned long long *affected, unsigned long long *last_id)
{
    unsigned e = 0;
    MYSQL_BIND *pb = NULL;
    unsigned long *lens = NULL;
    MYSQL_TIME *times = NULL;
    MYSQL_STMT *st = stmt_get(c, sql, &e);
    if (!st)
        return e;
    if (mysql_stmt_param_count(st) != nargs) {
        antar_log_json("error", "db_error",
                       json_pack("{s:s,s:I,s:I,s:s%}", "op", "bind", "expected",
                                 (json_int_t)mysql_stmt_param_count(st), "given", (json_int_t)nargs,
                                 "sql", sql, strnlen(sql, 300)));
        return CR_UNKNOWN_ERROR;
    }
    if (nargs) {
        pb = calloc(nargs, sizeof(*pb));
        lens = calloc(nargs, sizeof(*lens));
        times = calloc(nargs, sizeof(*times));
        if (!pb || !lens || !times) {
            e = CR_OUT_OF_MEMORY;
            goto out;
        }
        for (size_t i = 0; i < nargs; i++) {
            switch (args[i].kind) {
            case ANTAR_DB_INT:
                pb[i].buffer_type = MYSQL_TYPE_LONGLONG;
                pb[i].buffer = (void *)&args[i].i;
                break;
            case ANTAR_DB_DOUBLE:
                pb[i].buffer_type = MYSQL_TYPE_DOUBLE;
                pb[i].buffer = (void *)&args[i].d;
                break;
            case ANTAR_DB_TEXT:
                if (args[i].s && rfc3339_to_time(args[i].s, &times[i])) {
                    pb[i].buffer_type = MYSQL_TYPE_DATETIME;
                    pb[i].buffer = &times[i];
                    pb[i].buffer_length = sizeof(MYSQL_TIME);
                } else if (args[i].s) {
                    lens[i] = strlen(args[i].s);
                    pb[i].buffer_type = MYSQL_TYPE_STRING;
                    pb[i].buffer = (void *)args[i].s;
                    pb[i].buffer_length = lens[i];
                    pb[i].length = &lens[i];
                } else {
                    pb[i].buffer_type = MYSQL_TYPE_NULL; /* a NULL string binds SQL NULL */
                }
                break;
            case ANTAR_DB_NULL:
            default:
                pb[i].buffer_type = MYSQL_TYPE_NULL;
                break;
            }
        }
        if (mysql_stmt_bind_param(st, pb) != 0) {
            e = mysql_stmt_errno(st);
            goto out;
        }
    }
    if (mysql_stmt_execute(st) != 0) {
        e = mysql_stmt_errno(st);
        goto out;
    }
    if (affected)
        *affected = (unsigned long long)mysql_stmt_affected_rows(st);
    if (last_id)
        *last_id = (unsigned long long)mysql_stmt_insert_id(st);
    if (rows) {
        e = fetch_rows(st, rows);
    } else if (mysql_stmt_field_count(st) > 0) {
        /* exec() on a statement that returns rows: drain them so the connection stays usable. */
        mysql_stmt_store_result(st);
        mysql_stmt_free_result(st);
    }
out:
    if (e) {
        log_db_error("execute", e, mysql_stmt_sqlstate(st), sql);
        if (err_is_gone(e) || antar_db_map_errno(e) == ANTAR_E_INTERNAL)
            stmt_forget(c, st);
        else
            mysql_stmt_reset(st);
    }
    free(pb);
    free(lens);
    free(times);
    return e;
}

/* Marks the connection dead after a "gone" error, so the next use reconnects. */
static void conn_drop(db_conn_t *c)
{
    conn_close(c);
}

static antar_err_t run(const char *sql, const antar_db_arg_t *args, size_t nargs, json_t **rows,
                       unsigned long long *affected, unsigned long long *last_id)
{
    if (!sql || (nargs && !args))
        return ANTAR_E_INTERNAL;
    for (int attempt = 0; attempt < 2; attempt++) {
        db_conn_t *c = conn_get();
        if (!c)
            return ANTAR_E_DB;
        bool was_tx = c->in_tx;
        unsigned e = run_once(c, sql, args, nargs, rows, affected, last_id);
        if (e == 0)
            return ANTAR_OK;
        if (err_is_gone(e)) {
            conn_drop(c);
            if (!was_tx && attempt == 0)
                continue;
            return ANTAR_E_DB;
        }
        return antar_db_map_errno(e);
    }
    return ANTAR_E_DB;
}

char *antar_db_sql_repeat(const char *head, const char *group, size_t n, const char *tail)
{
    if (!head || !group || !tail || n == 0)
        return NULL;
    size_t lh = strlen(head), lg = strlen(group), lt = strlen(tail);
    if (n > (SIZE_MAX - lh - lt - 1) / (lg + 2))
        return NULL;
    char *sql = malloc(lh + n * (lg + 2) + lt + 1);
    if (!sql)
        return NULL;
    char *p = sql;
    memcpy(p, head, lh);
    p += lh;
    for (size_t i = 0; i < n; i++) {
        if (i) {
            memcpy(p, ", ", 2);
            p += 2;
        }
        memcpy(p, group, lg);
        p += lg;
    }
    memcpy(p, tail, lt + 1);
    return sql;
}

antar_err_t antar_db_exec(const char *sql, const antar_db_arg_t *args, size_t nargs,
                          unsigned long long *affected, unsigned long long *last_id)
{
    return run(sql, args, nargs, NULL, affected, last_id);
}

antar_err_t antar_db_query(const char *sql, const antar_db_arg_t *args, size_t nargs, json_t **rows)
{
    json_t *r = NULL;
    antar_err_t err = run(sql, args, nargs, &r, NULL, NULL);
    if (err == ANTAR_OK && rows)
        *rows = r;
    else
        json_decref(r);
    return err;
}

antar_err_t antar_db_query_one(const char *sql, const antar_db_arg_t *args, size_t nargs,
                               json_t **row)
{
    json_t *rows = NULL;
    antar_err_t err = antar_db_query(sql, args, nargs, &rows);
    if (err != ANTAR_OK)
        return err;
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return ANTAR_E_NOT_FOUND;
    }
    if (row)
        *row = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return ANTAR_OK;
}

/* A constant statement (transaction control, session set-up) on this thread's connection.
 * retry: reconnect once when the server went away. */
antar_err_t antar_db_plain(const char *sql, bool retry)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        db_conn_t *c = conn_get();
        if (!c)
            return ANTAR_E_DB;
        if (mysql_real_query(c->my, sql, strlen(sql)) == 0) {
            /* Discard any result (SELECT GET_LOCK returns one row). */
            MYSQL_RES *r = mysql_store_result(c->my);
            if (r)
                mysql_free_result(r);
            return ANTAR_OK;
        }
        unsigned e = mysql_errno(c->my);
        log_db_error("query", e, mysql_sqlstate(c->my), sql);
        if (err_is_gone(e)) {
            bool was_tx = c->in_tx;
            conn_drop(c);
            if (retry && !was_tx && attempt == 0)
                continue;
            return ANTAR_E_DB;
        }
        return antar_db_map_errno(e);
    }
    return ANTAR_E_DB;
}

antar_err_t antar_db_begin(void)
{
    db_conn_t *c = conn_get();
    if (!c)
        return ANTAR_E_DB;
    if (c->in_tx) {
        /* A forgotten transaction would otherwise be committed implicitly by the server. */
        antar_logf("error", "antar_db_begin: a transaction is already open; rolling it back");
        antar_db_rollback();
    }
    antar_err_t err = antar_db_plain("START TRANSACTION", true);
    if (err == ANTAR_OK) {
        c = conn_state();
        c->in_tx = true;
    }
    return err;
}

antar_err_t antar_db_commit(void)
{
    db_conn_t *c = conn_state();
    if (!c || !c->my || !c->in_tx) {
        /* The connection was lost mid-transaction: the server rolled it back. */
        return c && c->my ? ANTAR_E_INTERNAL : ANTAR_E_DB;
    }
    antar_err_t err = antar_db_plain("COMMIT", false);
    c = conn_state();
    c->in_tx = false;
    return err;
}

void antar_db_rollback(void)
{
    db_conn_t *c = conn_state();
    if (!c || !c->my)
        return;
    if (c->in_tx) {
        c->in_tx = false;
        (void)antar_db_plain("ROLLBACK", false);
    }
}

antar_err_t antar_db_ping(void)
{
    json_t *row = NULL;
    antar_err_t err = antar_db_query_one("SELECT 1 AS ok", ANTAR_DB_NOARGS, &row);
    json_decref(row);
    return err;
}
