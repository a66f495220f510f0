// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "caps.h"

static const cap_value_t keep[] = {
	CAP_BPF,	     /* map reads, trims, deletes */
	CAP_PERFMON,	     /* uprobes for processes found later */
	CAP_SYS_PTRACE,	     /* reading target memory, /proc/PID/root */
	CAP_DAC_READ_SEARCH, /* binaries of other users and containers */
};

static bool has(cap_t c, cap_value_t v)
{
	cap_flag_value_t f = CAP_CLEAR;

	return !cap_get_flag(c, v, CAP_EFFECTIVE, &f) && f == CAP_SET;
}

static void append(char *buf, size_t len, const char *name)
{
	size_t n = strlen(buf);

	snprintf(buf + n, len - n, "%s%s", n ? ", " : "", name);
}

int caps__check(char *missing, size_t len)
{
	cap_t c = cap_get_proc();
	bool admin;

	missing[0] = '\0';
	if (!c)
		return -errno;
	admin = has(c, CAP_SYS_ADMIN);
	if (!admin && !has(c, CAP_BPF))
		append(missing, len, "CAP_BPF");
	if (!admin && !has(c, CAP_PERFMON))
		append(missing, len, "CAP_PERFMON");
	if (!has(c, CAP_SYS_PTRACE))
		append(missing, len, "CAP_SYS_PTRACE");
	cap_free(c);
	return missing[0] ? -EPERM : 0;
}

int caps__drop(void)
{
	const size_t nkeep = sizeof(keep) / sizeof(keep[0]);
	cap_value_t v;
	size_t i;
	cap_t c;
	int err = 0;

	/* Bounding set first: dropping from it needs CAP_SETPCAP, dropped below. */
	for (v = 0; v <= CAP_LAST_CAP; v++) {
		bool kept = false;

		for (i = 0; i < nkeep; i++)
			kept |= keep[i] == v;
		if (!kept && CAP_IS_SUPPORTED(v))
			cap_drop_bound(v);
	}
	c = cap_init();
	if (!c)
		return -errno;
	if (cap_set_flag(c, CAP_PERMITTED, nkeep, keep, CAP_SET) ||
	    cap_set_flag(c, CAP_EFFECTIVE, nkeep, keep, CAP_SET) || cap_set_proc(c))
		err = -errno;
	cap_free(c);
	if (!err && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		err = -errno;
	return err;
}
