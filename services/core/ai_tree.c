/* ai_tree.c — see ai_tree.h.
 *
 * The JSON model (XGBoost 1.7, learner.cc / tree_model.cc): learner.learner_model_param holds
 * num_feature and base_score as strings; base_score is in the objective's output space (a
 * probability for binary:logistic, a mean count for count:poisson), so the margin every row
 * starts from is the objective's ProbToMargin of it: −log(1/b − 1) for logistic, log(b) for
 * Poisson, b itself for squared error. learner.gradient_booster.model.trees[] holds each tree as
 * parallel arrays indexed by node: left_children / right_children (−1 for a leaf),
 * split_indices, split_conditions (the threshold, or for a leaf its value, the learning rate
 * already applied), default_left (where a missing value goes) and split_type (0 = numerical).
 * A row goes left when value < threshold, in float. XGBoost sums the leaves in float onto the
 * base margin tree by tree; so does this file, in the same order, so the two agree to float
 * rounding. */
#include "ai_tree.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ai_model.h"

/* Bounds on what a model file may make core allocate: antar-train's models are a few hundred
 * trees of depth ≤ 6 (at most 127 nodes each). */
#define MAX_TREES 5000
#define MAX_NODES_PER_TREE 65536
#define MAX_DEPTH 64

typedef enum { OBJ_IDENTITY, OBJ_SIGMOID, OBJ_EXP } obj_t;

typedef struct {
    int32_t left, right; /* absolute node indexes; left < 0 for a leaf */
    uint32_t feat;       /* split feature; DEFAULT_LEFT set: a missing value goes left */
    float value;         /* threshold, or the leaf's value */
} node_t;
#define DEFAULT_LEFT 0x80000000u

struct ai_forest {
    int nf;
    obj_t obj;
    float base_margin;
    size_t ntrees, nnodes;
    int32_t *roots;
    node_t *nodes;
    /* Per feature, its split thresholds (for ai_forest_sample_rows). */
    float **thr;
    size_t *nthr;
};

size_t ai_forest_trees(const ai_forest_t *f)
{
    return f ? f->ntrees : 0;
}

size_t ai_forest_nodes(const ai_forest_t *f)
{
    return f ? f->nnodes : 0;
}

void ai_forest_free(ai_forest_t *f)
{
    if (!f)
        return;
    if (f->thr)
        for (int j = 0; j < f->nf; j++)
            free(f->thr[j]);
    free(f->thr);
    free(f->nthr);
    free(f->roots);
    free(f->nodes);
    free(f);
}

static const char *str_at(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* An element of a number array (XGBoost writes integers, reals and, for default_left,
 * sometimes booleans). */
static double num_of(json_t *v)
{
    if (json_is_boolean(v))
        return json_is_true(v) ? 1 : 0;
    return json_number_value(v);
}

/* Append one tree's nodes at f->nodes[f->nnodes..]. Checks every index and that the nodes
 * reachable from the root form a tree (each reached once, depth bounded). */
static bool add_tree(ai_forest_t *f, json_t *t, size_t *cap, char *err, size_t errlen)
{
    json_t *lc = json_object_get(t, "left_children"), *rc = json_object_get(t, "right_children"),
           *si = json_object_get(t, "split_indices"), *sc = json_object_get(t, "split_conditions"),
           *dl = json_object_get(t, "default_left"), *st = json_object_get(t, "split_type");
    size_t n = json_array_size(lc);
    if (n == 0 || n > MAX_NODES_PER_TREE || json_array_size(rc) != n || json_array_size(si) != n ||
        json_array_size(sc) != n || json_array_size(dl) != n) {
        snprintf(err, errlen, "tree %zu: node arrays missing or of different lengths", f->ntrees);
        return false;
    }
    if (f->nnodes + n > *cap) {
        size_t nc = (*cap ? *cap * 2 : 4096);
        while (nc < f->nnodes + n)
            nc *= 2;
        node_t *p = realloc(f->nodes, nc * sizeof *p);
        if (!p) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        f->nodes = p, *cap = nc;
    }
    node_t *base = f->nodes + f->nnodes;
    for (size_t i = 0; i < n; i++) {
        double l = num_of(json_array_get(lc, i)), r = num_of(json_array_get(rc, i));
        double fi = num_of(json_array_get(si, i));
        bool leaf = l < 0;
        if (!leaf && (l >= (double)n || r < 0 || r >= (double)n || fi < 0 || fi >= f->nf)) {
            snprintf(err, errlen, "tree %zu node %zu: child or feature index out of range",
                     f->ntrees, i);
            return false;
        }
        if (!leaf && st && num_of(json_array_get(st, i)) != 0) {
            snprintf(err, errlen, "tree %zu node %zu: categorical split (not supported)", f->ntrees,
                     i);
            return false;
        }
        base[i] = (node_t){
            .left = leaf ? -1 : (int32_t)(f->nnodes + (size_t)l),
            .right = leaf ? -1 : (int32_t)(f->nnodes + (size_t)r),
            .feat =
                leaf ? 0 : (uint32_t)fi | (num_of(json_array_get(dl, i)) != 0 ? DEFAULT_LEFT : 0),
            .value = (float)num_of(json_array_get(sc, i)),
        };
        if (!isfinite(base[i].value)) {
            snprintf(err, errlen, "tree %zu node %zu: value is not finite", f->ntrees, i);
            return false;
        }
    }
    /* Walk from the root: every node reached once, no deeper than MAX_DEPTH. */
    unsigned char *seen = calloc(n, 1);
    int32_t stack[2 * MAX_DEPTH + 2];
    int depth[2 * MAX_DEPTH + 2], sp = 0;
    bool ok = seen != NULL;
    stack[sp] = 0, depth[sp++] = 0;
    while (ok && sp > 0) {
        sp--;
        int32_t i = stack[sp];
        int d = depth[sp];
        if (seen[i] || d > MAX_DEPTH) {
            ok = false;
            break;
        }
        seen[i] = 1;
        if (base[i].left >= 0) {
            stack[sp] = base[i].left - (int32_t)f->nnodes, depth[sp++] = d + 1;
            stack[sp] = base[i].right - (int32_t)f->nnodes, depth[sp++] = d + 1;
        }
    }
    free(seen);
    if (!ok) {
        snprintf(err, errlen, "tree %zu is not a tree of depth ≤ %d", f->ntrees, MAX_DEPTH);
        return false;
    }
    f->roots[f->ntrees++] = (int32_t)f->nnodes;
    f->nnodes += n;
    return true;
}

static bool collect_thresholds(ai_forest_t *f)
{
    f->thr = calloc((size_t)f->nf, sizeof *f->thr);
    f->nthr = calloc((size_t)f->nf, sizeof *f->nthr);
    if (!f->thr || !f->nthr)
        return false;
    for (size_t i = 0; i < f->nnodes; i++)
        if (f->nodes[i].left >= 0)
            f->nthr[f->nodes[i].feat & ~DEFAULT_LEFT]++;
    for (int j = 0; j < f->nf; j++)
        if (f->nthr[j] && !(f->thr[j] = malloc(f->nthr[j] * sizeof(float))))
            return false;
    size_t *k = calloc((size_t)f->nf, sizeof *k);
    if (!k)
        return false;
    for (size_t i = 0; i < f->nnodes; i++)
        if (f->nodes[i].left >= 0) {
            uint32_t j = f->nodes[i].feat & ~DEFAULT_LEFT;
            f->thr[j][k[j]++] = f->nodes[i].value;
        }
    free(k);
    return true;
}

ai_forest_t *ai_forest_load(const char *path, int nf, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        snprintf(err, errlen, "not a model: %s: %.200s", path, je.text);
        return NULL;
    }
    ai_forest_t *f = calloc(1, sizeof *f);
    json_t *learner = json_object_get(root, "learner");
    json_t *lmp = json_object_get(learner, "learner_model_param");
    json_t *gb = json_object_get(learner, "gradient_booster");
    json_t *trees = json_object_get(json_object_get(gb, "model"), "trees");
    const char *obj = str_at(json_object_get(learner, "objective"), "name");
    const char *nfs = str_at(lmp, "num_feature"), *bss = str_at(lmp, "base_score"),
               *ncs = str_at(lmp, "num_class"), *nts = str_at(lmp, "num_target");
    bool ok = false;
    float bs = bss ? strtof(bss, NULL) : NAN;
    if (!f)
        snprintf(err, errlen, "out of memory");
    else if (!learner || !lmp || !nfs || !bss || !obj)
        snprintf(err, errlen, "not an XGBoost JSON model: %s", path);
    else if (!str_at(gb, "name") || strcmp(str_at(gb, "name"), "gbtree") != 0)
        snprintf(err, errlen, "booster %s is not gbtree", str_at(gb, "name"));
    else if (atoi(nfs) != nf)
        snprintf(err, errlen, "model has %s features, expected %d", nfs, nf);
    else if ((ncs && atoi(ncs) > 1) || (nts && atoi(nts) > 1))
        snprintf(err, errlen, "a model of several outputs is not supported");
    else if (!json_is_array(trees) || json_array_size(trees) == 0 ||
             json_array_size(trees) > MAX_TREES)
        snprintf(err, errlen, "model has %zu trees", json_array_size(trees));
    else if (!isfinite(bs))
        snprintf(err, errlen, "base_score %s is not a number", bss);
    else {
        f->nf = nf;
        if (strcmp(obj, "reg:squarederror") == 0) {
            f->obj = OBJ_IDENTITY, f->base_margin = bs, ok = true;
        } else if (strcmp(obj, "binary:logistic") == 0 && bs > 0 && bs < 1) {
            f->obj = OBJ_SIGMOID, f->base_margin = -logf(1.0f / bs - 1.0f), ok = true;
        } else if (strcmp(obj, "count:poisson") == 0 && bs > 0) {
            f->obj = OBJ_EXP, f->base_margin = logf(bs), ok = true;
        } else
            snprintf(err, errlen, "objective %s (base_score %s) is not supported", obj, bss);
    }
    size_t cap = 0;
    if (ok && !(f->roots = malloc(json_array_size(trees) * sizeof *f->roots))) {
        snprintf(err, errlen, "out of memory");
        ok = false;
    }
    for (size_t t = 0; ok && t < json_array_size(trees); t++)
        ok = add_tree(f, json_array_get(trees, t), &cap, err, errlen);
    if (ok && !collect_thresholds(f)) {
        snprintf(err, errlen, "out of memory");
        ok = false;
    }
    json_decref(root);
    if (!ok) {
        ai_forest_free(f);
        return NULL;
    }
    return f;
}

void ai_forest_predict(const ai_forest_t *f, const float *x, size_t rows, float *out)
{
    const node_t *nodes = f->nodes;
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * (size_t)f->nf;
        float acc = f->base_margin;
        for (size_t t = 0; t < f->ntrees; t++) {
            const node_t *n = nodes + f->roots[t];
            while (n->left >= 0) {
                float v = row[n->feat & ~DEFAULT_LEFT];
                bool left = isnan(v) ? (n->feat & DEFAULT_LEFT) != 0 : v < n->value;
                n = nodes + (left ? n->left : n->right);
            }
            acc += n->value;
        }
        out[r] = f->obj == OBJ_SIGMOID ? 1.0f / (1.0f + expf(-acc))
                 : f->obj == OBJ_EXP   ? expf(acc)
                                       : acc;
    }
}

static uint64_t xs(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

void ai_forest_sample_rows(const ai_forest_t *f, uint64_t *state, size_t rows, float *x)
{
    if (*state == 0)
        *state = 0x9E3779B97F4A7C15ULL;
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < f->nf; j++) {
            float *v = x + r * (size_t)f->nf + j;
            uint64_t u = xs(state);
            if (f->nthr[j] == 0) {
                *v = (float)(u % 1000) / 10.0f;
                continue;
            }
            float t = f->thr[j][(u >> 8) % f->nthr[j]];
            switch (u % 20) {
            case 0:
                *v = NAN;
                break;
            case 1:
            case 2:
            case 3:
            case 4:
            case 5:
                *v = t;
                break;
            case 6:
            case 7:
            case 8:
            case 9:
            case 10:
            case 11:
                *v = nextafterf(t, -INFINITY);
                break;
            default:
                *v = nextafterf(t, INFINITY);
                break;
            }
        }
}

int ai_forest_check(const ai_forest_t *f, const char *path, const float *x, size_t rows, double tol,
                    double *worst, char *err, size_t errlen)
{
    *worst = INFINITY;
    ai_booster_t *b = ai_booster_load(path, f->nf, err, errlen);
    if (!b)
        return -1;
    float *a = malloc(rows * sizeof *a), *ref = malloc(rows * sizeof *ref);
    int rc = -1;
    if (!a || !ref)
        snprintf(err, errlen, "out of memory");
    else if (ai_booster_predict(b, x, rows, ref) != 0)
        snprintf(err, errlen, "XGBoost cannot predict: %.200s", ai_booster_last_error());
    else {
        ai_forest_predict(f, x, rows, a);
        double w = 0;
        size_t bad = rows;
        for (size_t i = 0; i < rows; i++) {
            double d = fabs((double)a[i] - (double)ref[i]) / fmax(1.0, fabs((double)ref[i]));
            if (!(d <= w))
                w = d;
            if (!(d <= tol) && bad == rows)
                bad = i;
        }
        *worst = w;
        if (bad == rows)
            rc = 0;
        else
            snprintf(err, errlen, "native prediction %.9g differs from XGBoost's %.9g (row %zu)",
                     (double)a[bad], (double)ref[bad], bad);
    }
    free(a);
    free(ref);
    ai_booster_free(b);
    return rc;
}
