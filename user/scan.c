// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scan.h"

#define MAPS_READ_MAX (8u << 20)

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

int scan__pids(int **pids, size_t *n)
{
	struct dirent *de;
	size_t cap = 0;
	int *v = NULL, *nv, err = 0;
	DIR *d;

	*pids = NULL;
	*n = 0;
	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *end;
		long pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid > 0x7fffffff)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				err = -ENOMEM;
				break;
			}
			v = nv;
		}
		v[(*n)++] = pid;
	}
	closedir(d);
	if (err) {
		free(v);
		*n = 0;
		return err;
	}
	qsort(v, *n, sizeof(*v), cmp_int);
	*pids = v;
	return 0;
}

int scan__parse_starttime(const char *buf, size_t len, uint64_t *starttime)
{
	const char *p = NULL, *end = buf + len;
	unsigned long long v = 0;
	size_t i;
	int field;

	/* The command name ends at the last ')' of the line. */
	for (i = len; i > 0; i--)
		if (buf[i - 1] == ')') {
			p = buf + i;
			break;
		}
	if (!p)
		return -EINVAL;
	/* p is just after field 2; fields 3.. follow, space separated. */
	for (field = 2; field < 22; field++) {
		if (p >= end || *p != ' ')
			return -EINVAL;
		p++;
		if (field + 1 == 22)
			break;
		while (p < end && *p != ' ')
			p++;
	}
	if (p >= end || !isdigit((unsigned char)*p))
		return -EINVAL;
	while (p < end && isdigit((unsigned char)*p)) {
		if (v > (~0ULL - 9) / 10)
			return -EINVAL;
		v = v * 10 + (*p - '0');
		p++;
	}
	if (p < end && *p != ' ' && *p != '\n')
		return -EINVAL;
	*starttime = v;
	return 0;
}

ssize_t scan__read_proc(int pid, const char *name, char *buf, size_t cap)
{
	char path[64];
	ssize_t n = 0, r;
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((size_t)n < cap) {
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			close(fd);
			return err;
		}
		if (r == 0)
			break;
		n += r;
	}
	close(fd);
	return n;
}

int scan__starttime(int pid, uint64_t *starttime)
{
	char buf[1024];
	ssize_t n;

	n = scan__read_proc(pid, "stat", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	return scan__parse_starttime(buf, n, starttime);
}

static bool basename_is_python(const char *path, size_t len)
{
	const char *base = path;
	size_t i;

	for (i = 0; i < len; i++)
		if (path[i] == '/')
			base = path + i + 1;
	return (size_t)(path + len - base) >= 6 && !strncmp(base, "python", 6);
}

bool scan__maybe_python(const char *maps, size_t len, const char *exe)
{
	const char *line = maps, *end = maps + len, *nl, *s;

	if (exe && basename_is_python(exe, strlen(exe)))
		return true;
	for (; line < end; line = nl + 1) {
		nl = memchr(line, '\n', end - line);
		if (!nl)
			nl = end;
		/* The path is the last field; look for "/libpython" in the line. */
		for (s = line; s + 10 <= nl; s++)
			if (!memcmp(s, "/libpython", 10))
				return true;
		if (nl == end)
			break;
	}
	return false;
}

bool scan__pid_maybe_python(int pid)
{
	char path[64], exe[4096];
	char *maps;
	ssize_t n;
	bool r;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return false; /* kernel thread, gone, or not ours to read */
	exe[n] = '\0';
	if (basename_is_python(exe, n))
		return true;
	maps = malloc(MAPS_READ_MAX);
	if (!maps)
		return false;
	n = scan__read_proc(pid, "maps", maps, MAPS_READ_MAX);
	r = n > 0 && scan__maybe_python(maps, n, NULL);
	free(maps);
	return r;
}
