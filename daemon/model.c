/* model.c: the series table: lookup by family and labels, references, owners and their grace, overflow, rendering. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "model.h"

struct owner {
	struct owner *hnext;
	uint32_t hash;
	unsigned int refs;	/* series and sources that hold it */
	time_t last_alive;
	unsigned long alive_in;	/* the collection that last saw it alive */
	time_t grace;
	char key[];
};

struct series {
	struct series *hnext;
	struct owner *owner;	/* NULL: never expires (overflow series) */
	uint64_t value;
	uint32_t hash;
	unsigned int refs;
	unsigned int fam;
	size_t labels_len;
	char labels[];		/* rendered: {a="x"} or "" */
};

struct fam {
	const struct family *family;
	struct series **v;	/* in the order they were made */
	size_t n, cap;
	size_t regular;		/* series counted against max_per_family */
	struct series *overflow;
};

struct table {
	void **buckets;
	size_t nbuckets, n;
};

struct model {
	struct fam *fams;
	size_t nfams;
	size_t max_series;
	struct table series, owners;
	uint64_t overflowed;
	unsigned long collection;
	struct buf scratch;
};

static uint32_t hash_bytes(uint32_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	/* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 16777619u;
	return h;
}

#define HASH_SEED 2166136261u

/* Rehashes a chained table (whose entries start with their next pointer) into nb buckets. */
static void table_resize(struct table *t, size_t nb, uint32_t (*hash_of)(const void *))
{
	void **b = xcalloc(nb, sizeof(*b));

	for (size_t i = 0; i < t->nbuckets; i++) {
		void *e = t->buckets[i], *next;

		for (; e; e = next) {
			size_t j = hash_of(e) & (nb - 1);

			next = *(void **)e;
			*(void **)e = b[j];
			b[j] = e;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
}

/* Chains stay short: double at one entry a bucket; a table a burst grew shrinks once mostly empty. */
static void table_grow(struct table *t, uint32_t (*hash_of)(const void *))
{
	table_resize(t, t->nbuckets ? t->nbuckets * 2 : 1024, hash_of);
}

static void table_shrink(struct table *t, uint32_t (*hash_of)(const void *))
{
	if (t->nbuckets > 1024 && t->n < t->nbuckets / 8)
		table_resize(t, t->nbuckets / 4, hash_of);
}

static void table_unlink(struct table *t, void *entry, uint32_t hash)
{
	void **pp = &t->buckets[hash & (t->nbuckets - 1)];

	while (*pp && *pp != entry)
		pp = (void **)*pp;
	if (*pp) {
		*pp = *(void **)entry;
		t->n--;
	}
}

static uint32_t series_hash_of(const void *e) { return ((const struct series *)e)->hash; }
static uint32_t owner_hash_of(const void *e) { return ((const struct owner *)e)->hash; }

struct model *model_new(const struct family *const *families, size_t nfamilies)
{
	struct model *m = xcalloc(1, sizeof(*m));

	m->fams = xcalloc(nfamilies, sizeof(*m->fams));
	m->nfams = nfamilies;
	for (size_t i = 0; i < nfamilies; i++)
		m->fams[i].family = families[i];
	table_grow(&m->series, series_hash_of);
	table_grow(&m->owners, owner_hash_of);
	return m;
}

void model_set_max_series(struct model *m, size_t max)
{
	m->max_series = max;
}

struct owner *model_owner(struct model *m, const char *key, time_t grace)
{
	size_t len = strlen(key);
	uint32_t h = hash_bytes(HASH_SEED, key, len);
	struct owner *o;

	for (o = m->owners.buckets[h & (m->owners.nbuckets - 1)]; o; o = o->hnext)
		if (o->hash == h && !strcmp(o->key, key))
			break;
	if (!o) {
		if (m->owners.n >= m->owners.nbuckets)
			table_grow(&m->owners, owner_hash_of);
		o = xcalloc(1, sizeof(*o) + len + 1);
		memcpy(o->key, key, len + 1);
		o->hash = h;
		o->last_alive = time(NULL);	/* what is first seen gone still gets its grace */
		o->hnext = m->owners.buckets[h & (m->owners.nbuckets - 1)];
		m->owners.buckets[h & (m->owners.nbuckets - 1)] = o;
		m->owners.n++;
	}
	o->grace = grace;
	o->refs++;
	return o;
}

void model_owner_put(struct model *m, struct owner *o)
{
	if (!o || --o->refs)
		return;
	table_unlink(&m->owners, o, o->hash);
	free(o);
}

void model_begin(struct model *m)
{
	m->collection++;
}

void model_owner_alive(struct model *m, struct owner *o, time_t now)
{
	o->last_alive = now;
	o->alive_in = m->collection;
}

static struct fam *fam_of(struct model *m, const struct family *f)
{
	for (size_t i = 0; i < m->nfams; i++)
		if (m->fams[i].family == f)
			return &m->fams[i];
	log_error("model: family %s not registered", f->name);
	abort();
}

static struct series *series_find(struct model *m, unsigned int fam, const char *labels,
				  size_t len, uint32_t h)
{
	for (struct series *s = m->series.buckets[h & (m->series.nbuckets - 1)]; s; s = s->hnext)
		if (s->hash == h && s->fam == fam && s->labels_len == len &&
		    !memcmp(s->labels, labels, len))
			return s;
	return NULL;
}

static struct series *series_make(struct model *m, struct fam *fa, struct owner *o,
				  const char *labels, size_t len, uint32_t h)
{
	struct series *s = xcalloc(1, sizeof(*s) + len + 1);

	memcpy(s->labels, labels, len);
	s->labels_len = len;
	s->hash = h;
	s->fam = (unsigned int)(fa - m->fams);
	s->value = fa->family->info ? 1 : 0;
	s->owner = o;
	if (o)
		o->refs++;
	if (m->series.n >= m->series.nbuckets)
		table_grow(&m->series, series_hash_of);
	s->hnext = m->series.buckets[h & (m->series.nbuckets - 1)];
	m->series.buckets[h & (m->series.nbuckets - 1)] = s;
	m->series.n++;
	if (fa->n == fa->cap) {
		fa->cap = fa->cap ? fa->cap * 2 : 64;
		fa->v = xrealloc(fa->v, fa->cap * sizeof(*fa->v));
	}
	fa->v[fa->n++] = s;
	return s;
}

/* The family's overflow series: its label names, every value "overflow". */
static struct series *overflow_series(struct model *m, struct fam *fa, size_t nlabels,
				      const struct label *labels)
{
	if (!fa->overflow) {
		struct label ov[8];
		size_t n = nlabels < 8 ? nlabels : 8;
		uint32_t h;

		for (size_t i = 0; i < n; i++)
			ov[i] = (struct label){ labels[i].name, "overflow" };
		buf_reset(&m->scratch);
		expo_labels(&m->scratch, n, ov);
		h = hash_bytes((uint32_t)(fa - m->fams) * 2654435761u ^ HASH_SEED, m->scratch.data,
			       m->scratch.len);
		fa->overflow = series_make(m, fa, NULL, m->scratch.data, m->scratch.len, h);
		fa->overflow->refs++;	/* the family's own: never pruned */
	}
	return fa->overflow;
}

struct series *model_series(struct model *m, const struct family *f, struct owner *o,
			    size_t nlabels, const struct label *labels)
{
	struct fam *fa = fam_of(m, f);
	unsigned int fam = (unsigned int)(fa - m->fams);
	struct series *s;
	uint32_t h;

	buf_reset(&m->scratch);
	buf_append(&m->scratch, "", 0);
	expo_labels(&m->scratch, nlabels, labels);
	h = hash_bytes(fam * 2654435761u ^ HASH_SEED, m->scratch.data, m->scratch.len);
	s = series_find(m, fam, m->scratch.data, m->scratch.len, h);
	if (!s) {
		if (m->max_series && fa->regular >= m->max_series) {
			m->overflowed++;
			if (f->info)
				return NULL;
			s = overflow_series(m, fa, nlabels, labels);
		} else {
			s = series_make(m, fa, o, m->scratch.data, m->scratch.len, h);
			fa->regular++;
		}
	} else if (s->owner != o && o && s->owner) {
		/* the same series reached through another owner: the most recent one bounds its life */
		o->refs++;
		model_owner_put(m, s->owner);
		s->owner = o;
	}
	s->refs++;
	return s;
}

void model_series_put(struct model *m, struct series *s)
{
	(void)m;
	if (s && s->refs)
		s->refs--;
}

void model_add(struct series *s, uint64_t delta)
{
	s->value += delta;
}

const char *model_owner_key(const struct owner *o)
{
	return o->key;
}

void model_prune(struct model *m, time_t now)
{
	for (size_t i = 0; i < m->nfams; i++) {
		struct fam *fa = &m->fams[i];
		size_t w = 0;

		for (size_t r = 0; r < fa->n; r++) {
			struct series *s = fa->v[r];

			if (s->refs || !s->owner || s->owner->alive_in == m->collection ||
			    now - s->owner->last_alive < s->owner->grace) {
				fa->v[w++] = s;
				continue;
			}
			table_unlink(&m->series, s, s->hash);
			model_owner_put(m, s->owner);
			fa->regular--;
			free(s);
		}
		fa->n = w;
		if (fa->cap > 64 && fa->n < fa->cap / 4) {	/* hand back what a burst grew */
			fa->cap /= 2;
			fa->v = xrealloc(fa->v, fa->cap * sizeof(*fa->v));
		}
	}
	table_shrink(&m->series, series_hash_of);
	table_shrink(&m->owners, owner_hash_of);
}

void model_render(const struct model *m, struct buf *out, enum expo_format format)
{
	for (size_t i = 0; i < m->nfams; i++) {
		const struct fam *fa = &m->fams[i];

		if (!fa->n)
			continue;
		expo_family_header(out, fa->family, format);
		for (size_t j = 0; j < fa->n; j++)
			expo_sample_u64(out, fa->family, fa->v[j]->labels, fa->v[j]->labels_len,
					fa->v[j]->value);
	}
}

void model_walk(const struct model *m, const struct family *f,
		void (*fn)(void *arg, const char *labels, uint64_t value), void *arg)
{
	for (size_t i = 0; i < m->nfams; i++) {
		const struct fam *fa = &m->fams[i];

		if (fa->family != f)
			continue;
		for (size_t j = 0; j < fa->n; j++)
			fn(arg, fa->v[j]->labels, fa->v[j]->value);
	}
}

void model_stats(const struct model *m, struct model_stats *st)
{
	st->series = m->series.n;
	st->owners = m->owners.n;
	st->overflowed = m->overflowed;
	st->folded = 0;
	for (size_t i = 0; i < m->nfams; i++)
		if (m->fams[i].overflow)	/* less the family's own reference */
			st->folded += m->fams[i].overflow->refs - 1;
}

void model_free(struct model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nfams; i++) {
		for (size_t j = 0; j < m->fams[i].n; j++)
			free(m->fams[i].v[j]);
		free(m->fams[i].v);
	}
	for (size_t i = 0; i < m->owners.nbuckets; i++) {
		struct owner *o = m->owners.buckets[i], *next;

		for (; o; o = next) {
			next = o->hnext;
			free(o);
		}
	}
	free(m->fams);
	free(m->series.buckets);
	free(m->owners.buckets);
	buf_free(&m->scratch);
	free(m);
}
