/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Implementation notes
 *
 * Rules are resolved when the policy is read: user and group names become ids then (a name
 * that does not exist is an error, not a rule that never matches, so a typo is caught at
 * start). Matching is a linear scan: policies are short and the checks run on listen(),
 * connect(), socket() and accept() only, never on the data path. The file is read whole,
 * bounded, and parsed line by line; nothing in it is trusted beyond the grammar in
 * uvs_policy.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "uvs_policy.h"

/* Room for getpwnam_r/getgrnam_r: large enough for any sane passwd/group entry. */
#define POLICY_NSS_BUF 16384u

static int
parse_num(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* "*", "N" or "LO-HI". */
static int
parse_range(char *s, uint32_t *lo, uint32_t *hi)
{
	char *dash;

	if (strcmp(s, "*") == 0) {
		*lo = 0;
		*hi = UINT32_MAX;
		return 0;
	}
	dash = strchr(s, '-');
	if (dash == NULL) {
		if (parse_num(s, lo) < 0)
			return -EINVAL;
		*hi = *lo;
		return 0;
	}
	*dash = '\0';
	if (parse_num(s, lo) < 0 || parse_num(dash + 1, hi) < 0 || *lo > *hi)
		return -EINVAL;
	return 0;
}

/* "*", "user", "uid", "@group" or "@gid". */
static int
parse_who(const char *s, struct uvs_policy_rule *r)
{
	char *buf = NULL;
	int rc = 0;

	if (strcmp(s, "*") == 0) {
		r->who = UVS_POLICY_ANY;
		return 0;
	}
	r->who = s[0] == '@' ? UVS_POLICY_GID : UVS_POLICY_UID;
	if (r->who == UVS_POLICY_GID)
		s++;
	if (parse_num(s, &r->id) == 0)
		return 0;
	buf = malloc(POLICY_NSS_BUF);
	if (buf == NULL)
		return -ENOMEM;
	if (r->who == UVS_POLICY_UID) {
		struct passwd pw, *res = NULL;

		if (getpwnam_r(s, &pw, buf, POLICY_NSS_BUF, &res) != 0 || res == NULL)
			rc = -ENOENT;
		else
			r->id = pw.pw_uid;
	} else {
		struct group gr, *res = NULL;

		if (getgrnam_r(s, &gr, buf, POLICY_NSS_BUF, &res) != 0 || res == NULL)
			rc = -ENOENT;
		else
			r->id = gr.gr_gid;
	}
	free(buf);
	return rc;
}

static int
add_rule(struct uvs_policy *p, const struct uvs_policy_rule *r)
{
	struct uvs_policy_rule *t;

	if (p->n == UVS_POLICY_MAX_RULES)
		return -E2BIG;
	t = realloc(p->rules, (p->n + 1) * sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t[p->n++] = *r;
	p->rules = t;
	return 0;
}

/* One line (comment and surrounding blanks allowed). 0, or -errno with *why set. */
static int
parse_line(struct uvs_policy *p, char *line, const char **why)
{
	struct uvs_policy_rule r = { 0 };
	char *word[4], *save = NULL, *hash = strchr(line, '#');
	unsigned int n = 0;
	int rc;

	if (hash != NULL)
		*hash = '\0';
	for (char *w = strtok_r(line, " \t\r", &save); w != NULL;
			w = strtok_r(NULL, " \t\r", &save)) {
		if (n == 4) {
			*why = "too many words (want: listen|connect WHO RANGE, or sockets WHO N)";
			return -EINVAL;
		}
		word[n++] = w;
	}
	if (n == 0)
		return 0;
	if (n != 3) {
		*why = "want: listen|connect WHO RANGE, or sockets WHO N";
		return -EINVAL;
	}
	if (strcmp(word[0], "listen") == 0) {
		r.act = UVS_POLICY_LISTEN;
	} else if (strcmp(word[0], "connect") == 0) {
		r.act = UVS_POLICY_CONNECT;
	} else if (strcmp(word[0], "sockets") == 0) {
		r.act = UVS_POLICY_SOCKETS;
	} else {
		*why = "unknown action (want listen, connect or sockets)";
		return -EINVAL;
	}
	rc = parse_who(word[1], &r);
	if (rc < 0) {
		*why = rc == -ENOENT ? "no such user or group" : "bad user or group";
		return rc == -ENOMEM ? rc : -EINVAL;
	}
	if (r.act == UVS_POLICY_SOCKETS) {
		if (strcmp(word[2], "*") == 0) {
			r.lo = UINT32_MAX;
		} else if (parse_num(word[2], &r.lo) < 0) {
			*why = "bad count (want N or *)";
			return -EINVAL;
		}
		r.hi = r.lo;
	} else if (parse_range(word[2], &r.lo, &r.hi) < 0) {
		*why = "bad range (want N, LO-HI or *)";
		return -EINVAL;
	}
	rc = add_rule(p, &r);
	if (rc < 0)
		*why = rc == -E2BIG ? "too many rules" : "out of memory";
	return rc;
}

int
uvs_policy_parse(struct uvs_policy *p, const char *text, char *err, size_t errlen)
{
	char line[UVS_POLICY_LINE_MAX + 1];
	unsigned int lineno = 0;
	const char *why = NULL;

	p->rules = NULL;
	p->n = 0;
	while (*text != '\0') {
		const char *nl = strchr(text, '\n');
		size_t len = nl != NULL ? (size_t)(nl - text) : strlen(text);
		int rc;

		lineno++;
		if (len > UVS_POLICY_LINE_MAX) {
			snprintf(err, errlen, "line %u: longer than %u bytes", lineno,
					UVS_POLICY_LINE_MAX);
			uvs_policy_free(p);
			return -EINVAL;
		}
		memcpy(line, text, len);
		line[len] = '\0';
		rc = parse_line(p, line, &why);
		if (rc < 0) {
			snprintf(err, errlen, "line %u: %s", lineno, why);
			uvs_policy_free(p);
			return rc;
		}
		text += len + (nl != NULL);
	}
	return 0;
}

int
uvs_policy_load(struct uvs_policy *p, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *text;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)UVS_POLICY_FILE_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %u bytes", path,
				UVS_POLICY_FILE_MAX);
		close(fd);
		return -EINVAL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, text, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		snprintf(err, errlen, "%s: short read", path);
		free(text);
		return -EIO;
	}
	text[n] = '\0';
	if (strlen(text) != (size_t)n) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		free(text);
		return -EINVAL;
	}
	rc = uvs_policy_parse(p, text, err, errlen);
	free(text);
	return rc;
}

static bool
who_matches(const struct uvs_policy_rule *r, uid_t uid, const gid_t *gids, unsigned int ngids)
{
	switch (r->who) {
	case UVS_POLICY_ANY:
		return true;
	case UVS_POLICY_UID:
		return r->id == uid;
	default:
		for (unsigned int i = 0; i < ngids; i++)
			if (gids[i] == r->id)
				return true;
		return false;
	}
}

bool
uvs_policy_allows(const struct uvs_policy *p, enum uvs_policy_act act, uid_t uid, const gid_t *gids,
		unsigned int ngids, uint32_t val)
{
	if (p == NULL)
		return true;
	for (unsigned int i = 0; i < p->n; i++) {
		const struct uvs_policy_rule *r = &p->rules[i];

		if (r->act == act && val >= r->lo && val <= r->hi &&
				who_matches(r, uid, gids, ngids))
			return true;
	}
	return false;
}

uint32_t
uvs_policy_quota(const struct uvs_policy *p, uid_t uid, const gid_t *gids, unsigned int ngids)
{
	uint32_t n = 0;
	bool matched = false;

	if (p == NULL)
		return UINT32_MAX;
	for (unsigned int i = 0; i < p->n; i++) {
		const struct uvs_policy_rule *r = &p->rules[i];

		if (r->act == UVS_POLICY_SOCKETS && who_matches(r, uid, gids, ngids)) {
			matched = true;
			if (r->lo > n)
				n = r->lo;
		}
	}
	return matched ? n : UINT32_MAX;
}

void
uvs_policy_free(struct uvs_policy *p)
{
	free(p->rules);
	p->rules = NULL;
	p->n = 0;
}
