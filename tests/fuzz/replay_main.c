/* Replays every file of a fuzz target's corpus directory through its
 * LLVMFuzzerTestOneInput, as a TAP test built with any compiler: stored
 * crashers stay fixed. The directory is $QVL_TESTDATA/fuzz/NAME, where the
 * program is named replay_NAME (or the first argument). */
#include <dirent.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	char dir[4096], *names[4096], *base = basename(argv[0]);
	const char *name = strncmp(base, "replay_", 7) ? base : base + 7;
	size_t n = 0;
	DIR *d;
	struct dirent *de;

	if (argc > 1)
		snprintf(dir, sizeof(dir), "%s", argv[1]);
	else
		snprintf(dir, sizeof(dir), "%s/fuzz/%s", test_env("QVL_TESTDATA", "tests/data"), name);
	d = opendir(dir);
	if (!d)
		skip_all("no corpus directory %s", dir);
	while ((de = readdir(d)) && n < 4096)
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(d);
	if (!n)
		skip_all("corpus directory %s is empty", dir);
	qsort(names, n, sizeof(names[0]), cmp);
	plan((int)n);
	for (size_t i = 0; i < n; i++) {
		char *path = qvl_path_join(dir, names[i]), *buf;
		size_t len;
		struct qvl_err e;
		if (qvl_read_file(path, 64u << 20, &buf, &len, &e)) {
			ok(0, "%s: %s", names[i], e.msg);
		} else {
			LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
			ok(1, "%s/%s replayed", name, names[i]);
			free(buf);
		}
		free(path);
		free(names[i]);
	}
	return done_testing();
}
