/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by csv-rmd's unit tests (test-state.c, test-vm-state.c): the
 * facts of a node, a node lost, the state's JSON read back or refused, and
 * the cases of a Check suite. */
#pragma once

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "state.h"

/* The monotonic clock of the facts, in ms. */
static const uint64_t NOW = 1000000;

/* The facts of node id, which must be in them. */
static inline struct r_node_facts *node(struct r_facts *f, uint32_t id)
{
	for (uint32_t i = 0; i < f->nnodes; i++)
		if (f->nodes[i].id == id)
			return &f->nodes[i];
	ck_abort_msg("node %u is not in the facts", id);
	return NULL;
}

/* Node id crashes or is cut off: it leaves the csv-rmd group and the
 * membership; csv-quorumd has not judged it yet. */
static inline void lose(struct r_facts *f, uint32_t id)
{
	struct r_node_facts *n = node(f, id);
	n->rmd = n->member = false;
	n->fence = R_FENCE_NONE;
}

static inline void assert_has(const char *text, const char *word)
{
	ck_assert_msg(strstr(text, word) != NULL, "\"%s\" does not say \"%s\"", text, word);
}

/* o's JSON text read back, as from the saved state or a hello. */
static inline int from_text(struct json_object *o, struct r_state *s, char *err, size_t len)
{
	struct json_object *back = json_tokener_parse(json_object_to_json_string(o));
	ck_assert_ptr_nonnull(back);
	int r = r_state_from_json(back, s, err, len);
	json_object_put(back);
	return r;
}

/* o (consumed) is refused with -EINVAL and a message that says word. */
static inline void assert_rejected(struct json_object *o, const char *word)
{
	struct r_state s;
	char err[256] = "";
	ck_assert_int_eq(r_state_from_json(o, &s, err, sizeof(err)), -EINVAL);
	assert_has(err, word);
	json_object_put(o);
}

/* Adds to s the case name of the n tests, each failing after 10 s. */
static inline void add_case(Suite *s, const char *name, const TTest **tests, size_t n)
{
	TCase *tc = tcase_create(name);
	tcase_set_timeout(tc, 10);
	for (size_t i = 0; i < n; i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
}

#define ADD_CASE(s, name, ...)                                                                                 \
	do {                                                                                                   \
		const TTest *t_[] = { __VA_ARGS__ };                                                           \
		add_case(s, name, t_, sizeof(t_) / sizeof(t_[0]));                                             \
	} while (0)

