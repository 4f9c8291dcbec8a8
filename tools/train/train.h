/* train.h — antar-train's work as functions, so the unit tests train on a small history. */
#ifndef ANTAR_TRAIN_H
#define ANTAR_TRAIN_H

#include <jansson.h>
#include <stddef.h>

typedef enum { AI_KIND_ETA, AI_KIND_ACC, AI_KIND_DEM } ai_model_kind_t;

/* The driver's offer count as a feature is capped: past this a driver is simply "known". */
#define AI_ACC_OFFERS_CAP 50

typedef struct {
    const char *out_dir;
    int rounds;    /* at most this many boosting rounds (early stopping may take fewer) */
    long min_rows; /* refuse to train a model on fewer rows */
    int seed;
} ai_train_opts_t;

/* Train eta, accept and demand from the events.jsonl files paths[0..np) into o->out_dir
 * (<model>.json + <model>.meta.json, demand.naive.json). 0, or -1 with the reason on stderr.
 * *summary (may be NULL) gets every model's card. */
int ai_train_all(const char *const *paths, int np, const ai_train_opts_t *o, json_t **summary);
/* Measure the models of models_dir on held-out days: every row is a test row. */
int ai_eval_all(const char *const *paths, int np, const char *models_dir, json_t **out);
/* The cost of one prediction call per model (1 and 8 rows; one thread, then two sharing the
 * booster and its lock), calls times each: p50/p90/p99 in µs as JSON. */
int ai_bench(const char *models_dir, int calls, json_t **out);
double ai_train_auc(const float *p, const float *y, size_t n);
/* The history the services recorded in MariaDB (the database ANTAR_DB_* names: driver-service's
 * offers and trips, user-service's orders) as events.jsonl lines into out_path, times mapped by
 * the city clock file clock_path (NULL/"": the wall clock in Jakarta). 0, or -1 with the reason
 * on stderr. *summary (may be NULL): rows read per kind. */
int ai_db_history(const char *clock_path, const char *out_path, json_t **summary);

#endif
