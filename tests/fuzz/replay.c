/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Replay driver: runs a fuzz target's LLVMFuzzerTestOneInput() once on each file named on the
 * command line, or in each directory named (in name order), without libFuzzer. Built with any
 * compiler, it makes the committed corpora (seeds and regression inputs) an ordinary test of
 * the 'fuzz' suite. An invariant broken aborts; an argument that yields no input at all fails,
 * so that a corpus which went missing is not a silent pass.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Larger than any corpus file (libFuzzer's default -max_len is 4096). */
#define REPLAY_MAX_INPUT (1 << 20)

static int
replay_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	struct stat st;
	uint8_t *in;
	size_t n;

	if (fp == NULL || fstat(fileno(fp), &st) < 0 || st.st_size > REPLAY_MAX_INPUT) {
		fprintf(stderr, "replay: %s: %s\n", path,
				fp == NULL ? strerror(errno) : "unusable");
		if (fp != NULL)
			fclose(fp);
		return -EINVAL;
	}
	/* exactly the input's size, so that ASan sees a target reading past its end */
	in = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (in == NULL) {
		fclose(fp);
		return -ENOMEM;
	}
	n = fread(in, 1, (size_t)st.st_size, fp);
	fclose(fp);
	LLVMFuzzerTestOneInput(in, n);
	free(in);
	return 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* @return inputs replayed, or -errno. */
static int
replay_dir(const char *dir)
{
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	DIR *d = opendir(dir);

	if (d == NULL) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **t = realloc(names, (cap ? cap * 2 : 64) * sizeof(*t));

			if (t == NULL) {
				rc = -ENOMEM;
				break;
			}
			names = t;
			cap = cap ? cap * 2 : 64;
		}
		names[n] = malloc(strlen(dir) + strlen(de->d_name) + 2);
		if (names[n] == NULL) {
			rc = -ENOMEM;
			break;
		}
		sprintf(names[n], "%s/%s", dir, de->d_name);
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		if (rc >= 0 && replay_file(names[i]) < 0)
			rc = -EIO;
		free(names[i]);
	}
	free(names);
	return rc < 0 ? rc : (int)n;
}

int
main(int argc, char **argv)
{
	int total = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int rc;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		rc = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]) == 0;
		if (rc <= 0) {
			fprintf(stderr, "replay: %s: no input replayed\n", argv[i]);
			return 1;
		}
		total += rc;
	}
	printf("replayed %d inputs\n", total);
	return 0;
}
