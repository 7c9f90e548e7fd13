// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_inode.c - unit tests of the csvfs inode table (csvfs/inode.c):
 * lookup counting, pins, hard links sharing an entry, forget, growth.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <cmocka.h>

#include "backend.h"
#include "inode.h"

struct be_node {
	int id;
};

static int n_put;

static void fake_put(struct backend *be, struct be_node *n)
{
	if (n) {
		n_put++;
		free(n);
	}
}

static const struct backend_ops fake_ops = { .node_put = fake_put };
static struct backend fake_be = { .ops = &fake_ops };

static struct be_node *node(int id)
{
	struct be_node *n = malloc(sizeof(*n));

	n->id = id;
	return n;
}

static int setup(void **state)
{
	struct cv_itable *t = calloc(1, sizeof(*t));

	n_put = 0;
	assert_int_equal(cv_itable_init(t, &fake_be), 0);
	assert_int_equal(cv_inode_set_root(t, node(0), 1, 2), 0);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	cv_itable_destroy(*state);
	free(*state);
	return 0;
}

static void test_root(void **state)
{
	struct cv_itable *t = *state;
	struct cv_inode *r = cv_inode_get(t, 1);

	assert_non_null(r);
	assert_int_equal(r->ino, 2);
	cv_inode_put(t, r);
	assert_non_null(cv_inode_get(t, 1)); /* still there */
	cv_inode_put(t, r);
	assert_null(cv_inode_get(t, 12345));
}

static void test_hard_links_share(void **state)
{
	struct cv_itable *t = *state;
	struct cv_inode *a, *b, *c;

	a = cv_inode_found(t, node(1), 1, 100);
	b = cv_inode_found(t, node(2), 1, 100); /* same file, other name */
	c = cv_inode_found(t, node(3), 1, 101);
	assert_ptr_equal(a, b);
	assert_ptr_not_equal(a, c);
	assert_int_not_equal(a->nodeid, c->nodeid);
	assert_int_equal(n_put, 1); /* the duplicate handle was put */
	assert_int_equal(a->nlookup, 2);
	assert_int_equal(cv_inode_nodeid_of(t, 1, 100), a->nodeid);
	assert_int_equal(cv_inode_nodeid_of(t, 2, 100), 0); /* other dev */
	cv_inode_put(t, a);
	cv_inode_put(t, b);
	cv_inode_put(t, c);
}

static void test_forget_frees(void **state)
{
	struct cv_itable *t = *state;
	struct cv_inode *a = cv_inode_found(t, node(1), 1, 7);
	uint64_t id = a->nodeid;

	cv_inode_found(t, node(2), 1, 7);
	cv_inode_put(t, a);
	cv_inode_put(t, a);
	assert_int_equal(cv_itable_count(t), 2);
	cv_inode_forget(t, id, 1);
	assert_int_equal(cv_itable_count(t), 2);
	cv_inode_forget(t, id, 1);
	assert_int_equal(cv_itable_count(t), 1);
	assert_int_equal(n_put, 2);
	assert_null(cv_inode_get(t, id));
	cv_inode_forget(t, id, 5); /* unknown: ignored */
}

static void test_pin_outlives_forget(void **state)
{
	struct cv_itable *t = *state;
	struct cv_inode *a = cv_inode_found(t, node(1), 1, 9);
	uint64_t id = a->nodeid;

	/* a request still uses it when the kernel forgets */
	cv_inode_forget(t, id, 1);
	assert_int_equal(cv_itable_count(t), 2);
	cv_inode_pin(t, a);
	cv_inode_put(t, a);
	assert_int_equal(cv_itable_count(t), 2);
	cv_inode_put(t, a);
	assert_int_equal(cv_itable_count(t), 1);
	assert_int_equal(n_put, 1);
}

static void test_forget_more_than_held(void **state)
{
	struct cv_itable *t = *state;
	struct cv_inode *a = cv_inode_found(t, node(1), 1, 11);

	cv_inode_put(t, a);
	cv_inode_forget(t, a->nodeid, 1000);
	assert_int_equal(cv_itable_count(t), 1);
}

static void test_grow(void **state)
{
	struct cv_itable *t = *state;
	uint64_t ids[5000];

	for (int i = 0; i < 5000; i++) {
		struct cv_inode *a = cv_inode_found(t, node(i), 3, 1000 + i);

		ids[i] = a->nodeid;
		cv_inode_put(t, a);
	}
	assert_int_equal(cv_itable_count(t), 5001);
	assert_true(t->nbuckets > 1024);
	for (int i = 0; i < 5000; i++) {
		struct cv_inode *a = cv_inode_get(t, ids[i]);

		assert_non_null(a);
		assert_int_equal(a->ino, 1000 + i);
		assert_int_equal(cv_inode_nodeid_of(t, 3, 1000 + i), ids[i]);
		cv_inode_put(t, a);
	}
	for (int i = 0; i < 5000; i += 2)
		cv_inode_forget(t, ids[i], 1);
	assert_int_equal(cv_itable_count(t), 2501);
	/* nodeids are never reused */
	assert_true(cv_inode_found(t, node(1), 3, 1000)->nodeid > ids[4999]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hard_links_share, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_forget_frees, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pin_outlives_forget,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_more_than_held,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_grow, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
