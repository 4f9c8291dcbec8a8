/* ai_model.h — one XGBoost booster behind a lock: load from a model file, predict rows of
 * floats. Used by core's serving (ai.c) and by antar-train (tools/train).
 *
 * Thread safety: a booster's prediction buffer belongs to the booster, so one prediction at a
 * time per booster (the lock); ai.c measures how long callers wait for it (docs/ai.md). */
#ifndef CORE_AI_MODEL_H
#define CORE_AI_MODEL_H

#include <stddef.h>

typedef struct ai_booster ai_booster_t;

/* Load path (XGBoost's JSON model format) expecting nf features; NULL and a reason in err when
 * the file is missing, unreadable, not a model, or a model of another width. */
ai_booster_t *ai_booster_load(const char *path, int nf, char *err, size_t errlen);
/* Wrap a booster handle made elsewhere (antar-train); takes ownership. */
ai_booster_t *ai_booster_wrap(void *handle, int nf);
/* rows × nf floats (row-major) → rows predictions into out. 0, or -1 (XGBoost refused). */
int ai_booster_predict(ai_booster_t *b, const float *x, size_t rows, float *out);
void ai_booster_free(ai_booster_t *b);
/* The handle, for antar-train's saving. */
void *ai_booster_handle(ai_booster_t *b);
/* XGBoost's last error text (static). */
const char *ai_booster_last_error(void);

#endif
