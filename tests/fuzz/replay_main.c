/*
 * replay_main.c - a main() for the fuzz targets in builds without libFuzzer:
 * feeds every file named on the command line (or found directly inside a
 * directory named there) to LLVMFuzzerTestOneInput once. `make check` uses it
 * to replay the seed corpus with gcc, so the harnesses keep compiling and the
 * seeds keep passing (and valgrind can run them) when fuzzers are not enabled.
 */
#include "first.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    int rc = -1;
    uint8_t *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0)
        goto out;
    buf = malloc((size_t)st.st_size + 1); /* +1: never malloc(0) */
    if (buf == NULL)
        goto out;
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        goto out;
    (void)LLVMFuzzerTestOneInput(buf, (size_t)st.st_size);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "%s: cannot read\n", path);
    free(buf);
    fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    int files = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            failed++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed += run_file(argv[i]) != 0;
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (d == NULL) {
            perror(argv[i]);
            failed++;
            continue;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char path[4096];
            if (e->d_name[0] == '.')
                continue;
            if (snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name) >= (int)sizeof path)
                continue;
            failed += run_file(path) != 0;
            files++;
        }
        closedir(d);
    }
    printf("%s: replayed %d inputs, %d unreadable\n", argv[0], files, failed);
    return failed == 0 && files > 0 ? 0 : 1;
}
