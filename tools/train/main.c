/* antar-train's command line (train.c does the work). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: antar-train --out DIR [--rounds N] [--min-rows N] [--seed N] [--db [--clock F]]\n"
        "                   [EVENTS.jsonl...]\n"
        "       antar-train --eval --models DIR [--db [--clock F]] [EVENTS.jsonl...]\n"
        "       antar-train --bench --models DIR [--calls N]\n"
        "Trains core's ETA, acceptance and demand models (docs/ai.md) from the recorded\n"
        "days, split by time; measures them on held-out days; or times one prediction call\n"
        "per model (JSON on stdout). --db adds the history the services recorded in the\n"
        "MariaDB database ANTAR_DB_* names (driver-service's by default; kept as\n"
        "<out>/history-db.jsonl), its times mapped by the city clock F (default\n"
        "ANTAR_AI_CLOCK_FILE; none: the wall clock in Jakarta).\n");
}

int main(int argc, char **argv)
{
    ai_train_opts_t o = {.rounds = 400, .min_rows = 50, .seed = 1};
    const char *models = NULL;
    int eval = 0, bench = 0, calls = 3000, db = 0;
    const char *clock = getenv("ANTAR_AI_CLOCK_FILE");
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                         {"rounds", required_argument, NULL, 'r'},
                                         {"min-rows", required_argument, NULL, 'm'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"eval", no_argument, NULL, 'e'},
                                         {"models", required_argument, NULL, 'M'},
                                         {"bench", no_argument, NULL, 'b'},
                                         {"calls", required_argument, NULL, 'c'},
                                         {"db", no_argument, NULL, 'd'},
                                         {"clock", required_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'o':
            o.out_dir = optarg;
            break;
        case 'r':
            o.rounds = (int)strtol(optarg, &end, 10);
            if (*end || o.rounds < 1 || o.rounds > 5000) {
                fprintf(stderr, "antar-train: --rounds must be 1..5000\n");
                return 2;
            }
            break;
        case 'm':
            o.min_rows = strtol(optarg, &end, 10);
            if (*end || o.min_rows < 1) {
                fprintf(stderr, "antar-train: --min-rows must be a positive integer\n");
                return 2;
            }
            break;
        case 's':
            o.seed = (int)strtol(optarg, &end, 10);
            break;
        case 'e':
            eval = 1;
            break;
        case 'b':
            bench = 1;
            break;
        case 'c':
            calls = (int)strtol(optarg, &end, 10);
            if (*end || calls < 10 || calls > 1000000) {
                fprintf(stderr, "antar-train: --calls must be 10..1000000\n");
                return 2;
            }
            break;
        case 'M':
            models = optarg;
            break;
        case 'd':
            db = 1;
            break;
        case 'k':
            clock = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (bench) {
        if (!models) {
            usage(stderr);
            return 2;
        }
        json_t *res = NULL;
        int rc = ai_bench(models, calls, &res);
        if (res) {
            json_dumpf(res, stdout, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(4));
            fputc('\n', stdout);
            json_decref(res);
        }
        return rc == 0 ? 0 : 1;
    }
    int np = argc - optind;
    const char **paths = calloc((size_t)np + 2, sizeof *paths);
    if (!paths)
        return 1;
    for (int i = 0; i < np; i++)
        paths[i] = argv[optind + i];
    if ((np < 1 && !db) || (eval && !models) || (!eval && !o.out_dir)) {
        usage(stderr);
        free(paths);
        return 2;
    }
    if (!eval && mkdir(o.out_dir, 0755) != 0) {
        struct stat st;
        if (stat(o.out_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "antar-train: cannot create %s\n", o.out_dir);
            free(paths);
            return 1;
        }
    }
    /* The database's history becomes one more events file, read like the simulator's. */
    char dbpath[4096] = "";
    if (db) {
        json_t *got = NULL;
        if (eval)
            snprintf(dbpath, sizeof dbpath, "%s/antar-train-db.%ld.jsonl",
                     getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
        else
            snprintf(dbpath, sizeof dbpath, "%s/history-db.jsonl", o.out_dir);
        if (ai_db_history(clock, dbpath, &got) != 0) {
            free(paths);
            return 1;
        }
        char *s = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "antar-train: from the database: %s\n", s ? s : "");
        free(s);
        json_decref(got);
        paths[np++] = dbpath;
    }
    json_t *res = NULL;
    int rc;
    if (eval)
        rc = ai_eval_all(paths, np, models, &res);
    else
        rc = ai_train_all(paths, np, &o, &res);
    if (db && eval)
        unlink(dbpath);
    free(paths);
    if (res) {
        json_dumpf(res, stdout, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
        json_decref(res);
    }
    return rc == 0 ? 0 : 1;
}
