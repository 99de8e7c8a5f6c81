/* hello: a small C program for the cross-compile example.
 *
 * Prints the architecture it was compiled for (from the compiler's own macros) and
 * the machine it runs on (uname), then does a little arithmetic so that the
 * compiler has some work to do at -O2. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#if defined(__aarch64__)
#define BUILT_FOR "aarch64"
#elif defined(__x86_64__)
#define BUILT_FOR "x86_64"
#elif defined(__arm__)
#define BUILT_FOR "arm"
#elif defined(__riscv)
#define BUILT_FOR "riscv64"
#else
#define BUILT_FOR "unknown"
#endif

/* FNV-1a over the numbers 0..n-1: a checksum that is the same on every machine. */
static uint64_t checksum(uint32_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (uint32_t i = 0; i < n; i++) {
        h ^= i;
        h *= 1099511628211ULL;
    }
    return h;
}

int main(int argc, char **argv) {
    struct utsname u;
    if (uname(&u) != 0) {
        perror("uname");
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "--arch") == 0) {
        printf("%s\n", BUILT_FOR);
        return 0;
    }
    printf("hello from a program built for %s, running on %s\n", BUILT_FOR, u.machine);
    printf("checksum %016llx\n", (unsigned long long)checksum(1000000));
    return strcmp(BUILT_FOR, u.machine) == 0 ? 0 : 3;
}
