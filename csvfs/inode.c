// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * inode.c - the inode table (see inode.h for the rules): two chained hash
 * tables over the same entries, grown by doubling under tbl->lock.
 */
#include <errno.h>
#include <stdlib.h>

#include "backend.h"
#include "inode.h"

#define CV_ITABLE_MIN 1024

static size_t hash_id(uint64_t id, size_t n)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & (n - 1);
}

static size_t hash_key(dev_t dev, ino_t ino, size_t n)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;

	return (size_t)(h >> 17) & (n - 1);
}

int cv_itable_init(struct cv_itable *t, struct backend *be)
{
	t->by_id = calloc(CV_ITABLE_MIN, sizeof(*t->by_id));
	t->by_key = calloc(CV_ITABLE_MIN, sizeof(*t->by_key));
	if (!t->by_id || !t->by_key) {
		free(t->by_id);
		free(t->by_key);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->be = be;
	t->nbuckets = CV_ITABLE_MIN;
	t->count = 0;
	t->next_nodeid = 2; /* 1 is FUSE_ROOT_ID */
	return 0;
}

static void link_entry(struct cv_itable *t, struct cv_inode *i)
{
	size_t a = hash_id(i->nodeid, t->nbuckets);
	size_t b = hash_key(i->dev, i->ino, t->nbuckets);

	i->next_id = t->by_id[a];
	t->by_id[a] = i;
	i->next_key = t->by_key[b];
	t->by_key[b] = i;
}

/* Called with t->lock held; failure only means chains stay longer. */
static void grow(struct cv_itable *t)
{
	size_t n = t->nbuckets * 2, old = t->nbuckets;
	struct cv_inode **oid = t->by_id, **nid, **nkey;

	nid = calloc(n, sizeof(*nid));
	nkey = calloc(n, sizeof(*nkey));
	if (!nid || !nkey) {
		free(nid);
		free(nkey);
		return;
	}
	free(t->by_key);
	t->by_id = nid;
	t->by_key = nkey;
	t->nbuckets = n;
	for (size_t b = 0; b < old; b++) {
		struct cv_inode *i = oid[b], *next;

		for (; i; i = next) {
			next = i->next_id;
			link_entry(t, i);
		}
	}
	free(oid);
}

static void unlink_entry(struct cv_itable *t, struct cv_inode *i)
{
	struct cv_inode **pp;

	pp = &t->by_id[hash_id(i->nodeid, t->nbuckets)];
	while (*pp != i)
		pp = &(*pp)->next_id;
	*pp = i->next_id;
	pp = &t->by_key[hash_key(i->dev, i->ino, t->nbuckets)];
	while (*pp != i)
		pp = &(*pp)->next_key;
	*pp = i->next_key;
	t->count--;
}

static struct cv_inode *find_id(struct cv_itable *t, uint64_t nodeid)
{
	struct cv_inode *i = t->by_id[hash_id(nodeid, t->nbuckets)];

	while (i && i->nodeid != nodeid)
		i = i->next_id;
	return i;
}

static struct cv_inode *find_key(struct cv_itable *t, dev_t dev, ino_t ino)
{
	struct cv_inode *i = t->by_key[hash_key(dev, ino, t->nbuckets)];

	while (i && (i->dev != dev || i->ino != ino))
		i = i->next_key;
	return i;
}

static struct cv_inode *insert(struct cv_itable *t, struct be_node *node,
			       dev_t dev, ino_t ino, uint64_t nodeid)
{
	struct cv_inode *i = calloc(1, sizeof(*i));

	if (!i)
		return NULL;
	i->node = node;
	i->dev = dev;
	i->ino = ino;
	i->nodeid = nodeid ? nodeid : t->next_nodeid++;
	if (t->count >= t->nbuckets * 2)
		grow(t);
	link_entry(t, i);
	t->count++;
	return i;
}

int cv_inode_set_root(struct cv_itable *t, struct be_node *node, dev_t dev,
		      ino_t ino)
{
	struct cv_inode *i;

	pthread_mutex_lock(&t->lock);
	i = insert(t, node, dev, ino, 1);
	if (i)
		i->nlookup = 1;
	pthread_mutex_unlock(&t->lock);
	return i ? 0 : -ENOMEM;
}

struct cv_inode *cv_inode_found(struct cv_itable *t, struct be_node *node,
				dev_t dev, ino_t ino)
{
	struct cv_inode *i;
	struct be_node *drop = NULL;

	pthread_mutex_lock(&t->lock);
	i = find_key(t, dev, ino);
	if (i)
		drop = node;
	else
		i = insert(t, node, dev, ino, 0);
	if (i) {
		i->nlookup++;
		i->pins++;
	} else {
		drop = node;
	}
	pthread_mutex_unlock(&t->lock);
	if (drop)
		t->be->ops->node_put(t->be, drop);
	return i;
}

struct cv_inode *cv_inode_get(struct cv_itable *t, uint64_t nodeid)
{
	struct cv_inode *i;

	pthread_mutex_lock(&t->lock);
	i = find_id(t, nodeid);
	if (i)
		i->pins++;
	pthread_mutex_unlock(&t->lock);
	return i;
}

void cv_inode_pin(struct cv_itable *t, struct cv_inode *i)
{
	pthread_mutex_lock(&t->lock);
	i->pins++;
	pthread_mutex_unlock(&t->lock);
}

uint64_t cv_inode_nodeid_of(struct cv_itable *t, dev_t dev, ino_t ino)
{
	struct cv_inode *i;
	uint64_t id;

	pthread_mutex_lock(&t->lock);
	i = find_key(t, dev, ino);
	id = i ? i->nodeid : 0;
	pthread_mutex_unlock(&t->lock);
	return id;
}

/* With t->lock held: unlink i if unused; returns it for freeing. */
static struct cv_inode *maybe_unlink(struct cv_itable *t, struct cv_inode *i)
{
	if (i->nlookup || i->pins)
		return NULL;
	unlink_entry(t, i);
	return i;
}

static void free_inode(struct cv_itable *t, struct cv_inode *i)
{
	if (i) {
		t->be->ops->node_put(t->be, i->node);
		free(i);
	}
}

void cv_inode_put(struct cv_itable *t, struct cv_inode *i)
{
	struct cv_inode *dead;

	if (!i)
		return;
	pthread_mutex_lock(&t->lock);
	i->pins--;
	dead = maybe_unlink(t, i);
	pthread_mutex_unlock(&t->lock);
	free_inode(t, dead);
}

void cv_inode_forget(struct cv_itable *t, uint64_t nodeid, uint64_t n)
{
	struct cv_inode *i, *dead = NULL;

	pthread_mutex_lock(&t->lock);
	i = find_id(t, nodeid);
	if (i) {
		i->nlookup = n > i->nlookup ? 0 : i->nlookup - n;
		dead = maybe_unlink(t, i);
	}
	pthread_mutex_unlock(&t->lock);
	free_inode(t, dead);
}

size_t cv_itable_count(struct cv_itable *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void cv_itable_destroy(struct cv_itable *t)
{
	for (size_t b = 0; b < t->nbuckets; b++) {
		struct cv_inode *i = t->by_id[b], *next;

		for (; i; i = next) {
			next = i->next_id;
			free_inode(t, i);
		}
	}
	free(t->by_id);
	free(t->by_key);
	pthread_mutex_destroy(&t->lock);
}
