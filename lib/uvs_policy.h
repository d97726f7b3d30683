/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uvs_policy: which local users may listen on which vsock ports and connect to which CIDs.
 *
 * A policy is a text of rules, one per line ('#' starts a comment):
 *
 *   listen  WHO  PORTS     WHO may listen on (bind and listen to) these ports
 *   connect WHO  CIDS      WHO may connect to these CIDs
 *   sockets WHO  N         each user WHO matches may hold at most N host sockets at once
 *                          (made or accepted by its programs; "*": no limit)
 *
 * WHO is a user name or uid, "@" and a group name or gid (members, by their supplementary
 * groups too), or "*" (everyone). PORTS and CIDS are a number, a range "LO-HI", or "*".
 * Without a policy everything is allowed, as with AF_VSOCK; with one, an action is allowed
 * only if a rule of its kind matches, and refused with EACCES otherwise. Root is not exempt:
 * a policy that should let root do everything says so ("listen root *"). A user's socket
 * quota is the largest N of the sockets rules that match it; with none, it has no quota (the
 * daemon's socket table and fd budget still bound everyone together).
 */
#ifndef UVS_POLICY_H
#define UVS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Rules in one policy: a policy is read by people; more than this is a mistake. */
#define UVS_POLICY_MAX_RULES 4096u
/* Longest line of a policy file. */
#define UVS_POLICY_LINE_MAX 512u
/* Largest policy file. */
#define UVS_POLICY_FILE_MAX (1024u * 1024u)

enum uvs_policy_act {
	UVS_POLICY_LISTEN,
	UVS_POLICY_CONNECT,
	UVS_POLICY_SOCKETS,
};

enum uvs_policy_who {
	UVS_POLICY_ANY,
	UVS_POLICY_UID,
	UVS_POLICY_GID,
};

struct uvs_policy_rule {
	uint8_t act;	 /* enum uvs_policy_act */
	uint8_t who;	 /* enum uvs_policy_who */
	uint32_t id;	 /* uid or gid */
	uint32_t lo, hi; /* the range; for SOCKETS, lo = hi = N (UINT32_MAX: no limit) */
};

struct uvs_policy {
	struct uvs_policy_rule *rules;
	unsigned int n;
};

/** Parse text (NUL-terminated) into p (empty on entry). On a bad line: -EINVAL and err says
 * which line and why. 0 or -errno. */
int uvs_policy_parse(struct uvs_policy *p, const char *text, char *err, size_t errlen);
/** Read and parse the file at path. 0 or -errno (err says why). */
int uvs_policy_load(struct uvs_policy *p, const char *path, char *err, size_t errlen);
/** Whether uid (member of the ngids groups gids) may do act on val (a port or a CID). */
bool uvs_policy_allows(const struct uvs_policy *p, enum uvs_policy_act act, uid_t uid,
		const gid_t *gids, unsigned int ngids, uint32_t val);
/** The most host sockets uid (member of the ngids groups gids) may hold at once: the largest
 * N of the sockets rules that match it, UINT32_MAX if none does (or p is NULL). */
uint32_t uvs_policy_quota(
		const struct uvs_policy *p, uid_t uid, const gid_t *gids, unsigned int ngids);
void uvs_policy_free(struct uvs_policy *p);

#endif /* UVS_POLICY_H */
