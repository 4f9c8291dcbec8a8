/* error.c — the only place where an antar_err_t gets its HTTP status, wire code and message.
 * Everything comes from ANTAR_ERROR_MAP so the three tables cannot drift apart. */
#include "antar/error.h"

static const int err_status[] = {
#define X(name, status, code, msg) status,
    ANTAR_ERROR_MAP(X)
#undef X
};

static const char *const err_code[] = {
#define X(name, status, code, msg) code,
    ANTAR_ERROR_MAP(X)
#undef X
};

static const char *const err_msg[] = {
#define X(name, status, code, msg) msg,
    ANTAR_ERROR_MAP(X)
#undef X
};

/* An out-of-range value is a programming error; answer like INTERNAL rather than read past the
 * tables. The cast to unsigned also catches negative values. */
static int in_range(antar_err_t err)
{
    return (unsigned)err < (unsigned)ANTAR_E__COUNT;
}

int antar_err_status(antar_err_t err)
{
    return in_range(err) ? err_status[err] : 500;
}

const char *antar_err_code(antar_err_t err)
{
    return in_range(err) ? err_code[err] : "internal_error";
}

const char *antar_err_message(antar_err_t err)
{
    return in_range(err) ? err_msg[err] : "internal error";
}
