/* model.h: the exported series, kept between scrapes: counters that only grow, info series, owners that bound their life. */
#ifndef MODEL_H
#define MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "expo.h"

/*
 * A series is found by its family and label values and lives while anything
 * holds a reference to it, and then while its owner (the cgroup label, the
 * VM) was alive within the owner's grace period.  Counters only ever have
 * deltas added: a member that leaves takes nothing with it.
 */
struct model;
struct owner;

/* A series, by the model's id for it: 0 is none. */
typedef uint32_t series_id;

/* families: the data families, in the order they are rendered. */
struct model *model_new(const struct family *const *families, size_t nfamilies);
void model_free(struct model *m);
/* series.max_per_family: 0 for no limit. */
void model_set_max_series(struct model *m, size_t max);

/*
 * The owner with this key (never starting with '{', which label-keyed owners
 * do), made on first use (grace in seconds; the last call's grace wins).
 */
struct owner *model_owner(struct model *m, const char *key, time_t grace);
/*
 * The owner keyed by a label, the first label of the series made under it
 * (model_series_under()): stored once, in the owner, not in each series.
 */
struct owner *model_owner_label(struct model *m, const struct label *label, time_t grace);
void model_owner_put(struct model *m, struct owner *o);
/* The key it was made with (for an owner by label: the label rendered, less its closing brace). */
const char *model_owner_key(const struct owner *o);
/* A collection starts: owners marked alive in it keep their series whatever their grace. */
void model_begin(struct model *m);
void model_owner_alive(struct model *m, struct owner *o, time_t now);

/*
 * The series of family f with these labels, made on first use, with a
 * reference for the caller.  A family at max_per_family gives its counters
 * one more series, every label "overflow", and no new info series (0).
 */
series_id model_series(struct model *m, const struct family *f, struct owner *o,
		       size_t nlabels, const struct label *labels);
/* The series of f labelled with o's label (model_owner_label()) and then these. */
series_id model_series_under(struct model *m, const struct family *f, struct owner *o,
			     size_t nlabels, const struct label *labels);
void model_series_put(struct model *m, series_id s);
void model_add(struct model *m, series_id s, uint64_t delta);

/* Drops series no one holds whose owner has been dead for its grace period. */
void model_prune(struct model *m, time_t now);
/* Every series of every family that has one, families in order, series in the order they were made. */
void model_render(const struct model *m, struct buf *out, enum expo_format format);

/* Calls fn with the rendered labels ({a="x"}) and value of every series of family f. */
void model_walk(struct model *m, const struct family *f,
		void (*fn)(void *arg, const char *labels, uint64_t value), void *arg);

struct model_stats {
	size_t series;		/* live series, overflow series included */
	size_t owners;
	uint64_t overflowed;	/* series lookups sent to overflow or refused since start */
	size_t folded;		/* references held now to overflow series */
};
void model_stats(const struct model *m, struct model_stats *st);

#endif /* MODEL_H */
