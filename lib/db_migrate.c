/* db_migrate.c — numbered SQL migrations plus the toolkit's own tables.
 *
 * DDL goes through mysql_real_query (antar_db_plain), not prepared statements: the SQL comes
 * from our own files in the repository and the constants below, never from a request, and
 * several DDL forms cannot be prepared. Two processes starting at once serialise on a named
 * server lock (GET_LOCK), so each migration runs exactly once.
 */
#include "antar/db.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antar/log.h"

#include "db_internal.h"

#define MIGRATION_MAX_BYTES (1024 * 1024)
#define MIGRATION_MAX_FILES 512
#define LOCK_WAIT_S 60

static const char *const toolkit_ddl[] = {
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INT NOT NULL PRIMARY KEY,"
    " name VARCHAR(255) NOT NULL,"
    " applied_at DATETIME(3) NOT NULL"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",

    "CREATE TABLE IF NOT EXISTS outbox ("
    " id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " event_id CHAR(32) NOT NULL,"
    " target VARCHAR(16) NOT NULL,"
    " okey VARCHAR(64) NOT NULL DEFAULT '',"
    " method VARCHAR(8) NOT NULL,"
    " path VARCHAR(255) NOT NULL,"
    " body MEDIUMTEXT NULL,"
    " traceparent VARCHAR(64) NULL,"
    " status ENUM('pending','delivered','dead') NOT NULL DEFAULT 'pending',"
    " attempts INT NOT NULL DEFAULT 0,"
    " next_at DATETIME(3) NOT NULL,"
    " last_error VARCHAR(255) NULL,"
    " created_at DATETIME(3) NOT NULL,"
    " delivered_at DATETIME(3) NULL,"
    " UNIQUE KEY uq_outbox_event (event_id),"
    " KEY ix_outbox_due (status, next_at),"
    " KEY ix_outbox_key (status, target, okey, id)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
    /* Databases made before messages had an ordering key: rows without one keep the old order
     * per target (they all share the key ''). Each statement is idempotent. */
    "ALTER TABLE outbox ADD COLUMN IF NOT EXISTS okey VARCHAR(64) NOT NULL DEFAULT '' AFTER target",
    "ALTER TABLE outbox ADD INDEX IF NOT EXISTS ix_outbox_key (status, target, okey, id)",
    "ALTER TABLE outbox DROP INDEX IF EXISTS ix_outbox_target",

    "CREATE TABLE IF NOT EXISTS inbox ("
    " event_id VARCHAR(64) NOT NULL PRIMARY KEY,"
    " received_at DATETIME(3) NOT NULL"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
};

typedef struct {
    long version;
    char name[256];
} migration_t;

static int cmp_migration(const void *a, const void *b)
{
    const migration_t *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* "NNN_name.sql" → version; -1 when the file name is not a migration. */
static long parse_version(const char *fname)
{
    size_t len = strlen(fname);
    if (len < 6 || len >= 256 || strcmp(fname + len - 4, ".sql") != 0)
        return -1;
    if (!isdigit((unsigned char)fname[0]))
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(fname, &end, 10);
    if (errno || *end != '_' || v < 0 || v > 2147483647L)
        return -1;
    return v;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(MIGRATION_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MIGRATION_MAX_BYTES + 1, f) : 0;
    fclose(f);
    if (!buf || n > MIGRATION_MAX_BYTES) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* True when the chunk holds something besides whitespace and "--" comment lines. */
static bool has_sql(const char *s)
{
    while (*s) {
        while (*s && isspace((unsigned char)*s))
            s++;
        if (s[0] == '-' && s[1] == '-') {
            while (*s && *s != '\n')
                s++;
            continue;
        }
        if (*s)
            return true;
    }
    return false;
}

/* Run every statement of one file: statements end with ';' at the end of a line. */
static antar_err_t apply_file(const char *path, const char *fname)
{
    char *text = read_file(path);
    if (!text) {
        antar_log_json("error", "migration_failed",
                       json_pack("{s:s,s:s}", "file", fname, "reason", "cannot read (or > 1 MiB)"));
        return ANTAR_E_INTERNAL;
    }
    antar_err_t err = ANTAR_OK;
    char *stmt = text;
    char *p = text;
    int n = 0;
    while (*p) {
        char *eol = strchr(p, '\n');
        char *line_end = eol ? eol : p + strlen(p);
        /* Last non-blank character of this line. */
        char *q = line_end;
        while (q > p && isspace((unsigned char)q[-1]))
            q--;
        bool ends = q > p && q[-1] == ';';
        if (ends || !eol) {
            if (ends)
                q[-1] = '\0';
            else
                *line_end = '\0';
            if (has_sql(stmt)) {
                n++;
                err = antar_db_plain(stmt, false);
                if (err != ANTAR_OK) {
                    antar_log_json("error", "migration_failed",
                                   json_pack("{s:s,s:i}", "file", fname, "statement", n));
                    goto out;
                }
            }
            if (!eol)
                break;
            stmt = eol + 1;
        }
        p = eol + 1;
    }
out:
    free(text);
    return err;
}

static antar_err_t lock_take(void)
{
    json_t *row = NULL;
    /* The lock is per database, so the three services (three schemas) do not wait on each
     * other while two instances of one service do. */
    antar_err_t err =
        antar_db_query_one("SELECT GET_LOCK(CONCAT('antar_migrate:', DATABASE()), ?) AS got",
                           ANTAR_DB_ARGS(ANTAR_DB_I(LOCK_WAIT_S)), &row);
    if (err != ANTAR_OK)
        return err;
    json_t *got = json_object_get(row, "got");
    bool ok = json_is_integer(got) && json_integer_value(got) == 1;
    json_decref(row);
    if (!ok) {
        antar_logf("error", "migrations: could not take the migration lock in %d s", LOCK_WAIT_S);
        return ANTAR_E_CONFLICT;
    }
    return ANTAR_OK;
}

static void lock_release(void)
{
    json_t *row = NULL;
    (void)antar_db_query_one("SELECT RELEASE_LOCK(CONCAT('antar_migrate:', DATABASE())) AS r",
                             ANTAR_DB_NOARGS, &row);
    json_decref(row);
}

static antar_err_t apply_dir(const char *dir)
{
    antar_err_t err = ANTAR_OK;
    migration_t *list = NULL;
    size_t count = 0;
    DIR *d = opendir(dir);
    if (!d) {
        antar_log_json("error", "migration_failed",
                       json_pack("{s:s,s:s}", "dir", dir, "reason", strerror(errno)));
        return ANTAR_E_INTERNAL;
    }
    list = calloc(MIGRATION_MAX_FILES, sizeof(*list));
    if (!list) {
        err = ANTAR_E_NOMEM;
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long v = parse_version(de->d_name);
        if (v < 0)
            continue;
        if (count == MIGRATION_MAX_FILES) {
            antar_logf("error", "migrations: more than %d files in %s", MIGRATION_MAX_FILES, dir);
            err = ANTAR_E_INTERNAL;
            goto out;
        }
        list[count].version = v;
        snprintf(list[count].name, sizeof(list[count].name), "%s", de->d_name);
        count++;
    }
    qsort(list, count, sizeof(*list), cmp_migration);
    for (size_t i = 0; i < count; i++) {
        if (i > 0 && list[i].version == list[i - 1].version) {
            antar_log_json("error", "migration_failed",
                           json_pack("{s:s,s:s,s:s}", "file", list[i].name, "other",
                                     list[i - 1].name, "reason", "duplicate version number"));
            err = ANTAR_E_INTERNAL;
            goto out;
        }
    }
    for (size_t i = 0; i < count; i++) {
        json_t *row = NULL;
        err = antar_db_query_one("SELECT version FROM schema_migrations WHERE version = ?",
                                 ANTAR_DB_ARGS(ANTAR_DB_I(list[i].version)), &row);
        json_decref(row);
        if (err == ANTAR_OK)
            continue; /* applied before */
        if (err != ANTAR_E_NOT_FOUND)
            goto out;
        char path[1024];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, list[i].name) >= sizeof(path)) {
            err = ANTAR_E_INTERNAL;
            goto out;
        }
        /* DDL commits implicitly, so a file is not atomic: it is recorded only after its last
         * statement succeeded, and a failed file stops the start-up for a human to look at. */
        err = apply_file(path, list[i].name);
        if (err != ANTAR_OK)
            goto out;
        err = antar_db_exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, "
                            "?, UTC_TIMESTAMP(3))",
                            ANTAR_DB_ARGS(ANTAR_DB_I(list[i].version), ANTAR_DB_S(list[i].name)),
                            NULL, NULL);
        if (err != ANTAR_OK)
            goto out;
        antar_log_json(
            "info", "migration_applied",
            json_pack("{s:i,s:s}", "version", (int)list[i].version, "file", list[i].name));
    }
out:
    free(list);
    closedir(d);
    return err;
}

antar_err_t antar_db_migrate(const char *dir)
{
    antar_err_t err = lock_take();
    if (err != ANTAR_OK)
        return err;
    for (size_t i = 0; i < sizeof(toolkit_ddl) / sizeof(toolkit_ddl[0]); i++) {
        err = antar_db_plain(toolkit_ddl[i], true);
        if (err != ANTAR_OK)
            goto out;
    }
    if (dir && dir[0])
        err = apply_dir(dir);
out:
    lock_release();
    return err;
}
