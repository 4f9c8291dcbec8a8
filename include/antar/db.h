/* antar/db.h — MariaDB through Connector/C, prepared statements only.
 *
 * One connection per thread, opened lazily on first use with cfg's credentials, session
 * time_zone '+00:00', utf8mb4, and connect/read/write timeouts; reopened once when the server
 * went away. Statements are prepared per connection and cached by SQL text.
 * Values are bound, never spliced into SQL. Rows come back as jansson objects keyed by column
 * name: integer columns → JSON integers, DECIMAL/FLOAT/DOUBLE → reals, DATETIME/TIMESTAMP →
 * RFC 3339 UTC strings with ms, NULL → null, everything else → strings.
 * Errors: duplicate key → ANTAR_E_DUPLICATE; deadlock or lock-wait timeout → ANTAR_E_CONFLICT;
 * connection trouble → ANTAR_E_DB; anything else → ANTAR_E_INTERNAL (logged with the errno,
 * never with the bound values).
 * Affected-row counts are matched rows (CLIENT_FOUND_ROWS): an UPDATE that matches a row but
 * changes nothing still reports 1, so 0 always means "no such row, or not in that state".
 * A TEXT argument that is exactly an RFC 3339 timestamp is bound as a UTC DATETIME, the same
 * format rows come back in.
 */
#ifndef ANTAR_DB_H
#define ANTAR_DB_H

#include <stddef.h>
#include <jansson.h>

#include "antar/config.h"
#include "antar/error.h"

typedef enum { ANTAR_DB_NULL, ANTAR_DB_INT, ANTAR_DB_DOUBLE, ANTAR_DB_TEXT } antar_db_kind_t;

typedef struct {
    antar_db_kind_t kind;
    long long i;
    double d;
    const char *s; /* TEXT: NUL-terminated, borrowed */
} antar_db_arg_t;

#define ANTAR_DB_I(v) ((antar_db_arg_t){.kind = ANTAR_DB_INT, .i = (v)})
#define ANTAR_DB_D(v) ((antar_db_arg_t){.kind = ANTAR_DB_DOUBLE, .d = (v)})
/* A NULL string binds SQL NULL (db.c checks .s; testing (v) here made gcc's -Waddress fail
 * the build whenever v is a char array). */
#define ANTAR_DB_S(v) ((antar_db_arg_t){.kind = ANTAR_DB_TEXT, .s = (v)})
#define ANTAR_DB_NULLARG ((antar_db_arg_t){.kind = ANTAR_DB_NULL})
/* Expands to "array, count" for the args/nargs parameters. */
#define ANTAR_DB_ARGS(...)                                                                         \
    (antar_db_arg_t[]){__VA_ARGS__},                                                               \
        (sizeof((antar_db_arg_t[]){__VA_ARGS__}) / sizeof(antar_db_arg_t))
#define ANTAR_DB_NOARGS NULL, 0

/* Once, before any thread starts: mysql_library_init and remember cfg (borrowed). 0 or -1. */
int antar_db_init(const antar_config_t *cfg);
/* Close this thread's connection (call at the end of a worker thread). */
void antar_db_thread_end(void);
/* Once, at exit, after all threads ended. */
void antar_db_cleanup(void);

/* Apply the numbered migrations NNN_name.sql of dir in order, each once, recording them in
 * schema_migrations; also creates the toolkit's own tables (outbox, inbox). Statements in a
 * file are separated by ';' at the end of a line. Returns ANTAR_OK or the first failure. */
antar_err_t antar_db_migrate(const char *dir);

/* INSERT/UPDATE/DELETE. affected and last_id may be NULL. */
antar_err_t antar_db_exec(const char *sql, const antar_db_arg_t *args, size_t nargs,
                          unsigned long long *affected, unsigned long long *last_id);
/* SELECT: *rows = new array of row objects (caller decrefs); set only on success. */
antar_err_t antar_db_query(const char *sql, const antar_db_arg_t *args, size_t nargs,
                           json_t **rows);
/* SELECT expecting at most one row: *row = new object; ANTAR_E_NOT_FOUND when none. */
antar_err_t antar_db_query_one(const char *sql, const antar_db_arg_t *args, size_t nargs,
                               json_t **row);

/* Transactions on this thread's connection. rollback is safe to call when none is open. */
antar_err_t antar_db_begin(void);
antar_err_t antar_db_commit(void);
void antar_db_rollback(void);

/* SQL text for a statement with n repeated placeholder groups, for multi-row INSERTs and IN
 * lists: head, then n copies of group joined by ", ", then tail — e.g. ("INSERT INTO t (a, b)
 * VALUES ", "(?, ?)", 3, "") or ("SELECT id FROM t WHERE k IN (", "?", 3, ")"). The pieces are
 * the caller's constant SQL; values are still bound, never spliced. Returns a malloc'd string
 * (caller frees), or NULL when n is 0 or memory ran out. */
char *antar_db_sql_repeat(const char *head, const char *group, size_t n, const char *tail);

/* SELECT 1 on this thread's connection (health). */
antar_err_t antar_db_ping(void);

#endif
