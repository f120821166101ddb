/* Preloaded under valgrind by scripts/callgrind-serving.sh.
 *
 * valgrind 3.19 (Debian bookworm) edits the signal mask that rt_sigsuspend is given, in place.
 * libdispatch's main-thread loop (dispatchMain) passes a `static const` mask that lives in
 * read-only memory, so valgrind itself crashes with SIGSEGV ("the 'impossible' happened") as
 * soon as the server starts its threads. Handing the kernel a writable copy avoids it; the
 * call is otherwise the same. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    /* The kernel's sigset is 8 bytes on x86-64 (glibc's sigset_t is larger). */
    return (int)syscall(SYS_rt_sigsuspend, &copy, 8);
}
