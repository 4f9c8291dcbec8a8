/* user-service: the browser console's files (GET /console/{file}, docs/console.md).
 *
 * The edge routes /console/ here (and rewrites /console/ to /console/index.html). Only the
 * names in the table below are served, each from a fixed path under ANTAR_WEB_DIR (web/ in the
 * checkout, where setup.sh installs leaflet from npm): a request never names a path, so nothing
 * else on the disk can be reached whatever it spells. Every answer carries a Content-Security-
 * Policy that allows scripts, styles and connections from this origin only (no inline script,
 * no eval) and forbids framing; the files change only with a deploy, so the app's own files are
 * revalidated (no-cache) and the pinned library may be cached for a day.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "antar/config.h"
#include "antar/util.h"
#include "user.h"

#define CONSOLE_FILE_MAX (1024L * 1024)

typedef struct {
    const char *name; /* as requested */
    const char *path; /* under ANTAR_WEB_DIR */
    const char *type;
    const char *cache;
} console_file_t;

static const console_file_t files[] = {
    {"index.html", "index.html", "text/html; charset=utf-8", "no-cache"},
    {"console.js", "console.js", "text/javascript; charset=utf-8", "no-cache"},
    {"console.css", "console.css", "text/css; charset=utf-8", "no-cache"},
    {"jakarta.geojson", "jakarta.geojson", "application/geo+json", "no-cache"},
    {"leaflet.js", "node_modules/leaflet/dist/leaflet.js", "text/javascript; charset=utf-8",
     "public, max-age=86400"},
    {"leaflet.css", "node_modules/leaflet/dist/leaflet.css", "text/css; charset=utf-8",
     "public, max-age=86400"},
};

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

void console_file(antar_req_t *req)
{
    const char *name = antar_req_param(req, "file");
    const console_file_t *f = NULL;
    for (size_t i = 0; name && i < sizeof files / sizeof files[0]; i++)
        if (!strcmp(name, files[i].name))
            f = &files[i];
    const char *dir = antar_config_env("ANTAR_WEB_DIR", "");
    char path[1024];
    size_t len = 0;
    char *body = NULL;
    if (f && dir[0] && snprintf(path, sizeof path, "%s/%s", dir, f->path) < (int)sizeof path)
        body = antar_read_file(path, CONSOLE_FILE_MAX, &len);
    if (!body) {
        antar_http_fail(req, ANTAR_E_NOT_FOUND, NULL, "no such file");
        return;
    }
    antar_http_add_header(req, "Content-Security-Policy", csp);
    antar_http_add_header(req, "X-Frame-Options", "DENY");
    /* The sign-in redirect lands on index.html with ?code=: no Referer may carry it away. */
    antar_http_add_header(req, "Referrer-Policy", "no-referrer");
    antar_http_add_header(req, "Cache-Control", f->cache);
    antar_http_reply_raw(req, 200, f->type, body, len);
    free(body);
}
