/* ai_tree.h — XGBoost's gradient-boosted trees evaluated natively in C (docs/ai.md, "Serving").
 *
 * antar-train saves its boosters in XGBoost's JSON model format (1.7). Core parses that file
 * once at load into flat arrays (per node: split feature, threshold, children, the side a
 * missing value takes; leaves carry their value) and walks them itself: a prediction is a few
 * µs, allocates nothing and takes no lock, where XGBoost's C API costs 25–100 µs per call and
 * serialises callers on its booster's output buffer. XGBoost stays the trainer and the
 * reference: a forest is accepted only when it predicts what XGBoost predicts for the same file
 * (ai_forest_check), and the unit tests hold the two to 1e-5 on many rows.
 *
 * What is supported is what antar-train writes: a "gbtree" booster of numerical splits, one
 * output, objective reg:squarederror (identity), binary:logistic (sigmoid) or count:poisson
 * (exp). Anything else is refused at load with a reason (the rule then serves). */
#ifndef CORE_AI_TREE_H
#define CORE_AI_TREE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ai_forest ai_forest_t;

/* Parse path (XGBoost's JSON model) expecting nf features. NULL and a reason in err when the
 * file is missing, not JSON, or not a model this evaluator supports. */
ai_forest_t *ai_forest_load(const char *path, int nf, char *err, size_t errlen);
/* rows × nf floats (row-major; NaN = missing) → rows predictions, after the objective's
 * transform — what XGBoost's prediction (type 0) returns. Immutable forest: any number of
 * threads at once. */
void ai_forest_predict(const ai_forest_t *f, const float *x, size_t rows, float *out);
void ai_forest_free(ai_forest_t *f);
size_t ai_forest_trees(const ai_forest_t *f);
size_t ai_forest_nodes(const ai_forest_t *f);

/* rows × nf test rows that reach many leaves: each feature takes one of the forest's own split
 * thresholds for it (exactly, just below, or just above), sometimes NaN (the default
 * direction). *state seeds and advances a xorshift generator. */
void ai_forest_sample_rows(const ai_forest_t *f, uint64_t *state, size_t rows, float *x);
/* Predict the rows with the forest and with XGBoost's booster of the same file (ai_model.h) and
 * compare: the largest |native − xgboost| / max(1, |xgboost|) into *worst. 0 when every row is
 * within tol, -1 otherwise (or when XGBoost cannot predict), with the first bad row in err. */
int ai_forest_check(const ai_forest_t *f, const char *path, const float *x, size_t rows, double tol,
                    double *worst, char *err, size_t errlen);

#endif
