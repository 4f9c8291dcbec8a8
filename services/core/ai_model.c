/* ai_model.c — see ai_model.h. */
#include "ai_model.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <xgboost/c_api.h>

struct ai_booster {
    BoosterHandle h;
    int nf;
    pthread_mutex_t mu;
};

const char *ai_booster_last_error(void)
{
    const char *e = XGBGetLastError();
    return e ? e : "";
}

ai_booster_t *ai_booster_wrap(void *handle, int nf)
{
    ai_booster_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->h = handle;
    b->nf = nf;
    pthread_mutex_init(&b->mu, NULL);
    return b;
}

ai_booster_t *ai_booster_load(const char *path, int nf, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s", path);
        return NULL;
    }
    fclose(f);
    BoosterHandle h = NULL;
    if (XGBoosterCreate(NULL, 0, &h) != 0) {
        snprintf(err, errlen, "XGBoosterCreate: %s", ai_booster_last_error());
        return NULL;
    }
    bst_ulong got = 0;
    if (XGBoosterLoadModel(h, path) != 0) {
        snprintf(err, errlen, "not a model: %.200s", ai_booster_last_error());
        XGBoosterFree(h);
        return NULL;
    }
    /* One request predicts a handful of rows: OpenMP's thread pool would cost more than it
     * gives, and the machine's cores belong to the request threads. */
    XGBoosterSetParam(h, "nthread", "1");
    if (XGBoosterGetNumFeature(h, &got) != 0 || (int)got != nf) {
        snprintf(err, errlen, "model has %llu features, expected %d", (unsigned long long)got, nf);
        XGBoosterFree(h);
        return NULL;
    }
    ai_booster_t *b = ai_booster_wrap(h, nf);
    if (!b) {
        XGBoosterFree(h);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* A model that loads but cannot predict (a truncated tree, say) is refused now, not on the
     * first request. */
    float *x = calloc((size_t)nf, sizeof *x), y = 0;
    int rc = x ? ai_booster_predict(b, x, 1, &y) : -1;
    free(x);
    if (rc != 0) {
        snprintf(err, errlen, "cannot predict: %.200s", ai_booster_last_error());
        ai_booster_free(b);
        return NULL;
    }
    return b;
}

int ai_booster_predict(ai_booster_t *b, const float *x, size_t rows, float *out)
{
    if (!b || rows == 0)
        return -1;
    char arr[160];
    snprintf(arr, sizeof arr,
             "{\"data\":[%llu,true],\"shape\":[%zu,%d],\"typestr\":\"<f4\",\"version\":3}",
             (unsigned long long)(uintptr_t)x, rows, b->nf);
    static const char cfg[] = "{\"type\":0,\"training\":false,\"iteration_begin\":0,"
                              "\"iteration_end\":0,\"strict_shape\":false,\"missing\":NaN,"
                              "\"cache_id\":0}";
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *res = NULL;
    pthread_mutex_lock(&b->mu);
    int rc = XGBoosterPredictFromDense(b->h, arr, cfg, NULL, &shape, &dim, &res);
    if (rc == 0)
        for (size_t i = 0; i < rows; i++)
            out[i] = res[i];
    pthread_mutex_unlock(&b->mu);
    return rc == 0 ? 0 : -1;
}

void ai_booster_free(ai_booster_t *b)
{
    if (!b)
        return;
    XGBoosterFree(b->h);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

void *ai_booster_handle(ai_booster_t *b)
{
    return b ? b->h : NULL;
}
