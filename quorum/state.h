/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The facts csv-quorumd holds about the cluster, and the pure logic on
 * them: the timing checks, the state of each node on each volume from
 * membership and disk heartbeat, this node's lease, and the events that a
 * change of state gives. No I/O, no corosync, no locks: the daemon fills a
 * struct q_state and these functions judge it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

#define Q_MAX_NODES CSV_MAX_NODES_LIMIT  /* corosync nodelist entries kept */
#define Q_MAX_VOLUMES 16                 /* --volume options */
#define Q_MAX_LINKS 8                    /* knet links per node (CFG_MAX_LINKS) */
#define Q_NAME_MAX 64                    /* node names, as in the heartbeat block */
#define Q_ADDR_MAX 64
#define Q_MAX_ADDRS 8                    /* ring0_addr .. ring7_addr */
#define Q_ERROR_MAX 256

/* A heartbeat is judged lost after this many of its writer's intervals
 * without a change. */
#define Q_HB_MISSES 3u

/* ---- timing ---------------------------------------------------------------- */

struct q_timing {
	uint32_t heartbeat_ms;  /* H: disk heartbeat interval */
	uint32_t lease_ms;      /* L: lease */
	uint32_t token_ms;      /* T: corosync token timeout */
};

/* Checks that the timings do not contradict each other: H > 0, H * 3 <= L
 * (a lease outlives several heartbeats) and L > T (a lease outlives the
 * time membership takes to notice a lost member). On a contradiction
 * returns -EINVAL and writes into err a sentence naming the values. */
int q_timing_check(const struct q_timing *t, char *err, size_t errlen);

/* ---- per-volume heartbeat facts -------------------------------------------- */

/* One node slot of a volume as this node last read it. */
struct q_slot {
	bool valid;              /* the block verified (a damaged one is not) */
	uint32_t node_id;        /* 0: never used */
	uint32_t flags;          /* CSV_HB_* */
	uint32_t interval_ms;    /* the writer's own heartbeat interval */
	uint64_t seq, incarnation;
	uint64_t wall_ns;
	char name[Q_NAME_MAX + 1];
	uint64_t changed_ms;     /* this node's monotonic ms when seq or
				  * incarnation last changed; 0: no change seen */
	uint64_t fence_ack_seq;  /* the fence request its writer acknowledged */
};

/* A --volume: what its heartbeat thread found and did. */
struct q_volume {
	char spec[512];          /* the path or NBD URI given */
	bool identified;         /* opened once: the fields below are known */
	uint8_t uuid[16];
	char uuid_str[37];
	char label[CSV_LABEL_MAX + 1];
	uint32_t max_nodes;
	uint32_t slot;           /* this node's slot */
	bool open;               /* a working handle now */
	uint64_t last_read_ok_ms;   /* last read of every slot that succeeded */
	uint64_t last_write_ok_ms;  /* last write + flush of the own slot */
	uint32_t write_latency_us;  /* of that write and flush */
	uint64_t writes_ok, writes_failed, reads_failed;
	uint64_t seq, incarnation;  /* of the own slot */
	char error[Q_ERROR_MAX]; /* the last failure, "" if none since */
	uint64_t error_ms;
	uint32_t nslots;
	struct q_slot slots[Q_MAX_NODES];
	/* This node's own mailbox, as last read. */
	uint32_t mailbox_from, mailbox_request;
	uint64_t mailbox_seq;
	/* The disk witness block, as last read (only where the witness runs). */
	bool witness_valid;
	uint32_t witness_holder;      /* 0: free */
	uint64_t witness_generation, witness_seq;
	uint64_t witness_changed_ms;  /* when it was last seen to change; 0: not yet */
	uint64_t witness_held_ms;     /* when this node last renewed it as its
				       * holder (before the write); 0: never */
};

/* ---- per-node facts ----------------------------------------------------- */

struct q_link {
	bool enabled, connected;
	uint32_t mtu;
	char src[Q_ADDR_MAX], dst[Q_ADDR_MAX];
};

/* What another node reported of its own writes over CPG. */
struct q_report_vol {
	uint8_t uuid[16];
	uint32_t write_latency_us;
	bool write_ok;           /* its last write succeeded within 3 H */
};

/* Whether a node that left the membership has been fenced, as the quorate
 * side sees it. */
enum q_fence {
	Q_FENCE_NONE,      /* a member, or not judged (this side is not quorate) */
	Q_FENCE_PENDING,   /* lost: its roles may not be reused yet */
	Q_FENCE_DONE,      /* lost and fenced: its roles are free */
};

enum q_fenced_by {
	Q_FENCED_BY_NONE,
	Q_FENCED_BY_LEASE, /* its lease has expired on this node's clock */
	Q_FENCED_BY_ACK,   /* it wrote its fence acknowledgement on a volume */
	Q_FENCED_BY_AGENT, /* a fence agent confirmed it */
};

struct q_node {
	uint32_t id;
	uint32_t position;       /* in the corosync nodelist: the default slot */
	char name[Q_NAME_MAX + 1];
	uint32_t naddrs;
	char addrs[Q_MAX_ADDRS][Q_ADDR_MAX];
	bool member;             /* in the corosync (totem) membership */
	bool daemon;             /* in the CPG group of csv-quorumd */
	uint32_t votes;
	bool status_known;       /* cfg node status read */
	bool reachable;
	uint32_t nlinks;
	struct q_link links[Q_MAX_LINKS];
	uint64_t report_ms;      /* when its last report arrived, 0: none */
	uint32_t nreport;
	struct q_report_vol report[Q_MAX_VOLUMES];
	/* Fencing (see q_fence_update). */
	enum q_fence fence;
	enum q_fenced_by fenced_by;
	uint64_t lost_ms;        /* when this side judged it lost */
	uint64_t fenced_ms;
	uint64_t fence_seq;      /* the fence request written to its mailbox */
	bool agent_done;         /* a fence agent confirmed its fence */
	bool seen_member;        /* this node saw it in the membership */
	uint64_t left_ms;        /* when it was last seen to leave; 0: member */
};

/* ---- the whole state ------------------------------------------------------ */

enum q_san {
	Q_SAN_UP,          /* member, heartbeating */
	Q_SAN_LOST,        /* member, not heartbeating */
	Q_SAN_PARTITIONED, /* not a member, still heartbeating */
	Q_SAN_DEAD,        /* neither */
	Q_SAN_NO_DAEMON,   /* member without csv-quorumd, not heartbeating */
	Q_SAN_UNKNOWN,     /* this node cannot read the volume: no judgement */
};

enum q_lease {
	Q_LEASE_VALID,     /* renewed now */
	Q_LEASE_EXPIRING,  /* not renewed any more, not yet expired */
	Q_LEASE_EXPIRED,
};

enum {
	Q_OPT_TWO_NODE = 1 << 0,
	Q_OPT_WAIT_FOR_ALL = 1 << 1,
	Q_OPT_LAST_MAN_STANDING = 1 << 2,
	Q_OPT_AUTO_TIE_BREAKER = 1 << 3,
};

struct q_state {
	uint32_t node_id;        /* this node */
	char node_name[Q_NAME_MAX + 1];
	struct q_timing timing;
	bool connected;          /* to corosync */
	char disconnect_reason[Q_ERROR_MAX];
	bool quorate;
	uint32_t expected_votes, total_votes, quorum, node_votes;
	uint32_t options;        /* Q_OPT_* */
	uint64_t ring_seq;
	uint32_t nnodes;
	struct q_node nodes[Q_MAX_NODES];
	uint32_t nvolumes;
	struct q_volume volumes[Q_MAX_VOLUMES];
	uint64_t lease_renewed_ms;   /* 0: never */
	bool lease_renewing;         /* the last q_lease_renew() renewed it */
	/* Self-fence: this node's side. */
	uint64_t fence_request_seq;  /* a fence request in its mailbox not yet
				      * acknowledged; 0: none */
	uint32_t fence_request_from;
	uint64_t fence_acked_seq;    /* the last request it acknowledged */
	uint64_t fence_ignored_seq;  /* the last request it was right to ignore:
				      * not obeyed later either */
	bool self_fenced;            /* its I/O is stopped: holders stopped or killed */
	uint64_t self_fenced_ring;   /* the ring in which it fenced itself */
	bool fenced_on_request;      /* another node asked for it: it lasts
				      * until a new ring, not just until quorum */
	/* When quorum and ring last changed (q_fence_update). */
	bool settle_quorate;
	uint64_t settle_ring, settle_ms;
	/* The disk witness (volume 0), for a two-node cluster. */
	bool witness;                /* in use */
	bool cast_vote;              /* this node's partition holds it */
};

/* What the rules make of the facts at one moment: what is compared to
 * tell a change. */
struct q_view {
	bool connected, quorate;
	uint32_t nmembers;
	enum q_lease lease;
	bool cast_vote;
	uint32_t nnodes;
	struct {
		uint32_t id;
		bool member, daemon;
		enum q_san san[Q_MAX_VOLUMES];
		enum q_fence fence;
	} nodes[Q_MAX_NODES];
	uint32_t nvolumes;
};

const char *q_san_str(enum q_san s);
const char *q_lease_str(enum q_lease l);

/* The state of a node on a volume. member: in the corosync membership;
 * daemon: its csv-quorumd is in the CPG group; heartbeating: its slot
 * changed recently; readable: this node itself read the volume recently
 * (else nothing can be told from the disk). */
enum q_san q_classify(bool member, bool daemon, bool heartbeating, bool readable);

/* Whether a slot shows a live heartbeat at now_ms: it verified, its
 * writer runs (CSV_HB_RUNNING) and it changed within Q_HB_MISSES of the
 * writer's interval (default_interval_ms when the slot names none). */
bool q_slot_heartbeating(const struct q_slot *s, uint32_t default_interval_ms, uint64_t now_ms);

/* Whether this node read the whole volume recently enough to judge the
 * others' slots: within Q_HB_MISSES heartbeat intervals. */
bool q_volume_readable(const struct q_volume *v, uint32_t heartbeat_ms, uint64_t now_ms);
/* Whether this node's own heartbeat write succeeded recently enough. */
bool q_volume_writing(const struct q_volume *v, uint32_t heartbeat_ms, uint64_t now_ms);

/* The slot of a volume written by node id, or NULL. */
const struct q_slot *q_volume_slot_of(const struct q_volume *v, uint32_t node_id);
/* The node of that id, or NULL. */
struct q_node *q_state_node(struct q_state *st, uint32_t node_id);
const struct q_node *q_state_node_c(const struct q_state *st, uint32_t node_id);

/* The state of node n on volume k at now_ms. */
enum q_san q_node_san(const struct q_state *st, const struct q_node *n, uint32_t k, uint64_t now_ms);

/* Renews the lease at now_ms when the rule allows it: connected to
 * corosync, quorate, no fence request pending, and not fenced on request
 * in the current ring. Losing the SAN path alone does not stop the renewal: such
 * a node goes to redirected I/O, it is not fenced. Returns whether it did,
 * and records that in st->lease_renewing. */
bool q_lease_renew(struct q_state *st, uint64_t now_ms);
/* The lease's state and the ms left until it expires (0 once expired). */
enum q_lease q_lease_state(const struct q_state *st, uint64_t now_ms, uint64_t *ret_remaining_ms);

/* ---- fencing ----------------------------------------------------------------- */

/* The margin taken off a lease for clock drift and for the time a local
 * holder takes to stop: max(L / 6, 300 ms), at most L / 2. */
uint64_t q_fence_margin_ms(uint32_t lease_ms);

/* Quorum must have held this long since the last membership change
 * before this node judges others lost (votequorum's verdict may lag the
 * membership by a moment). */
#define Q_FENCE_SETTLE_MS 500u

/* Reads this node's mailbox on every volume: a fence request newer than
 * the last one acknowledged, from a node that is not in this node's
 * membership, becomes st->fence_request_seq, unless this node is quorate:
 * only the quorate side fences. In a two-node cluster without the
 * witness, where both sides of a split stay quorate, a quorate node obeys
 * only a request from a lower id (the lower id wins the fence race).
 * Returns whether a new request arrived. */
bool q_mailbox_check(struct q_state *st);

/* Judges every other node's fence state at now_ms. A member has none. A
 * node that leaves the membership while this side is quorate (and holds
 * the witness, where there is one) becomes pending, with a fence request
 * number for its mailbox; it is fenced at the earliest of: a fence agent
 * confirmed it (n->agent_done); its slot shows CSV_HB_FENCED written after
 * it was lost or acknowledging the request; its lease has expired, that
 * is L plus the margin after the later of its loss and the last change of
 * its running heartbeat (not trusted in a two-node cluster without the
 * witness, where its side may still be quorate). */
void q_fence_update(struct q_state *st, uint64_t now_ms);

const char *q_fence_str(enum q_fence f);
const char *q_fenced_by_str(enum q_fenced_by b);

/* Whether this node's partition holds the disk witness at now_ms: this
 * node renewed it within L minus the margin, or its holder is a member
 * and the block changed within L. */
bool q_witness_vote(const struct q_state *st, uint64_t now_ms);
/* Whether this node should try to take the witness: it is in use and its
 * holder is none, this node, or not a member. */
bool q_witness_want(const struct q_state *st);

/* Computes the view of st at now_ms. */
void q_view_compute(const struct q_state *st, uint64_t now_ms, struct q_view *ret);

/* A change between two views, as an event. */
enum q_event_kind {
	Q_EV_COROSYNC,   /* connection to corosync lost or back */
	Q_EV_QUORUM,     /* quorate or not */
	Q_EV_MEMBERSHIP, /* a node joined or left the membership */
	Q_EV_DAEMON,     /* a node's csv-quorumd joined or left the group */
	Q_EV_SAN,        /* a node's state on a volume */
	Q_EV_LEASE,      /* this node's lease */
	Q_EV_FENCE,      /* a lost node's fence state */
	Q_EV_WITNESS,    /* whether this node's partition holds the disk witness */
};

struct q_event {
	enum q_event_kind kind;
	uint32_t node_id;        /* Q_EV_MEMBERSHIP, _DAEMON, _SAN */
	uint32_t volume;         /* Q_EV_SAN: index into st->volumes */
	bool on;                 /* COROSYNC, QUORUM, MEMBERSHIP, DAEMON: the new value */
	int from, to;            /* SAN: enum q_san; LEASE: enum q_lease;
				  * FENCE: enum q_fence */
	char message[384];       /* a sentence for the log and for csvctl */
};

const char *q_event_kind_str(enum q_event_kind k);

/* Calls fn for each difference from old to cur (both computed from st,
 * which names nodes and volumes in the messages). Returns the number of
 * events. */
unsigned q_view_diff(const struct q_state *st, const struct q_view *old, const struct q_view *cur,
		     void (*fn)(const struct q_event *ev, void *ctx), void *ctx);

/* "vol1 (UUID)", "UUID", or the spec while the volume is not identified. */
const char *q_volume_name(const struct q_volume *v, char *buf, size_t len);
