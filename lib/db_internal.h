/* lib/db_internal.h — shared by db.c, db_migrate.c and outbox.c; not part of the public API. */
#ifndef ANTAR_DB_INTERNAL_H
#define ANTAR_DB_INTERNAL_H

#include <stdbool.h>

#include "antar/error.h"

/* A MariaDB client/server errno as the toolkit's error (see db.h for the mapping). */
antar_err_t antar_db_map_errno(unsigned e);
/* Run SQL text that is ours, never input (migration DDL, toolkit tables) without preparing it;
 * retry once after a lost connection when retry is set. */
antar_err_t antar_db_plain(const char *sql, bool retry);
/* Whether this thread's connection has an open transaction. */
bool antar_db_in_tx(void);

#endif
