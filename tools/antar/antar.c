/* antar — a small command-line client for Antar's public API, through the edge.
 *
 * Each command is one public action (sign up, log in, estimate, order, accept, ...). The client
 * keeps a session per profile (access token, refresh token and CSRF token) in
 * $ANTAR_CLI_HOME/<profile>.json (default ~/.config/antar), mode 0600, and sends a fresh W3C
 * traceparent with every request. With --trace it prints that trace id on stderr, which the demo
 * uses to find, in the services' logs, every call between services that the action caused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#define MAX_BODY (1024 * 1024)

typedef struct {
    char *data;
    size_t len;
} buf_t;

typedef struct {
    const char *edge;
    const char *profile;
    bool trace;
    bool raw;
    char home[512];
} cli_t;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("antar: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    buf_t *b = userdata;
    size_t n = size * nmemb;
    /* A response larger than any our API sends is cut off rather than buffered unbounded. */
    if (b->len + n > MAX_BODY)
        return 0;
    char *p = realloc(b->data, b->len + n + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, ptr, n);
    b->data = p;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static void hex(char *out, size_t nbytes)
{
    unsigned char raw[32];
    randombytes_buf(raw, nbytes);
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", raw[i]);
}

/* ---- session file ------------------------------------------------------------------------ */

static void session_path(const cli_t *cli, char *out, size_t len)
{
    snprintf(out, len, "%s/%s.json", cli->home, cli->profile);
}

static json_t *session_load(const cli_t *cli)
{
    char path[640];
    session_path(cli, path, sizeof path);
    json_t *s = json_load_file(path, 0, NULL);
    return s ? s : json_object();
}

static void session_save(const cli_t *cli, json_t *s)
{
    char path[640], tmp[700];
    mkdir(cli->home, 0700);
    session_path(cli, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* Written to a private temporary file and renamed, so a token never sits in a file that
     * others can read and a crash never leaves half a session. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die("cannot write %s: %s", tmp, strerror(errno));
    char *text = json_dumps(s, JSON_INDENT(2));
    if (!text || write(fd, text, strlen(text)) < 0)
        die("cannot write %s", tmp);
    free(text);
    close(fd);
    if (rename(tmp, path) != 0)
        die("cannot save %s: %s", path, strerror(errno));
}

/* ---- HTTP -------------------------------------------------------------------------------- */

typedef struct {
    long status;
    json_t *body;
} res_t;

/* One request to the edge. form: url-encoded body or NULL. auth: attach the profile's token and,
 * on writes, its CSRF token. */
static res_t call(const cli_t *cli, const char *method, const char *path, const char *form,
                  bool auth, const char *idem_key)
{
    res_t r = {0, NULL};
    CURL *c = curl_easy_init();
    if (!c)
        die("out of memory");
    /* One trace per command: a login's token and CSRF requests land in the same trace. */
    static char trace_id[33];
    char url[1024], h[2300], span[17];
    snprintf(url, sizeof url, "%s%s", cli->edge, path);
    if (!trace_id[0])
        hex(trace_id, 16);
    hex(span, 8);

    struct curl_slist *hs = NULL;
    snprintf(h, sizeof h, "traceparent: 00-%s-%s-01", trace_id, span);
    hs = curl_slist_append(hs, h);
    hs = curl_slist_append(hs, "Accept: application/json");
    if (auth) {
        json_t *s = session_load(cli);
        const char *tok = json_string_value(json_object_get(s, "access_token"));
        const char *csrf = json_string_value(json_object_get(s, "csrf_token"));
        if (!tok)
            die("not logged in as profile '%s' (run: antar --profile %s login ...)", cli->profile,
                cli->profile);
        snprintf(h, sizeof h, "Authorization: Bearer %s", tok);
        hs = curl_slist_append(hs, h);
        if (csrf && strcmp(method, "GET") != 0) {
            snprintf(h, sizeof h, "X-CSRF-Token: %s", csrf);
            hs = curl_slist_append(hs, h);
        }
        json_decref(s);
    }
    if (idem_key) {
        snprintf(h, sizeof h, "Idempotency-Key: %s", idem_key);
        hs = curl_slist_append(hs, h);
    }
    buf_t b = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (form) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        die("%s %s: %s", method, url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    if (cli->trace)
        fprintf(stderr, "trace_id=%s\n", trace_id);
    r.body = b.data ? json_loads(b.data, 0, NULL) : NULL;
    if (!r.body && b.data)
        r.body = json_pack("{s:s}", "text", b.data);
    free(b.data);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    return r;
}

/* Append key=value (both escaped) to a form string. */
static void form_add(char **form, const char *key, const char *value)
{
    if (!value)
        return;
    char *k = curl_easy_escape(NULL, key, 0), *v = curl_easy_escape(NULL, value, 0);
    size_t old = *form ? strlen(*form) : 0;
    size_t need = old + strlen(k) + strlen(v) + 3;
    char *p = realloc(*form, need);
    if (!p || !k || !v)
        die("out of memory");
    snprintf(p + old, need - old, "%s%s=%s", old ? "&" : "", k, v);
    *form = p;
    curl_free(k);
    curl_free(v);
}

static int print_result(const cli_t *cli, res_t r)
{
    int ok = r.status >= 200 && r.status < 300;
    if (r.body) {
        json_t *out = r.body;
        if (!cli->raw && json_is_object(r.body) && json_object_get(r.body, "result") && ok)
            out = json_object_get(r.body, "result");
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "null");
        free(text);
    }
    if (!ok)
        fprintf(stderr, "antar: HTTP %ld\n", r.status);
    json_decref(r.body);
    return ok ? 0 : 1;
}

/* ---- arguments --------------------------------------------------------------------------- */

/* Value of --name in argv, or NULL. */
static const char *opt(int argc, char **argv, const char *name)
{
    for (int i = 0; i < argc - 1; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static const char *need(int argc, char **argv, const char *name)
{
    const char *v = opt(argc, argv, name);
    if (!v)
        die("missing %s", name);
    return v;
}

/* "lat,lng" → two strings. */
static void split_point(const char *s, char lat[32], char lng[32])
{
    const char *comma = strchr(s, ',');
    if (!comma || comma - s >= 32 || strlen(comma + 1) >= 32)
        die("a point is LAT,LNG (e.g. -6.1754,106.8272), not '%s'", s);
    memcpy(lat, s, (size_t)(comma - s));
    lat[comma - s] = '\0';
    strcpy(lng, comma + 1);
}

static const char *positional(int argc, char **argv, int n)
{
    if (n >= argc)
        die("missing argument");
    return argv[n];
}

static void usage(void)
{
    puts("usage: antar [--edge URL] [--profile NAME] [--trace] [--raw] COMMAND [options]\n"
         "\n"
         "customers:\n"
         "  signup-user   --name N --email E --phone P --password PW\n"
         "  login         --username EMAIL|PHONE --password PW [--as user|driver]\n"
         "  me\n"
         "  estimate      --from LAT,LNG --to LAT,LNG [--vehicle motorcycle|car]\n"
         "  order         --from LAT,LNG --from-address A --to LAT,LNG --to-address B\n"
         "                [--vehicle V] [--quote ID] [--idempotency-key K]\n"
         "  orders | order-get ID | cancel ID | rate ID STARS [--comment C]\n"
         "drivers:\n"
         "  signup-driver --name N --email E --phone P --password PW --vehicle V --plate P\n"
         "  status online|offline | location LAT,LNG | offers | accept ID | reject ID\n"
         "  pickup ORDER_ID | complete ORDER_ID | trips | earnings\n"
         "\n"
         "The edge defaults to $ANTAR_EDGE_URL or http://127.0.0.1:8080; sessions are kept in\n"
         "$ANTAR_CLI_HOME (default ~/.config/antar), one file per --profile.");
}

static int cmd_login(cli_t *cli, int argc, char **argv)
{
    const char *as = opt(argc, argv, "--as");
    const char *client = as && strcmp(as, "driver") == 0 ? "driver-app" : "user-app";
    char *form = NULL;
    form_add(&form, "grant_type", "password");
    form_add(&form, "client_id", client);
    form_add(&form, "username", need(argc, argv, "--username"));
    form_add(&form, "password", need(argc, argv, "--password"));
    res_t r = call(cli, "POST", "/oauth/token", form, false, NULL);
    free(form);
    const char *tok = json_string_value(json_object_get(r.body, "access_token"));
    if (r.status != 200 || !tok)
        return print_result(cli, r);
    json_t *s = json_object();
    json_object_set(s, "access_token", json_object_get(r.body, "access_token"));
    json_object_set(s, "refresh_token", json_object_get(r.body, "refresh_token"));
    json_object_set_new(s, "client_id", json_string(client));
    session_save(cli, s);
    json_decref(r.body);

    /* Every write with a user or driver token needs a CSRF token; fetch it once per login. */
    res_t c = call(cli, "GET", "/csrf", NULL, true, NULL);
    json_t *csrf = json_object_get(json_object_get(c.body, "result"), "csrf_token");
    if (c.status == 200 && json_is_string(csrf)) {
        json_object_set(s, "csrf_token", csrf);
        session_save(cli, s);
    }
    json_decref(c.body);
    json_decref(s);
    printf("{\"logged_in\": true, \"profile\": \"%s\", \"client_id\": \"%s\"}\n", cli->profile,
           client);
    return 0;
}

static int run(cli_t *cli, int argc, char **argv)
{
    const char *cmd = argv[0];
    char *form = NULL;
    char path[256], lat[32], lng[32], lat2[32], lng2[32];
    int rc;

    if (strcmp(cmd, "signup-user") == 0 || strcmp(cmd, "signup-driver") == 0) {
        bool driver = cmd[7] == 'd';
        form_add(&form, "name", need(argc, argv, "--name"));
        form_add(&form, "email", need(argc, argv, "--email"));
        form_add(&form, "phone", need(argc, argv, "--phone"));
        form_add(&form, "password", need(argc, argv, "--password"));
        if (driver) {
            form_add(&form, "vehicle_type", need(argc, argv, "--vehicle"));
            form_add(&form, "plate_number", need(argc, argv, "--plate"));
        }
        rc =
            print_result(cli, call(cli, "POST", driver ? "/drivers" : "/users", form, false, NULL));
    } else if (strcmp(cmd, "login") == 0) {
        rc = cmd_login(cli, argc, argv);
    } else if (strcmp(cmd, "me") == 0) {
        json_t *s = session_load(cli);
        const char *client = json_string_value(json_object_get(s, "client_id"));
        bool driver = client && strcmp(client, "driver-app") == 0;
        json_decref(s);
        rc = print_result(cli,
                          call(cli, "GET", driver ? "/drivers/me" : "/users/me", NULL, true, NULL));
    } else if (strcmp(cmd, "estimate") == 0 || strcmp(cmd, "order") == 0) {
        bool order = cmd[0] == 'o';
        split_point(need(argc, argv, "--from"), lat, lng);
        split_point(need(argc, argv, "--to"), lat2, lng2);
        form_add(&form, "pickup_lat", lat);
        form_add(&form, "pickup_lng", lng);
        form_add(&form, "dropoff_lat", lat2);
        form_add(&form, "dropoff_lng", lng2);
        const char *v = opt(argc, argv, "--vehicle");
        form_add(&form, "vehicle_type", v ? v : "motorcycle");
        if (order) {
            form_add(&form, "pickup_address", need(argc, argv, "--from-address"));
            form_add(&form, "dropoff_address", need(argc, argv, "--to-address"));
            form_add(&form, "quote_id", opt(argc, argv, "--quote"));
        }
        rc = print_result(cli, call(cli, "POST", order ? "/orders" : "/fares/estimate", form, true,
                                    order ? opt(argc, argv, "--idempotency-key") : NULL));
    } else if (strcmp(cmd, "orders") == 0) {
        rc = print_result(cli, call(cli, "GET", "/orders", NULL, true, NULL));
    } else if (strcmp(cmd, "order-get") == 0 || strcmp(cmd, "cancel") == 0) {
        bool cancel = cmd[0] == 'c';
        snprintf(path, sizeof path, cancel ? "/orders/%s/cancel" : "/orders/%s",
                 positional(argc, argv, 1));
        rc = print_result(cli, call(cli, cancel ? "POST" : "GET", path, NULL, true, NULL));
    } else if (strcmp(cmd, "rate") == 0) {
        snprintf(path, sizeof path, "/orders/%s/rating", positional(argc, argv, 1));
        form_add(&form, "rating", positional(argc, argv, 2));
        form_add(&form, "comment", opt(argc, argv, "--comment"));
        rc = print_result(cli, call(cli, "POST", path, form, true, NULL));
    } else if (strcmp(cmd, "status") == 0) {
        form_add(&form, "status", positional(argc, argv, 1));
        rc = print_result(cli, call(cli, "PUT", "/drivers/me/status", form, true, NULL));
    } else if (strcmp(cmd, "location") == 0) {
        split_point(positional(argc, argv, 1), lat, lng);
        form_add(&form, "lat", lat);
        form_add(&form, "lng", lng);
        rc = print_result(cli, call(cli, "PUT", "/drivers/me/location", form, true, NULL));
    } else if (strcmp(cmd, "offers") == 0 || strcmp(cmd, "trips") == 0 ||
               strcmp(cmd, "earnings") == 0) {
        const char *p = cmd[0] == 'o'   ? "/offers"
                        : cmd[0] == 't' ? "/trips"
                                        : "/drivers/me/earnings";
        rc = print_result(cli, call(cli, "GET", p, NULL, true, NULL));
    } else if (strcmp(cmd, "accept") == 0 || strcmp(cmd, "reject") == 0) {
        snprintf(path, sizeof path, "/offers/%s/%s", positional(argc, argv, 1), cmd);
        rc = print_result(cli, call(cli, "POST", path, NULL, true, NULL));
    } else if (strcmp(cmd, "pickup") == 0 || strcmp(cmd, "complete") == 0) {
        snprintf(path, sizeof path, "/trips/%s/%s", positional(argc, argv, 1), cmd);
        rc = print_result(cli, call(cli, "POST", path, NULL, true, NULL));
    } else if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0) {
        usage();
        rc = 0;
    } else {
        usage();
        rc = 2;
    }
    free(form);
    return rc;
}

int main(int argc, char **argv)
{
    cli_t cli = {.edge = getenv("ANTAR_EDGE_URL"), .profile = "default"};
    if (!cli.edge || !*cli.edge)
        cli.edge = "http://127.0.0.1:8080";
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--trace") == 0)
            cli.trace = true;
        else if (strcmp(argv[i], "--raw") == 0)
            cli.raw = true;
        else if (strcmp(argv[i], "--edge") == 0 && i + 1 < argc)
            cli.edge = argv[++i];
        else if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc)
            cli.profile = argv[++i];
        else if (strcmp(argv[i], "--help") == 0)
            break;
        else
            die("unknown option %s", argv[i]);
    }
    if (i >= argc) {
        usage();
        return 2;
    }
    for (const char *p = cli.profile; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            die("a profile name is [a-z0-9_-]+");
    const char *home = getenv("ANTAR_CLI_HOME");
    if (home && *home)
        snprintf(cli.home, sizeof cli.home, "%s", home);
    else
        snprintf(cli.home, sizeof cli.home, "%s/.config/antar",
                 getenv("HOME") ? getenv("HOME") : ".");
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        die("cannot initialise libsodium/libcurl");
    int rc = run(&cli, argc - i, argv + i);
    curl_global_cleanup();
    return rc;
}
