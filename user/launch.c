// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "elf.h"
#include "launch.h"

/* Enough for any interpreter start-up; past it we give up waiting. */
#define MAX_SYSCALL_STOPS 200000

static int resolve_on_path(const char *cmd, char *out, size_t len)
{
	const char *path = getenv("PATH"), *p, *end;
	struct stat st;
	int n;

	if (strchr(cmd, '/')) {
		n = snprintf(out, len, "%s", cmd);
		return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		n = snprintf(out, len, "%.*s/%s", (int)(end - p), p, cmd);
		if (n < 0 || (size_t)n >= len)
			continue;
		if (!stat(out, &st) && S_ISREG(st.st_mode) && !access(out, X_OK))
			return 0;
	}
	return -ENOENT;
}

static int needs_libpython(const char *name, void *ctx)
{
	(void)ctx;
	return !strncmp(name, "libpython", 9);
}

bool launch__needs_libc_malloc(const char *cmd, char *resolved, size_t len)
{
	struct pml_elf_sym s;
	struct pml_elf *e;
	bool r;

	if (resolve_on_path(cmd, resolved, len))
		return false;
	e = elf__open_file(resolved);
	if (!e)
		return false;
	r = !elf__for_each_needed(e, needs_libpython, NULL) && !elf__has_symtab(e) &&
	    !elf__find_dynsym(e, "PyObject_Malloc", &s);
	elf__close(e);
	return r;
}

static void child_exec(char *const argv[], const char *setenv_kv, int errfd)
{
	int err;

	if (setenv_kv)
		putenv((char *)setenv_kv);
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		goto fail;
	raise(SIGSTOP);
	execvp(argv[0], argv);
fail:
	err = errno;
	if (write(errfd, &err, sizeof(err)) < 0)
		_exit(126);
	_exit(127);
}

int launch__start(char *const argv[], const char *setenv_kv, pml_launch_ready_fn ready, void *ctx,
		  pid_t *child, char *err, size_t errlen)
{
	int pipefd[2], status, r, cerr = 0, in_syscall = 0;
	long stops = 0, sig;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		snprintf(err, errlen, "cannot fork: %s", strerror(-r));
		return r;
	}
	if (pid == 0) {
		close(pipefd[0]);
		child_exec(argv, setenv_kv, pipefd[1]);
	}
	close(pipefd[1]);

	if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) {
		r = -ECHILD;
		snprintf(err, errlen, "cannot start %s under ptrace", argv[0]);
		goto out_kill;
	}
	if (ptrace(PTRACE_SETOPTIONS, pid, NULL,
		   (void *)(long)(PTRACE_O_TRACEEXEC | PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL))) {
		r = -errno;
		snprintf(err, errlen, "cannot trace the command: %s", strerror(-r));
		goto out_kill;
	}
	sig = 0;
	for (;;) {
		if (ptrace(PTRACE_SYSCALL, pid, NULL, (void *)sig)) {
			r = -errno;
			snprintf(err, errlen, "cannot step the command: %s", strerror(-r));
			goto out_kill;
		}
		sig = 0;
		if (waitpid(pid, &status, __WALL) != pid) {
			r = -errno;
			goto out_kill;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			if (read(pipefd[0], &cerr, sizeof(cerr)) == sizeof(cerr))
				snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(cerr));
			else
				snprintf(err, errlen, "%s exited before its interpreter started",
					 argv[0]);
			close(pipefd[0]);
			return -ECHILD;
		}
		if (!WIFSTOPPED(status))
			continue;
		if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
			in_syscall = 0;
			r = ready(pid, ctx, err, errlen);
		} else if (WSTOPSIG(status) == (SIGTRAP | 0x80)) {
			struct user_regs_struct regs;

			in_syscall = !in_syscall;
			if (in_syscall)
				continue;
			if (++stops > MAX_SYSCALL_STOPS) {
				snprintf(err, errlen, "%s did not load a Python interpreter",
					 argv[0]);
				r = -ENOEXEC;
				goto out_kill;
			}
			if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) || regs.orig_rax != SYS_mmap)
				continue;
			r = ready(pid, ctx, err, errlen);
		} else {
			/* A real signal for the child: deliver it. */
			sig = WSTOPSIG(status) == SIGTRAP ? 0 : WSTOPSIG(status);
			continue;
		}
		if (r == -EAGAIN)
			continue;
		if (r)
			goto out_kill;
		if (ptrace(PTRACE_DETACH, pid, NULL, NULL)) {
			r = -errno;
			snprintf(err, errlen, "cannot let the command go: %s", strerror(-r));
			goto out_kill;
		}
		close(pipefd[0]);
		*child = pid;
		return 0;
	}
out_kill:
	kill(pid, SIGKILL);
	waitpid(pid, &status, __WALL);
	close(pipefd[0]);
	return r;
}
