/* model.c: the series table: lookup by family and labels, references, owners and their grace, overflow, rendering. */
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "log.h"
#include "model.h"

/*
 * Memory is per series, and a big host has ~100,000 of them (bench-scrape:
 * 10,000 cgroups hold 90,000): a series is a 32-byte record in a slab,
 * linked by 32-bit ids, and its labels are interned.  A cgroup's series
 * store only what follows the owner's label ("}", ",reason=\"bad_frame\"}"),
 * so most label sets are shared by thousands of series.
 */

struct owner {
	struct owner *hnext;
	time_t last_alive;
	uint32_t hash;
	uint32_t id;		/* in the model's owner ids: what a series holds */
	unsigned int refs;	/* series and sources that hold it */
	unsigned int alive_in;	/* the collection that last saw it alive */
	uint32_t grace;		/* seconds */
	unsigned int prefix_len;	/* an owner by label: its key is the label rendered ({cgroup="/a") */
	char key[];
};

/* Rendered labels, stored once however many series carry them. */
struct labelset {
	struct labelset *hnext;
	uint32_t hash;
	uint32_t id;
	uint32_t refs;
	uint32_t len;
	char text[];		/* {a="x"}, ,b="y"} after an owner's prefix, or "" */
};

/* Ids name series, owners and label sets in 4 bytes; 0 is none. */
typedef series_id id32;

struct series {
	uint64_t value;
	id32 owner;		/* 0: never expires (overflow series) */
	id32 labels;		/* after the owner's prefix when prefixed, else all of them */
	id32 hnext;		/* in the table's bucket; a free record: the next free one */
	id32 fnext;		/* in its family, in the order made */
	uint32_t refs;
	unsigned char fam;
	unsigned char prefixed;	/* labels follow the owner's prefix */
};

_Static_assert(sizeof(struct series) == 32, "a series is 32 bytes");

/* Slabs never move, so a series' address holds while it lives. */
#define SERIES_BUCKETS_MIN	1024
#define SLAB_SHIFT	12
#define SLAB_LEN	(1u << SLAB_SHIFT)

/* Pointers by id; a free slot holds the next free id, tagged with bit 0. */
struct ids {
	void **at;
	id32 n, cap, free;
};

struct fam {
	const struct family *family;
	size_t name_len;
	id32 head, *tail;	/* in the order they were made */
	size_t regular;		/* series counted against max_per_family */
	id32 overflow;
};

/* Chained by pointer (owners, label sets). */
struct table {
	void **buckets;
	size_t nbuckets, n;
};

struct model {
	struct fam *fams;
	size_t nfams;
	size_t max_series;
	struct series **slabs;
	size_t nslabs;
	id32 used, free;	/* ids handed out so far; the free list */
	id32 *buckets;		/* the series table, chained by id */
	size_t nbuckets, nseries;
	struct table owners, labelsets;
	struct ids owner_ids, labelset_ids;
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

/* ---- ids ---- */

static id32 ids_put(struct ids *v, void *e)
{
	id32 id;

	if (v->free) {
		id = v->free;
		v->free = (id32)((uintptr_t)v->at[id] >> 1);
	} else {
		if (v->n + 1 >= v->cap) {
			if (v->cap >= UINT32_MAX / 2) {
				log_error("model: more than %u ids", v->cap);
				abort();
			}
			v->cap = v->cap ? v->cap * 2 : 256;
			v->at = xrealloc(v->at, v->cap * sizeof(*v->at));
		}
		id = ++v->n;	/* from 1 */
	}
	v->at[id] = e;
	return id;
}

static void ids_drop(struct ids *v, id32 id)
{
	v->at[id] = (void *)((uintptr_t)v->free << 1 | 1);
	v->free = id;
}

static struct owner *owner_at(const struct model *m, id32 id)
{
	return id ? m->owner_ids.at[id] : NULL;
}

static struct labelset *labelset_at(const struct model *m, id32 id)
{
	return m->labelset_ids.at[id];
}

static struct series *series_at(const struct model *m, id32 id)
{
	return &m->slabs[(id - 1) >> SLAB_SHIFT][(id - 1) & (SLAB_LEN - 1)];
}

/* ---- pointer-chained tables ---- */

#define TABLE_MIN	256	/* chains of the owner and label set tables, at least */

static void table_fit(struct table *t, size_t (*index_of)(const void *, size_t))
{
	chain_fit(&t->buckets, &t->nbuckets, t->n, TABLE_MIN, index_of);
}

static void table_insert(struct table *t, void *entry, uint32_t hash,
			 size_t (*index_of)(const void *, size_t))
{
	void **b;

	table_fit(t, index_of);
	b = &t->buckets[hash & (t->nbuckets - 1)];
	*(void **)entry = *b;
	*b = entry;
	t->n++;
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

static size_t owner_index(const void *e, size_t nb) { return ((const struct owner *)e)->hash & (nb - 1); }
static size_t labelset_index(const void *e, size_t nb) { return ((const struct labelset *)e)->hash & (nb - 1); }

/* ---- label sets ---- */

/* The id of the label set text (len bytes), made on first use, with a reference. */
static id32 labels_get(struct model *m, const char *text, size_t len)
{
	uint32_t h = hash_bytes(HASH_SEED, text, len);
	struct labelset *ls;

	for (ls = m->labelsets.buckets[h & (m->labelsets.nbuckets - 1)]; ls; ls = ls->hnext)
		if (ls->hash == h && ls->len == len && !memcmp(ls->text, text, len))
			break;
	if (!ls) {
		ls = xmalloc(sizeof(*ls) + len + 1);
		memcpy(ls->text, text, len);
		ls->text[len] = '\0';
		ls->len = (uint32_t)len;
		ls->hash = h;
		ls->refs = 0;
		ls->id = ids_put(&m->labelset_ids, ls);
		table_insert(&m->labelsets, ls, h, labelset_index);
	}
	ls->refs++;
	return ls->id;
}

static void labels_put(struct model *m, id32 id)
{
	struct labelset *ls = labelset_at(m, id);

	if (--ls->refs)
		return;
	table_unlink(&m->labelsets, ls, ls->hash);
	ids_drop(&m->labelset_ids, id);
	free(ls);
}

/* ---- the series table ---- */

static uint32_t fam_seed(unsigned int fam)
{
	return fam * 2654435761u ^ HASH_SEED;
}

static size_t prefix_len(const struct model *m, const struct series *s)
{
	return s->prefixed ? owner_at(m, s->owner)->prefix_len : 0;
}

/* A series' hash is of its family and whole rendered labels, as model_series() computes it. */
static uint32_t series_hash_of(const struct model *m, const struct series *s)
{
	const struct labelset *ls = labelset_at(m, s->labels);
	uint32_t h = fam_seed(s->fam);

	if (s->prefixed)
		h = hash_bytes(h, owner_at(m, s->owner)->key, prefix_len(m, s));
	return hash_bytes(h, ls->text, ls->len);
}

static void series_rehash(struct model *m, size_t nb)
{
	id32 *b = xcalloc(nb, sizeof(*b));

	for (size_t i = 0; i < m->nbuckets; i++) {
		id32 id = m->buckets[i], next;

		for (; id; id = next) {
			struct series *s = series_at(m, id);
			size_t j = series_hash_of(m, s) & (nb - 1);

			next = s->hnext;
			s->hnext = b[j];
			b[j] = id;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = nb;
}

static void series_unlink(struct model *m, id32 id, uint32_t h)
{
	id32 *pp = &m->buckets[h & (m->nbuckets - 1)];

	while (*pp && *pp != id)
		pp = &series_at(m, *pp)->hnext;
	if (*pp) {
		*pp = series_at(m, id)->hnext;
		m->nseries--;
	}
}

static id32 series_alloc(struct model *m)
{
	id32 id = m->free;

	if (id) {
		m->free = series_at(m, id)->hnext;
		return id;
	}
	if (m->used % SLAB_LEN == 0) {
		if (m->used > UINT32_MAX - SLAB_LEN) {
			log_error("model: more than %u series", m->used);
			abort();
		}
		m->slabs = xrealloc(m->slabs, (m->nslabs + 1) * sizeof(*m->slabs));
		m->slabs[m->nslabs++] = xmalloc(SLAB_LEN * sizeof(struct series));
	}
	return ++m->used;
}

/* A series out of the table and its family: its label set and id go back. */
static void series_free(struct model *m, id32 id)
{
	struct series *s = series_at(m, id);

	labels_put(m, s->labels);
	s->hnext = m->free;
	m->free = id;
}

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
	series_rehash(m, SERIES_BUCKETS_MIN);
	table_fit(&m->owners, owner_index);
	table_fit(&m->labelsets, labelset_index);
	return m;
}

void model_set_max_series(struct model *m, size_t max)
{
	m->max_series = max;
}

/* ---- owners ---- */

/* The owner with this key (len bytes), made on first use; prefixed: the key is its rendered label. */
static struct owner *owner_get(struct model *m, const char *key, size_t len, int prefixed, time_t grace)
{
	uint32_t h = hash_bytes(HASH_SEED, key, len);
	struct owner *o;

	for (o = m->owners.buckets[h & (m->owners.nbuckets - 1)]; o; o = o->hnext)
		if (o->hash == h && !strcmp(o->key, key))
			break;
	if (!o) {
		o = xcalloc(1, sizeof(*o) + len + 1);
		memcpy(o->key, key, len + 1);
		o->prefix_len = prefixed ? (unsigned int)len : 0;
		o->hash = h;
		o->last_alive = time(NULL);	/* what is first seen gone still gets its grace */
		o->id = ids_put(&m->owner_ids, o);
		table_insert(&m->owners, o, h, owner_index);
	}
	o->grace = grace < 0 ? 0 : grace > UINT32_MAX ? UINT32_MAX : (uint32_t)grace;
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
	ids_drop(&m->owner_ids, o->id);
	free(o);
}

const char *model_owner_key(const struct owner *o)
{
	return o->key;
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

/* ---- series ---- */

static struct fam *fam_of(struct model *m, const struct family *f)
{
	for (size_t i = 0; i < m->nfams; i++)
		if (m->fams[i].family == f)
			return &m->fams[i];
	log_error("model: family %s not registered", f->name);
	abort();
}

static id32 series_find(struct model *m, unsigned int fam, const char *labels, size_t len, uint32_t h)
{
	for (id32 id = m->buckets[h & (m->nbuckets - 1)]; id; id = series_at(m, id)->hnext) {
		const struct series *s = series_at(m, id);
		const struct labelset *ls;
		size_t pl;

		if (s->fam != fam)
			continue;
		pl = prefix_len(m, s);
		ls = labelset_at(m, s->labels);
		if (pl + ls->len == len && (!pl || !memcmp(labels, owner_at(m, s->owner)->key, pl)) &&
		    !memcmp(ls->text, labels + pl, ls->len))
			return id;
	}
	return 0;
}

/* labels (len bytes) are the whole rendered set; what the owner's prefix covers is not stored again. */
static id32 series_make(struct model *m, struct fam *fa, struct owner *o, const char *labels, size_t len,
			uint32_t h)
{
	size_t pl = o && o->prefix_len && o->prefix_len <= len && !memcmp(labels, o->key, o->prefix_len) ?
		    o->prefix_len : 0;
	id32 id = series_alloc(m);
	struct series *s = series_at(m, id);

	memset(s, 0, sizeof(*s));
	s->labels = labels_get(m, labels + pl, len - pl);
	s->prefixed = pl > 0;
	s->fam = (unsigned char)(fa - m->fams);
	s->value = fa->family->info ? 1 : 0;
	if (o) {
		s->owner = o->id;
		o->refs++;
		m->unheld++;
	}
	if (m->nseries >= 2 * m->nbuckets)
		series_rehash(m, m->nbuckets * 2);
	s->hnext = m->buckets[h & (m->nbuckets - 1)];
	m->buckets[h & (m->nbuckets - 1)] = id;
	m->nseries++;
	*fa->tail = id;
	fa->tail = &s->fnext;
	return id;
}

/*
 * The family's overflow series: the label names of the set rendered in
 * m->scratch ({a="x",b="y"} or ""), every value "overflow".
 */
static id32 overflow_series(struct model *m, struct fam *fa)
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
		series_at(m, fa->overflow)->refs++;	/* the family's own: never pruned */
		buf_free(&ov);
	}
	return fa->overflow;
}

/* The series of family f labelled as m->scratch holds, made on first use, with a reference. */
static id32 series_get(struct model *m, const struct family *f, struct owner *o)
{
	struct fam *fa = fam_of(m, f);
	unsigned int fam = (unsigned int)(fa - m->fams);
	uint32_t h = hash_bytes(fam_seed(fam), m->scratch.data, m->scratch.len);
	id32 id = series_find(m, fam, m->scratch.data, m->scratch.len, h);
	struct series *s;

	if (!id) {
		if (m->max_series && fa->regular >= m->max_series) {
			m->overflowed++;
			if (f->info)
				return 0;
			id = overflow_series(m, fa);
		} else {
			id = series_make(m, fa, o, m->scratch.data, m->scratch.len, h);
			fa->regular++;
		}
		s = series_at(m, id);
	} else {
		s = series_at(m, id);
		if (o && s->owner && s->owner != o->id && !s->prefixed) {
			/*
			 * The same series reached through another owner: the
			 * most recent one bounds its life.  (A prefixed series
			 * cannot be: its owner is keyed by the label it starts
			 * with.)
			 */
			o->refs++;
			model_owner_put(m, owner_at(m, s->owner));
			s->owner = o->id;
		}
	}
	if (!s->refs++ && s->owner)
		m->unheld--;
	return id;
}

series_id model_series(struct model *m, const struct family *f, struct owner *o,
		       size_t nlabels, const struct label *labels)
{
	buf_reset(&m->scratch);
	buf_append(&m->scratch, "", 0);
	expo_labels(&m->scratch, nlabels, labels);
	return series_get(m, f, o);
}

series_id model_series_under(struct model *m, const struct family *f, struct owner *o,
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

void model_series_put(struct model *m, series_id id)
{
	struct series *s = id ? series_at(m, id) : NULL;

	if (s && s->refs && !--s->refs && s->owner)
		m->unheld++;
}

void model_add(struct model *m, series_id id, uint64_t delta)
{
	series_at(m, id)->value += delta;
}

void model_prune(struct model *m, time_t now)
{
	if (!m->unheld)
		return;
	for (size_t i = 0; i < m->nfams; i++) {
		struct fam *fa = &m->fams[i];
		id32 *pp = &fa->head, id;

		while ((id = *pp)) {
			struct series *s = series_at(m, id);
			struct owner *o = owner_at(m, s->owner);

			if (s->refs || !o || o->alive_in == m->collection || now - o->last_alive < (time_t)o->grace) {
				pp = &s->fnext;
				continue;
			}
			*pp = s->fnext;
			series_unlink(m, id, series_hash_of(m, s));
			series_free(m, id);
			model_owner_put(m, o);
			m->unheld--;
			fa->regular--;
		}
		fa->tail = pp;
	}
	/* the series are chained by id, not by pointer: chain_fit's policy, by hand */
	if (m->nbuckets > SERIES_BUCKETS_MIN && m->nseries < m->nbuckets / 8)
		series_rehash(m, m->nbuckets / 4 > SERIES_BUCKETS_MIN ? m->nbuckets / 4 : SERIES_BUCKETS_MIN);
	table_fit(&m->owners, owner_index);
	table_fit(&m->labelsets, labelset_index);
}

void model_render(const struct model *m, struct buf *out, enum expo_format format)
{
	for (size_t i = 0; i < m->nfams; i++) {
		const struct fam *fa = &m->fams[i];

		if (!fa->head)
			continue;
		expo_family_header(out, fa->family, format);
		for (id32 id = fa->head; id; ) {
			const struct series *s = series_at(m, id);
			const struct labelset *ls = labelset_at(m, s->labels);
			size_t pl = prefix_len(m, s);

			expo_sample_u64(out, fa->family->name, fa->name_len, pl ? owner_at(m, s->owner)->key : "",
					pl, ls->text, ls->len, s->value);
			id = s->fnext;
		}
	}
}

void model_walk(struct model *m, const struct family *f,
		void (*fn)(void *arg, const char *labels, uint64_t value), void *arg)
{
	const struct fam *fa = fam_of(m, f);

	for (id32 id = fa->head; id; ) {
		const struct series *s = series_at(m, id);
		const struct labelset *ls = labelset_at(m, s->labels);

		id = s->fnext;
		if (!s->prefixed) {
			fn(arg, ls->text, s->value);
			continue;
		}
		buf_reset(&m->scratch);
		buf_append(&m->scratch, owner_at(m, s->owner)->key, prefix_len(m, s));
		buf_append(&m->scratch, ls->text, ls->len);
		fn(arg, m->scratch.data, s->value);
	}
}

void model_stats(const struct model *m, struct model_stats *st)
{
	st->series = m->nseries;
	st->owners = m->owners.n;
	st->overflowed = m->overflowed;
	st->folded = 0;
	for (size_t i = 0; i < m->nfams; i++)
		if (m->fams[i].overflow)	/* less the family's own reference */
			st->folded += series_at(m, m->fams[i].overflow)->refs - 1;
}

void model_free(struct model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nslabs; i++)
		free(m->slabs[i]);
	free(m->slabs);
	free(m->buckets);
	chain_free(&m->owners.buckets, &m->owners.nbuckets, NULL);
	chain_free(&m->labelsets.buckets, &m->labelsets.nbuckets, NULL);
	free(m->owner_ids.at);
	free(m->labelset_ids.at);
	free(m->fams);
	buf_free(&m->scratch);
	free(m);
}
