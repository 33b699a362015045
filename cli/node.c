/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csvctl node list: the nodes as csv-rmd knows them (lib/rmd-ipc.h). */
#include <inttypes.h>
#include <string.h>

#include "csvctl.h"

/* "vol1,vol2", or "-". */
static const char *roles(struct json_object *n, char *buf, size_t len)
{
	struct json_object *r = get(n, "roles");
	buf[0] = '\0';
	for (size_t i = 0; i < count(r); i++) {
		size_t l = strlen(buf);
		snprintf(buf + l, len - l, "%s%s", l ? "," : "", json_object_get_string(at(r, i)));
	}
	return buf[0] ? buf : "-";
}

static void print_nodes(struct json_object *state)
{
	struct json_object *nodes = get(state, "nodes");
	int64_t self = geti(state, "node_id");
	int wname = 4, waddr = 7;
	char name[128];

	if (!count(nodes)) {
		printf("no nodes\n");
		return;
	}
	for (size_t i = 0; i < count(nodes); i++) {
		struct json_object *n = at(nodes, i);
		snprintf(name, sizeof(name), "%s%s", gets(n, "name", "-"), geti(n, "id") == self ? "*" : "");
		wname = col_width(wname, name);
		waddr = col_width(waddr, gets(n, "address", "-"));
	}
	printf("%-4s  %-*s  %-*s  %-6s  %-7s  %-7s  %-6s  %s\n", "ID", wname, "NAME", waddr, "ADDRESS", "MEMBER",
	       "QUORATE", "FENCE", "ADMIN", "ROLES");
	for (size_t i = 0; i < count(nodes); i++) {
		struct json_object *n = at(nodes, i);
		const char *fence = gets(n, "fence", "?");
		char rbuf[1024];
		snprintf(name, sizeof(name), "%s%s", gets(n, "name", "-"), geti(n, "id") == self ? "*" : "");
		printf("%-4" PRId64 "  %-*s  %-*s  %-6s  %-7s  %-7s  %-6s  %s\n", geti(n, "id"), wname, name, waddr,
		       gets(n, "address", "-"), yesno(getb(n, "member")), yesno(getb(n, "quorate")),
		       strcmp(fence, "none") == 0 ? "-" : fence, gets(n, "admin", "?"), roles(n, rbuf, sizeof(rbuf)));
	}
}

static int node_list(const struct ctl_args *a)
{
	struct rmd_conn r;
	struct json_object *s = NULL;
	int rc = EXIT_FAIL;

	if (a->nwords > 2)
		return usage_error("unexpected argument '%s' after 'node list'", a->words[2]);
	if (a->to)
		return usage_error("%s", "--to is only for 'volume move', not 'node list'");
	if (a->wait_s >= 0)
		return usage_error("%s", "--wait is only for 'volume move' and 'volume redirect', not 'node list'");
	if (rmd_conn_open(&r, a->rmd_name) < 0)
		return EXIT_FAIL;
	if (rmd_conn_state(&r, &s) < 0)
		goto out;
	if (a->json) {
		struct json_object *nodes = get(s, "nodes");
		if (!nodes) {
			fprintf(stderr, PROG ": the state of csv-rmd has no \"nodes\"\n");
			goto out;
		}
		print_json(nodes);
	} else {
		print_nodes(s);
	}
	rc = EXIT_OK;
out:
	json_object_put(s);
	rmd_conn_close(&r);
	return fflush(stdout) == 0 ? rc : EXIT_FAIL;
}

int cmd_node(const struct ctl_args *a)
{
	if (a->nwords < 2)
		return usage_error("%s", "'node' needs a command: list");
	if (strcmp(a->words[1], "list") == 0)
		return node_list(a);
	return usage_error("unknown node command '%s' (list)", a->words[1]);
}
