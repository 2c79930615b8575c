/* model.c: the series table: lookup by family and labels, references, owners and their grace, overflow, rendering. */
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "log.h"
#include "model.h"

struct owner {
	struct owner *hnext;
	uint32_t hash;
	unsigned int refs;	/* series and sources that hold it */
	time_t last_alive;
	time_t grace;
	unsigned int alive_in;	/* the collection that last saw it alive */
	unsigned int prefix_len;	/* an owner by label: its key is the label rendered ({cgroup="/a") */
	char key[];
};

/*
 * A series whose first label is its owner's (every cgroup series) keeps only
 * the rest of its labels: the owner's rendered label is stored once, not in
 * each of the cgroup's series.
 */
struct series {
	struct series *hnext;	/* in the table's bucket */
	struct series *fnext;	/* in its family, in the order made */
	struct owner *owner;	/* NULL: never expires (overflow series) */
	uint64_t value;
	unsigned int refs;
	unsigned char fam;
	unsigned char prefixed;	/* labels follow the owner's prefix */
	char labels[];		/* rendered, NUL-terminated: {a="x"}, ,b="y"} after a prefix, or "" */
};

struct fam {
	const struct family *family;
	size_t name_len;
	struct series *head, **tail;	/* in the order they were made */
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
	size_t unheld;		/* series with an owner that nothing holds: all a prune may drop */
	unsigned int collection;
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

/* Chains stay short: double at two entries a bucket; a table a burst grew shrinks once mostly empty. */
static void table_grow(struct table *t, size_t (*index_of)(const void *, size_t))
{
	chain_rehash(&t->buckets, &t->nbuckets, t->nbuckets ? t->nbuckets * 2 : 1024, index_of);
}

static int table_full(const struct table *t)
{
	return t->n >= 2 * t->nbuckets;
}

static void table_shrink(struct table *t, size_t (*index_of)(const void *, size_t))
{
	if (t->nbuckets > 1024 && t->n < t->nbuckets / 4)
		chain_rehash(&t->buckets, &t->nbuckets, t->nbuckets / 4, index_of);
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

static uint32_t fam_seed(unsigned int fam)
{
	return fam * 2654435761u ^ HASH_SEED;
}

/* A series' hash is of its family and whole rendered labels, as model_series() computes it. */
static uint32_t series_hash_of(const void *e)
{
	const struct series *s = e;
	uint32_t h = fam_seed(s->fam);

	if (s->prefixed)
		h = hash_bytes(h, s->owner->key, s->owner->prefix_len);
	return hash_bytes(h, s->labels, strlen(s->labels));
}

static size_t series_index(const void *e, size_t nb) { return series_hash_of(e) & (nb - 1); }
static size_t owner_index(const void *e, size_t nb) { return ((const struct owner *)e)->hash & (nb - 1); }

struct model *model_new(const struct family *const *families, size_t nfamilies)
{
	struct model *m = xcalloc(1, sizeof(*m));

	m->fams = xcalloc(nfamilies, sizeof(*m->fams));
	m->nfams = nfamilies;
	if (nfamilies > UCHAR_MAX + 1) {
		log_error("model: %zu families, at most %d", nfamilies, UCHAR_MAX + 1);
		abort();
	}
	for (size_t i = 0; i < nfamilies; i++) {
		m->fams[i].family = families[i];
		m->fams[i].name_len = strlen(families[i]->name);
		m->fams[i].tail = &m->fams[i].head;
	}
	table_grow(&m->series, series_index);
	table_grow(&m->owners, owner_index);
	return m;
}

void model_set_max_series(struct model *m, size_t max)
{
	m->max_series = max;
}

/* The owner with this key (len bytes), made on first use; prefixed: the key is its rendered label. */
static struct owner *owner_get(struct model *m, const char *key, size_t len, int prefixed, time_t grace)
{
	uint32_t h = hash_bytes(HASH_SEED, key, len);
	struct owner *o;

	for (o = m->owners.buckets[h & (m->owners.nbuckets - 1)]; o; o = o->hnext)
		if (o->hash == h && !strcmp(o->key, key))
			break;
	if (!o) {
		if (table_full(&m->owners))
			table_grow(&m->owners, owner_index);
		o = xcalloc(1, sizeof(*o) + len + 1);
		memcpy(o->key, key, len + 1);
		o->prefix_len = prefixed ? (unsigned int)len : 0;
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

struct owner *model_owner(struct model *m, const char *key, time_t grace)
{
	/* the same table as the label-keyed owners: their keys start with '{', these never do here */
	return owner_get(m, key, strlen(key), 0, grace);
}

struct owner *model_owner_label(struct model *m, const struct label *label, time_t grace)
{
	buf_reset(&m->scratch);
	expo_labels(&m->scratch, 1, label);
	m->scratch.data[--m->scratch.len] = '\0';	/* {name="value", less its closing brace */
	return owner_get(m, m->scratch.data, m->scratch.len, 1, grace);
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

static size_t prefix_len(const struct series *s)
{
	return s->prefixed ? s->owner->prefix_len : 0;
}

static struct series *series_find(struct model *m, unsigned int fam, const char *labels,
				  size_t len, uint32_t h)
{
	for (struct series *s = m->series.buckets[h & (m->series.nbuckets - 1)]; s; s = s->hnext) {
		size_t pl = prefix_len(s);

		/* no NUL in rendered labels: strncmp stops at the end of the shorter */
		if (s->fam == fam && pl <= len && (!pl || !memcmp(labels, s->owner->key, pl)) &&
		    !strncmp(s->labels, labels + pl, len - pl) && !s->labels[len - pl])
			return s;
	}
	return NULL;
}

/* labels (len bytes) are the whole rendered set; what the owner's prefix covers is not copied. */
static struct series *series_make(struct model *m, struct fam *fa, struct owner *o,
				  const char *labels, size_t len, uint32_t h)
{
	size_t pl = o && o->prefix_len && o->prefix_len <= len && !memcmp(labels, o->key, o->prefix_len) ?
		    o->prefix_len : 0;
	struct series *s = xcalloc(1, offsetof(struct series, labels) + len - pl + 1);

	memcpy(s->labels, labels + pl, len - pl);
	s->prefixed = pl > 0;
	s->fam = (unsigned char)(fa - m->fams);
	s->value = fa->family->info ? 1 : 0;
	s->owner = o;
	if (o) {
		o->refs++;
		m->unheld++;
	}
	if (table_full(&m->series))
		table_grow(&m->series, series_index);
	s->hnext = m->series.buckets[h & (m->series.nbuckets - 1)];
	m->series.buckets[h & (m->series.nbuckets - 1)] = s;
	m->series.n++;
	*fa->tail = s;
	fa->tail = &s->fnext;
	return s;
}

/*
 * The family's overflow series: the label names of the set rendered in
 * m->scratch ({a="x",b="y"} or ""), every value "overflow".
 */
static struct series *overflow_series(struct model *m, struct fam *fa)
{
	if (!fa->overflow) {
		struct buf ov = { 0 };
		const char *p = m->scratch.data;
		uint32_t h;

		buf_append(&ov, "", 0);
		if (p && *p == '{') {
			for (p++; *p && *p != '}'; ) {
				const char *eq = strchr(p, '=');

				if (!eq)
					break;
				buf_append(&ov, ov.len ? "," : "{", 1);
				buf_append(&ov, p, (size_t)(eq - p));
				buf_append(&ov, "=\"overflow\"", 11);
				for (p = eq + 2; *p && *p != '"'; p++)	/* the escaped value */
					if (*p == '\\' && p[1])
						p++;
				if (*p)
					p++;
				if (*p == ',')
					p++;
			}
			buf_append(&ov, "}", 1);
		}
		h = hash_bytes(fam_seed((unsigned int)(fa - m->fams)), ov.data, ov.len);
		fa->overflow = series_make(m, fa, NULL, ov.data, ov.len, h);
		fa->overflow->refs++;	/* the family's own: never pruned */
		buf_free(&ov);
	}
	return fa->overflow;
}

/* The series of family f labelled as m->scratch holds, made on first use, with a reference. */
static struct series *series_get(struct model *m, const struct family *f, struct owner *o)
{
	struct fam *fa = fam_of(m, f);
	unsigned int fam = (unsigned int)(fa - m->fams);
	uint32_t h = hash_bytes(fam_seed(fam), m->scratch.data, m->scratch.len);
	struct series *s = series_find(m, fam, m->scratch.data, m->scratch.len, h);

	if (!s) {
		if (m->max_series && fa->regular >= m->max_series) {
			m->overflowed++;
			if (f->info)
				return NULL;
			s = overflow_series(m, fa);
		} else {
			s = series_make(m, fa, o, m->scratch.data, m->scratch.len, h);
			fa->regular++;
		}
	} else if (s->owner != o && o && s->owner && !s->prefixed) {
		/*
		 * The same series reached through another owner: the most
		 * recent one bounds its life.  (A prefixed series cannot be:
		 * its owner is keyed by the label it starts with.)
		 */
		o->refs++;
		model_owner_put(m, s->owner);
		s->owner = o;
	}
	if (!s->refs++ && s->owner)
		m->unheld--;
	return s;
}

struct series *model_series(struct model *m, const struct family *f, struct owner *o,
			    size_t nlabels, const struct label *labels)
{
	buf_reset(&m->scratch);
	buf_append(&m->scratch, "", 0);
	expo_labels(&m->scratch, nlabels, labels);
	return series_get(m, f, o);
}

struct series *model_series_under(struct model *m, const struct family *f, struct owner *o,
				  size_t nlabels, const struct label *labels)
{
	size_t at;

	if (!o->prefix_len) {
		log_error("model: series under %s, an owner with no label", o->key);
		abort();
	}
	buf_reset(&m->scratch);
	buf_append(&m->scratch, o->key, o->prefix_len);
	at = m->scratch.len;
	expo_labels(&m->scratch, nlabels, labels);
	if (m->scratch.len == at)
		buf_append(&m->scratch, "}", 1);
	else
		m->scratch.data[at] = ',';	/* {b="y"} continues {a="x" */
	return series_get(m, f, o);
}

void model_series_put(struct model *m, struct series *s)
{
	if (s && s->refs && !--s->refs && s->owner)
		m->unheld++;
}

void model_add(struct series *s, uint64_t delta)
{
	s->value += delta;
}

void model_prune(struct model *m, time_t now)
{
	if (!m->unheld)
		return;
	for (size_t i = 0; i < m->nfams; i++) {
		struct fam *fa = &m->fams[i];
		struct series **pp = &fa->head, *s;

		while ((s = *pp)) {
			if (s->refs || !s->owner || s->owner->alive_in == m->collection ||
			    now - s->owner->last_alive < s->owner->grace) {
				pp = &s->fnext;
				continue;
			}
			*pp = s->fnext;
			table_unlink(&m->series, s, series_hash_of(s));
			model_owner_put(m, s->owner);
			m->unheld--;
			fa->regular--;
			free(s);
		}
		fa->tail = pp;
	}
	table_shrink(&m->series, series_index);
	table_shrink(&m->owners, owner_index);
}

void model_render(const struct model *m, struct buf *out, enum expo_format format)
{
	for (size_t i = 0; i < m->nfams; i++) {
		const struct fam *fa = &m->fams[i];

		if (!fa->head)
			continue;
		expo_family_header(out, fa->family, format);
		for (const struct series *s = fa->head; s; s = s->fnext) {
			size_t pl = prefix_len(s);

			expo_sample_u64(out, fa->family->name, fa->name_len, pl ? s->owner->key : "", pl,
					s->labels, strlen(s->labels), s->value);
		}
	}
}

void model_walk(struct model *m, const struct family *f,
		void (*fn)(void *arg, const char *labels, uint64_t value), void *arg)
{
	for (size_t i = 0; i < m->nfams; i++) {
		const struct fam *fa = &m->fams[i];

		if (fa->family != f)
			continue;
		for (const struct series *s = fa->head; s; s = s->fnext) {
			if (!s->prefixed) {
				fn(arg, s->labels, s->value);
				continue;
			}
			buf_reset(&m->scratch);
			buf_append(&m->scratch, s->owner->key, s->owner->prefix_len);
			buf_append(&m->scratch, s->labels, strlen(s->labels));
			fn(arg, m->scratch.data, s->value);
		}
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
		struct series *s = m->fams[i].head, *next;

		for (; s; s = next) {
			next = s->fnext;
			free(s);
		}
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
