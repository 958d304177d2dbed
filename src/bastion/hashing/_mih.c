/*
 * _mih: exact Hamming-radius search over 256-bit PDQ hashes by multi-index hashing (MIH).
 *
 * Why MIH: if two 256-bit strings cut into m chunks are within T bits, then (pigeonhole) some chunk is within
 * floor(T/m) bits; the refined form used here searches (T mod m) + 1 chunks at radius r = floor(T/m) and the
 * others at r - 1, since all of them missing would put the total above T. So we only visit rows that share a
 * near chunk with the query, then check the full distance. With chunk width ~ log2(rows), each chunk bucket
 * holds a few rows and a query touches a few thousand buckets instead of millions of rows.
 *
 * Layout, per chunk of b bits: a directory of 2^d+1 bucket starts indexed by the top d bits of the chunk, and one
 * uint32 per row holding (row << (b-d) | the low b-d bits of the chunk). d is about log2(rows) - 2, so a bucket
 * holds a few rows and the directories cost ~1 uint32 per row whatever the chunk width. Keeping the low bits in
 * the entry lets a bucket scan reject rows without touching their 32-byte hash; the row number gets the
 * remaining 32-(b-d) bits, which bounds the rows of one Tables (at most 2^30).
 *
 * Almost all time goes to cache and TLB misses (the tables are hundreds of MB), so a query is run in stages
 * over blocks of probes: prefetch every directory slot, then every bucket, then every candidate hash, and only
 * then read them. Many misses are in flight at once instead of one after another. Large arrays are mmap'd with
 * MADV_HUGEPAGE so that a random access is one cache miss rather than a miss plus a page walk.
 *
 * Every row is reported once without a hash set: a row found through chunk j is dropped when an earlier chunk
 * i < j is also within its radius, because the search through chunk i found it already.
 *
 * Nothing here touches Python objects while the GIL is released; the arrays read without the GIL are pinned
 * by buffer views (or owned by the Tables object) for the duration of the call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <sys/mman.h>
#define HAVE_MMAP 1
#endif

#define HASH_BYTES 32
#define MAX_CHUNKS 64
#define MIN_CHUNK_BITS 3
#define MAX_CHUNK_BITS 30
#define MAX_ROWS ((Py_ssize_t)1 << 30)
#define MAX_SOURCES 64 /* segments (PdqIndex keeps a handful), the frozen delta and the delta; on the stack */
#define MAX_THRESHOLD 256

/* Profiling build only (-DMIH_STATS, see bench/mih_profile.py): global counters, so not thread-safe; the shipped
 * build compiles them away. */
#ifdef MIH_STATS
#include <x86intrin.h>
static struct {
    unsigned long long probes, entries, cands, passed, check_cycles, search_cycles, sources;
} mih_stats;
#define STAT(field, v) (mih_stats.field += (unsigned long long)(v))
#define STAT_TSC() __rdtsc()
#else
#define STAT(field, v) ((void)0)
#define STAT_TSC() 0ULL
#endif
/* Probe blocks: large enough to keep ~all line-fill buffers busy, small enough that what was prefetched is
 * still in L1/L2 when it is read. */
#define PROBE_BLOCK 256
#define CAND_BLOCK 512

/* Cost model in nanoseconds, fitted to query times on a 2-core Zen 4 VM at 10M random rows (bench/matching.py). It
 * chooses the layout (pdq_index.py asks through estimate()) and, per query, MIH or a linear scan: high thresholds
 * make MIH probe more buckets than a scan reads rows. Only the ratios matter much. */
#define COST_PROBE 25.0       /* a directory slot and the start of its bucket: two overlapped misses */
#define COST_ENTRY 3.7        /* one bucket entry: low-bit test, often waiting for the bucket's line */
#define COST_CAND 13.5        /* one candidate's 32-byte hash: an overlapped miss and the distance */
#define COST_LINEAR_EARLY 0.8 /* one row of a linear scan, threshold <= EARLY_EXIT_MAX */
#define COST_LINEAR 2.0       /* one row of a linear scan, higher thresholds */
/* Below this threshold half a hash decides almost every row of a linear scan (see scan_linear). */
#define EARLY_EXIT_MAX 40

#if defined(__GNUC__) || defined(__clang__)
#define POPCOUNT64(x) __builtin_popcountll(x)
#define POPCOUNT32(x) __builtin_popcount(x)
#define PREFETCH(p) __builtin_prefetch((const void *)(p))
#else
static inline int popcount64_sw(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}
#define POPCOUNT64(x) popcount64_sw(x)
#define POPCOUNT32(x) popcount64_sw((uint64_t)(x))
#define PREFETCH(p) ((void)0)
#endif

/* ------------------------------------------------------------------------------------------------------------ */
/* Bit helpers. A hash is read as four little-endian 64-bit words; bit i of the hash is bit (i % 64) of word
 * i / 64. Any fixed order works because the distance is the bit count of the XOR. */

static inline void load_hash(const uint8_t *p, uint64_t w[4])
{
    memcpy(w, p, HASH_BYTES); /* alignment-safe; compiles to plain loads */
}

static inline int hash_distance(const uint64_t a[4], const uint64_t b[4])
{
    return POPCOUNT64(a[0] ^ b[0]) + POPCOUNT64(a[1] ^ b[1]) + POPCOUNT64(a[2] ^ b[2]) + POPCOUNT64(a[3] ^ b[3]);
}

static inline uint32_t chunk_of(const uint64_t w[4], int off, int bits)
{
    int k = off >> 6, s = off & 63;
    uint64_t v = w[k] >> s;
    if (s + bits > 64) /* only then is s > 0, so the shift below is defined */
        v |= w[k + 1] << (64 - s);
    return (uint32_t)(v & ((UINT64_C(1) << bits) - 1));
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Large allocations: anonymous mmap is zeroed, page aligned (so a 32-byte row never straddles cache lines) and
 * can be backed by transparent huge pages, which matter more than anything else for random access at 10M rows. */

static void *big_alloc(size_t size)
{
    if (size == 0)
        size = 1;
#ifdef HAVE_MMAP
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (size >= ((size_t)2 << 20))
        (void)madvise(p, size, MADV_HUGEPAGE);
#endif
    return p;
#else
    return calloc(1, size);
#endif
}

static void big_free(void *p, size_t size)
{
    if (p == NULL)
        return;
    if (size == 0)
        size = 1;
#ifdef HAVE_MMAP
    munmap(p, size);
#else
    (void)size;
    free(p);
#endif
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Tables: the immutable static part of an index. Owns an aligned copy of the hashes (exported read-only through
 * the buffer protocol, so Python needs no second copy) and the per-chunk directories and entries. */

typedef struct {
    PyObject_HEAD
    uint8_t *hashes;
    size_t hashes_bytes;
    Py_ssize_t n;
    int m;
    int off[MAX_CHUNKS];
    int bits[MAX_CHUNKS];
    int dbits[MAX_CHUNKS]; /* directory bits: the top dbits of the chunk index the directory */
    uint32_t *dir[MAX_CHUNKS];
    uint32_t *ent[MAX_CHUNKS];
    size_t dir_bytes[MAX_CHUNKS];
    size_t ent_bytes;
    /* Tables.load: the arrays are the caller's (memory-mapped snapshot files), pinned by these views; nothing is
     * freed but the views. */
    int borrowed;
    int nviews;
    Py_buffer views[2 * MAX_CHUNKS + 1];
} TablesObject;

static PyTypeObject TablesType;

static void tables_free_arrays(TablesObject *t)
{
    if (t->borrowed) {
        for (int i = 0; i < t->nviews; i++)
            PyBuffer_Release(&t->views[i]);
        t->nviews = 0;
        t->hashes = NULL;
        for (int j = 0; j < t->m; j++)
            t->dir[j] = t->ent[j] = NULL;
        return;
    }
    for (int j = 0; j < t->m; j++) {
        big_free(t->dir[j], t->dir_bytes[j]);
        big_free(t->ent[j], t->ent_bytes);
        t->dir[j] = NULL;
        t->ent[j] = NULL;
    }
    big_free(t->hashes, t->hashes_bytes);
    t->hashes = NULL;
}

/* Counting sort of all rows by chunk j; returns 0 or -1 when out of memory. Runs without the GIL. */
static int build_chunk(TablesObject *t, int j)
{
    const int bits = t->bits[j], off = t->off[j], low = bits - t->dbits[j];
    const uint32_t low_mask = ((uint32_t)1 << low) - 1;
    const size_t nbuckets = (size_t)1 << t->dbits[j];
    const Py_ssize_t n = t->n;
    uint32_t *dir = big_alloc((nbuckets + 1) * sizeof(uint32_t));
    uint32_t *ent = big_alloc(t->ent_bytes);
    if (dir == NULL || ent == NULL) {
        big_free(dir, (nbuckets + 1) * sizeof(uint32_t));
        big_free(ent, t->ent_bytes);
        return -1;
    }
    t->dir[j] = dir;
    t->dir_bytes[j] = (nbuckets + 1) * sizeof(uint32_t);
    t->ent[j] = ent;

    uint64_t w[4];
    for (Py_ssize_t r = 0; r < n; r++) {
        load_hash(t->hashes + (size_t)r * HASH_BYTES, w);
        dir[(chunk_of(w, off, bits) >> low) + 1]++;
    }
    for (size_t b = 1; b <= nbuckets; b++)
        dir[b] += dir[b - 1];
    /* dir[b] is now the start of bucket b and serves as its fill cursor; afterwards it holds the start of b+1. */
    for (Py_ssize_t r = 0; r < n; r++) {
        load_hash(t->hashes + (size_t)r * HASH_BYTES, w);
        uint32_t c = chunk_of(w, off, bits);
        ent[dir[c >> low]++] = ((uint32_t)r << low) | (c & low_mask);
    }
    memmove(dir + 1, dir, nbuckets * sizeof(uint32_t));
    dir[0] = 0;
    return 0;
}

/* Where Tables(...) takes its rows from: one buffer of hashes, or (with rows) several buffers and the rows to
 * gather from them, numbered across the buffers one after another. Gathering straight into the table's own copy
 * spares a merge the copy of the live rows it would otherwise make first (32 bytes a row). */
#define MAX_GATHER 8

typedef struct {
    Py_buffer views[MAX_GATHER];
    int nviews;
    Py_buffer rows;
    int has_rows;
    Py_ssize_t starts[MAX_GATHER + 1]; /* first row of each buffer; starts[nviews] is the total */
} Input;

static void input_release(Input *in)
{
    for (int i = 0; i < in->nviews; i++)
        PyBuffer_Release(&in->views[i]);
    in->nviews = 0;
    if (in->has_rows)
        PyBuffer_Release(&in->rows);
    in->has_rows = 0;
}

static int input_add(Input *in, PyObject *obj)
{
    if (in->nviews == MAX_GATHER) {
        PyErr_SetString(PyExc_ValueError, "too many hash buffers to gather from");
        return -1;
    }
    Py_buffer *v = &in->views[in->nviews];
    if (PyObject_GetBuffer(obj, v, PyBUF_C_CONTIGUOUS) != 0)
        return -1;
    in->nviews++;
    if (v->len % HASH_BYTES != 0) {
        PyErr_SetString(PyExc_ValueError, "hashes must be a whole number of 32-byte rows");
        return -1;
    }
    in->starts[in->nviews] = in->starts[in->nviews - 1] + v->len / HASH_BYTES;
    return 0;
}

/* Returns the row count, or -1 with an exception set (the views taken so far are released by the caller). */
static Py_ssize_t input_parse(Input *in, PyObject *hashes_obj, PyObject *rows_obj)
{
    memset(in, 0, sizeof(*in));
    if (rows_obj == Py_None)
        return input_add(in, hashes_obj) != 0 ? -1 : in->starts[1];
    PyObject *seq = PySequence_Fast(hashes_obj, "with rows, hashes must be a sequence of buffers");
    if (seq == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        if (input_add(in, PySequence_Fast_GET_ITEM(seq, i)) != 0) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    if (PyObject_GetBuffer(rows_obj, &in->rows, PyBUF_C_CONTIGUOUS) != 0)
        return -1;
    in->has_rows = 1;
    if (in->rows.itemsize != 8 || in->rows.len % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "rows must be an int64 array");
        return -1;
    }
    return in->rows.len / 8;
}

/* Copy the rows into dst; -1 when a row number is out of range. Runs without the GIL. */
static int input_copy(const Input *in, uint8_t *dst, Py_ssize_t n)
{
    if (!in->has_rows) {
        memcpy(dst, in->views[0].buf, (size_t)n * HASH_BYTES);
        return 0;
    }
    const int64_t *rows = in->rows.buf;
    const Py_ssize_t total = in->starts[in->nviews];
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t g = rows[i];
        if (g < 0 || g >= total)
            return -1;
        int k = 0;
        while (g >= in->starts[k + 1])
            k++;
        memcpy(dst + (size_t)i * HASH_BYTES, (const uint8_t *)in->views[k].buf + (size_t)(g - in->starts[k]) * HASH_BYTES,
               HASH_BYTES);
    }
    return 0;
}

/* Tables(hashes, chunk_bits, dir_bits=0, rows=None): hashes is one buffer of 32-byte rows; with rows (int64), a
 * sequence of such buffers and the rows to take from them, in order. */
static PyObject *tables_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"hashes", "chunk_bits", "dir_bits", "rows", NULL};
    Input in;
    PyObject *hashes_obj, *bits_obj, *rows_obj = Py_None;
    int dir_bits = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|iO:Tables", kwlist, &hashes_obj, &bits_obj, &dir_bits,
                                     &rows_obj))
        return NULL;
    Py_ssize_t n = input_parse(&in, hashes_obj, rows_obj);
    if (n < 0) {
        input_release(&in);
        return NULL;
    }
    if (n >= MAX_ROWS) {
        input_release(&in);
        PyErr_SetString(PyExc_ValueError, "an index segment holds fewer than 2**30 rows");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(bits_obj, "chunk_bits must be a sequence of ints");
    if (seq == NULL) {
        input_release(&in);
        return NULL;
    }
    Py_ssize_t m = PySequence_Fast_GET_SIZE(seq);
    int bits[MAX_CHUNKS];
    int total = 0, max_low = 0;
    if (m > MAX_CHUNKS) {
        PyErr_SetString(PyExc_ValueError, "too many chunks");
        goto fail_seq;
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        long b = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, j));
        if (b == -1 && PyErr_Occurred())
            goto fail_seq;
        if (b < MIN_CHUNK_BITS || b > MAX_CHUNK_BITS) {
            PyErr_Format(PyExc_ValueError, "chunk widths must be %d..%d bits", MIN_CHUNK_BITS, MAX_CHUNK_BITS);
            goto fail_seq;
        }
        bits[j] = (int)b;
        total += (int)b;
        if (dir_bits > 0 && b - dir_bits > max_low)
            max_low = (int)b - dir_bits;
    }
    if (m > 0 && (dir_bits < 1 || dir_bits > MAX_CHUNK_BITS)) {
        PyErr_Format(PyExc_ValueError, "dir_bits must be 1..%d", MAX_CHUNK_BITS);
        goto fail_seq;
    }
    if (n > ((Py_ssize_t)1 << (32 - max_low))) {
        PyErr_SetString(PyExc_ValueError, "too many rows for the low bits kept in each entry; raise dir_bits");
        goto fail_seq;
    }
    if (m > 0 && total != HASH_BYTES * 8) {
        PyErr_SetString(PyExc_ValueError, "chunk widths must add up to 256 bits (or be empty for a linear scan)");
        goto fail_seq;
    }
    Py_DECREF(seq);

    TablesObject *t = (TablesObject *)type->tp_alloc(type, 0);
    if (t == NULL) {
        input_release(&in);
        return NULL;
    }
    t->n = n;
    t->m = (int)m;
    for (int j = 0, off = 0; j < t->m; j++) {
        t->bits[j] = bits[j];
        t->dbits[j] = bits[j] < dir_bits ? bits[j] : dir_bits;
        t->off[j] = off;
        off += bits[j];
    }
    t->hashes_bytes = (size_t)n * HASH_BYTES;
    t->ent_bytes = (size_t)n * sizeof(uint32_t);
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    t->hashes = big_alloc(t->hashes_bytes);
    if (t->hashes == NULL) {
        failed = 1;
    } else if (input_copy(&in, t->hashes, n) != 0) {
        failed = 2;
    } else {
        for (int j = 0; j < t->m && !failed; j++)
            failed = build_chunk(t, j) != 0;
    }
    Py_END_ALLOW_THREADS
    input_release(&in);
    if (failed) {
        Py_DECREF(t); /* dealloc frees what was built */
        if (failed == 2) {
            PyErr_SetString(PyExc_ValueError, "a row number is outside the hashes given");
            return NULL;
        }
        return PyErr_NoMemory();
    }
    return (PyObject *)t;

fail_seq:
    Py_DECREF(seq);
    input_release(&in);
    return NULL;
}

static void tables_dealloc(TablesObject *t)
{
    tables_free_arrays(t);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static int tables_getbuffer(TablesObject *t, Py_buffer *view, int flags)
{
    /* read-only (a writable request fails); the view holds a reference to t, so the memory outlives it */
    return PyBuffer_FillInfo(view, (PyObject *)t, t->hashes, (Py_ssize_t)t->hashes_bytes, 1, flags);
}

static size_t tables_nbytes(const TablesObject *t)
{
    size_t total = t->hashes_bytes + sizeof(TablesObject);
    for (int j = 0; j < t->m; j++)
        total += t->dir_bytes[j] + t->ent_bytes;
    return total;
}

static PyObject *tables_get_nbytes(TablesObject *t, void *closure)
{
    (void)closure;
    return PyLong_FromSize_t(tables_nbytes(t));
}

static PyObject *tables_get_rows(TablesObject *t, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(t->n);
}

static PyObject *int_tuple(const int *values, int n)
{
    PyObject *tuple = PyTuple_New(n);
    if (tuple == NULL)
        return NULL;
    for (int j = 0; j < n; j++) {
        PyObject *b = PyLong_FromLong(values[j]);
        if (b == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, j, b);
    }
    return tuple;
}

static PyObject *tables_get_chunk_bits(TablesObject *t, void *closure)
{
    (void)closure;
    return int_tuple(t->bits, t->m);
}

static PyObject *tables_get_dir_bits(TablesObject *t, void *closure)
{
    (void)closure;
    return int_tuple(t->dbits, t->m);
}

/* Tables.load(hashes, chunk_bits, dir_bits, dirs, ents): tables over arrays saved from another Tables (its
 * hashes, dir_array(j) and ent_array(j)), typically memory-mapped from a snapshot: nothing is built or copied, so a
 * restarted process answers at once. The sizes are checked; the contents are trusted to be what was saved. */
static PyObject *tables_load(PyObject *cls, PyObject *args)
{
    PyObject *hashes, *bits_obj, *dirs_obj, *ents_obj;
    int dir_bits;
    if (!PyArg_ParseTuple(args, "OOiOO:load", &hashes, &bits_obj, &dir_bits, &dirs_obj, &ents_obj))
        return NULL;
    TablesObject *t = (TablesObject *)((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, 0);
    if (t == NULL)
        return NULL;
    t->borrowed = 1;
    PyObject *bits = NULL, *dirs = NULL, *ents = NULL;
    Py_buffer *v = &t->views[t->nviews];
    if (PyObject_GetBuffer(hashes, v, PyBUF_C_CONTIGUOUS) != 0)
        goto fail;
    t->nviews++;
    if (v->len % HASH_BYTES != 0 || v->len / HASH_BYTES >= MAX_ROWS) {
        PyErr_SetString(PyExc_ValueError, "hashes must be a whole number of 32-byte rows, fewer than 2**30");
        goto fail;
    }
    t->hashes = v->buf;
    t->n = v->len / HASH_BYTES;
    t->hashes_bytes = (size_t)v->len;
    t->ent_bytes = (size_t)t->n * sizeof(uint32_t);
    bits = PySequence_Fast(bits_obj, "chunk_bits must be a sequence of ints");
    dirs = bits ? PySequence_Fast(dirs_obj, "dirs must be a sequence of buffers") : NULL;
    ents = dirs ? PySequence_Fast(ents_obj, "ents must be a sequence of buffers") : NULL;
    if (ents == NULL)
        goto fail;
    Py_ssize_t m = PySequence_Fast_GET_SIZE(bits);
    if (m > MAX_CHUNKS || PySequence_Fast_GET_SIZE(dirs) != m || PySequence_Fast_GET_SIZE(ents) != m ||
        (m > 0 && (dir_bits < 1 || dir_bits > MAX_CHUNK_BITS))) {
        PyErr_SetString(PyExc_ValueError, "one directory and one entry array per chunk, at most 64 chunks");
        goto fail;
    }
    int total = 0;
    t->m = 0;
    for (Py_ssize_t j = 0; j < m; j++) {
        long b = PyLong_AsLong(PySequence_Fast_GET_ITEM(bits, j));
        if (b == -1 && PyErr_Occurred())
            goto fail;
        if (b < MIN_CHUNK_BITS || b > MAX_CHUNK_BITS || b - (b < dir_bits ? b : dir_bits) > 32) {
            PyErr_Format(PyExc_ValueError, "chunk widths must be %d..%d bits", MIN_CHUNK_BITS, MAX_CHUNK_BITS);
            goto fail;
        }
        t->bits[j] = (int)b;
        t->dbits[j] = (int)b < dir_bits ? (int)b : dir_bits;
        t->off[j] = total;
        total += (int)b;
        if (t->n > ((Py_ssize_t)1 << (32 - (t->bits[j] - t->dbits[j])))) {
            PyErr_SetString(PyExc_ValueError, "too many rows for the low bits kept in each entry");
            goto fail;
        }
        Py_buffer *dv = &t->views[t->nviews];
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(dirs, j), dv, PyBUF_C_CONTIGUOUS) != 0)
            goto fail;
        t->nviews++;
        Py_buffer *ev = &t->views[t->nviews];
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(ents, j), ev, PyBUF_C_CONTIGUOUS) != 0)
            goto fail;
        t->nviews++;
        t->m = (int)j + 1; /* counted only once both views are held, so a failure frees nothing twice */
        const size_t dir_bytes = (((size_t)1 << t->dbits[j]) + 1) * sizeof(uint32_t);
        if ((size_t)dv->len != dir_bytes || (size_t)ev->len != t->ent_bytes) {
            PyErr_SetString(PyExc_ValueError, "a directory or entry array has the wrong size for its chunk");
            goto fail;
        }
        const uint32_t *dir = dv->buf;
        if (dir[(size_t)1 << t->dbits[j]] != (uint32_t)t->n) {
            PyErr_SetString(PyExc_ValueError, "a directory does not end at the row count");
            goto fail;
        }
        t->dir[j] = dv->buf;
        t->ent[j] = ev->buf;
        t->dir_bytes[j] = dir_bytes;
    }
    if (m > 0 && total != HASH_BYTES * 8) {
        PyErr_SetString(PyExc_ValueError, "chunk widths must add up to 256 bits");
        goto fail;
    }
    Py_DECREF(bits);
    Py_DECREF(dirs);
    Py_DECREF(ents);
    return (PyObject *)t;
fail:
    Py_XDECREF(bits);
    Py_XDECREF(dirs);
    Py_XDECREF(ents);
    Py_DECREF(t);
    return NULL;
}

/* dir_array(j) / ent_array(j): read-only memoryviews of chunk j's arrays (uint32), for writing a snapshot. They
 * do not keep the Tables alive: copy them out (np.save does) while holding it. */
static PyObject *tables_array(TablesObject *t, PyObject *arg, int ent)
{
    long j = PyLong_AsLong(arg);
    if (j == -1 && PyErr_Occurred())
        return NULL;
    if (j < 0 || j >= t->m) {
        PyErr_SetString(PyExc_IndexError, "no such chunk");
        return NULL;
    }
    char *p = (char *)(ent ? t->ent[j] : t->dir[j]);
    Py_ssize_t len = (Py_ssize_t)(ent ? t->ent_bytes : t->dir_bytes[j]);
    return PyMemoryView_FromMemory(p, len, PyBUF_READ);
}

static PyObject *tables_dir_array(TablesObject *t, PyObject *arg) { return tables_array(t, arg, 0); }
static PyObject *tables_ent_array(TablesObject *t, PyObject *arg) { return tables_array(t, arg, 1); }

static PyMethodDef tables_methods[] = {
    {"load", (PyCFunction)tables_load, METH_VARARGS | METH_CLASS,
     "load(hashes, chunk_bits, dir_bits, dirs, ents) -> Tables over saved arrays (no copy, no build)"},
    {"dir_array", (PyCFunction)tables_dir_array, METH_O, "dir_array(j) -> memoryview of chunk j's directory"},
    {"ent_array", (PyCFunction)tables_ent_array, METH_O, "ent_array(j) -> memoryview of chunk j's entries"},
    {NULL, NULL, 0, NULL},
};

static PyObject *tables_get_borrowed(TablesObject *t, void *closure)
{
    (void)closure;
    return PyBool_FromLong(t->borrowed);
}

static PyGetSetDef tables_getset[] = {
    {"borrowed", (getter)tables_get_borrowed, NULL, "whether the arrays are a caller's (a loaded snapshot)", NULL},
    {"nbytes", (getter)tables_get_nbytes, NULL, "bytes held (hashes, directories, entries)", NULL},
    {"rows", (getter)tables_get_rows, NULL, "number of rows", NULL},
    {"chunk_bits", (getter)tables_get_chunk_bits, NULL, "chunk widths; empty when queries scan linearly", NULL},
    {"dir_bits", (getter)tables_get_dir_bits, NULL, "directory bits of each chunk", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyBufferProcs tables_as_buffer = {
    (getbufferproc)tables_getbuffer,
    NULL,
};

/* ------------------------------------------------------------------------------------------------------------ */
/* Search. */

typedef struct {
    int64_t key;
    uint32_t q;
    int32_t dist;
} Hit;

typedef struct {
    Hit *v;
    size_t n, cap;
    int oom;
} HitBuf;

typedef struct {
    const TablesObject *tables; /* NULL: scan linearly */
    const uint8_t *hashes;
    Py_ssize_t n;
    const void *keys;
    int key_size; /* 8: int64, 4: uint32 */
    const uint8_t *dead; /* bitset of removed rows (bit r%8 of byte r/8), or NULL */
} Source;

static inline void emit(HitBuf *hb, const Source *s, uint32_t q, size_t row, int dist)
{
    if (s->dead != NULL && ((s->dead[row >> 3] >> (row & 7)) & 1))
        return;
    if (hb->n == hb->cap) {
        size_t cap = hb->cap ? hb->cap * 2 : 64;
        Hit *v = realloc(hb->v, cap * sizeof(Hit));
        if (v == NULL) {
            hb->oom = 1;
            return;
        }
        hb->v = v;
        hb->cap = cap;
    }
    Hit *h = &hb->v[hb->n++];
    h->key = s->key_size == 8 ? ((const int64_t *)s->keys)[row] : (int64_t)((const uint32_t *)s->keys)[row];
    h->q = q;
    h->dist = dist;
}

/* Up to EARLY_EXIT_MAX, half the hash decides almost every row: unrelated 128-bit halves differ in ~64 bits, far
 * above such thresholds, so the second half is read only for the rare row whose first half is close enough (the
 * branch is then well predicted). Above it that branch would be a coin flip, so all four words are counted. */
static void scan_linear(const Source *s, uint32_t qi, const uint64_t q[4], int T, HitBuf *hb)
{
    const uint8_t *p = s->hashes;
    uint64_t w[4];
    if (T <= EARLY_EXIT_MAX) {
        for (Py_ssize_t r = 0; r < s->n; r++, p += HASH_BYTES) {
            memcpy(w, p, 16);
            int d = POPCOUNT64(w[0] ^ q[0]) + POPCOUNT64(w[1] ^ q[1]);
            if (d > T)
                continue;
            memcpy(w + 2, p + 16, 16);
            d += POPCOUNT64(w[2] ^ q[2]) + POPCOUNT64(w[3] ^ q[3]);
            if (d <= T)
                emit(hb, s, qi, (size_t)r, d);
        }
        return;
    }
    for (Py_ssize_t r = 0; r < s->n; r++, p += HASH_BYTES) {
        load_hash(p, w);
        int d = hash_distance(w, q);
        if (d <= T)
            emit(hb, s, qi, (size_t)r, d);
    }
}

static double linear_cost(int T, double n)
{
    return (T <= EARLY_EXIT_MAX ? COST_LINEAR_EARLY : COST_LINEAR) * n;
}

static double n_choose_k_sum(int n, int r)
{
    /* number of n-bit strings within r bits of a given one */
    double term = 1.0, sum = 0.0;
    if (r > n)
        r = n;
    for (int k = 0; k <= r; k++) {
        sum += term;
        term = term * (double)(n - k) / (double)(k + 1);
    }
    return sum;
}

static double chunk_cost(int bits, int dbits, int radius, double n)
{
    if (radius < 0)
        return 0.0;
    double probes = n_choose_k_sum(dbits, radius);
    double entries = probes * n / (double)((uint64_t)1 << dbits);
    double cands = n * n_choose_k_sum(bits, radius) / (double)((uint64_t)1 << bits);
    return probes * COST_PROBE + entries * COST_ENTRY + cands * COST_CAND;
}

/* Sets radius[] for threshold T (refined pigeonhole) and returns the estimated cost. The chunks searched one bit
 * narrower are the ones where that saves most. */
static double plan_radii(int m, const int *bits, const int *dbits, double n, int T, int radius[])
{
    const int r = T / m, wide = T % m + 1;
    double saving[MAX_CHUNKS];
    for (int j = 0; j < m; j++) {
        radius[j] = r;
        saving[j] = chunk_cost(bits[j], dbits[j], r, n) - chunk_cost(bits[j], dbits[j], r - 1, n);
    }
    for (int narrowed = 0; narrowed < m - wide; narrowed++) {
        int best = -1;
        for (int j = 0; j < m; j++)
            if (radius[j] == r && (best < 0 || saving[j] > saving[best]))
                best = j;
        radius[best] = r - 1;
    }
    double cost = 0.0;
    for (int j = 0; j < m; j++)
        cost += chunk_cost(bits[j], dbits[j], radius[j], n);
    return cost;
}

typedef struct {
    const TablesObject *t;
    const Source *src;
    uint32_t qi;
    const uint64_t *q;
    int T;
    int radius[MAX_CHUNKS];
    uint32_t qc[MAX_CHUNKS];
    HitBuf *hb;
} Query;

static void check_candidates(const Query *Q, int j, const uint32_t *cand, int nc)
{
    const TablesObject *t = Q->t;
    uint64_t w[4];
    unsigned long long t0 = STAT_TSC();
    (void)t0;
    STAT(cands, nc);
    for (int c = 0; c < nc; c++) {
        const size_t row = cand[c];
        load_hash(t->hashes + row * HASH_BYTES, w);
        int d = hash_distance(w, Q->q);
        if (d > Q->T)
            continue;
        int seen = 0;
        for (int i = 0; i < j && !seen; i++)
            seen = Q->radius[i] >= 0 &&
                   POPCOUNT32(chunk_of(w, t->off[i], t->bits[i]) ^ Q->qc[i]) <= Q->radius[i];
        if (!seen)
            emit(Q->hb, Q->src, Q->qi, row, d);
        STAT(passed, 1);
    }
    STAT(check_cycles, STAT_TSC() - t0);
}

static void probe_block(const Query *Q, int j, const uint32_t *top, const uint8_t *tdist, int np,
                        uint32_t *cand, int *nc)
{
    const TablesObject *t = Q->t;
    const uint32_t *dir = t->dir[j], *ent = t->ent[j];
    const int low = t->bits[j] - t->dbits[j];
    const uint32_t low_mask = ((uint32_t)1 << low) - 1, qlow = Q->qc[j] & low_mask;
    const int R = Q->radius[j];
    uint32_t lo[PROBE_BLOCK], hi[PROBE_BLOCK];

    STAT(probes, np);
    for (int i = 0; i < np; i++)
        PREFETCH(dir + top[i]);
    for (int i = 0; i < np; i++) {
        lo[i] = dir[top[i]];
        hi[i] = dir[top[i] + 1];
        if (lo[i] < hi[i]) {
            PREFETCH(ent + lo[i]);
            PREFETCH(ent + hi[i] - 1);
        }
    }
    /* The hash of each candidate is prefetched as soon as it is known; checking waits until the whole block (or
     * CAND_BLOCK candidates) is collected. A branch-free version of this loop measured slower. */
    int n = *nc;
    for (int i = 0; i < np; i++) {
        const int budget = R - tdist[i];
        STAT(entries, hi[i] - lo[i]);
        for (uint32_t e = lo[i]; e < hi[i]; e++) {
            const uint32_t v = ent[e];
            if (POPCOUNT32((v ^ qlow) & low_mask) > budget)
                continue;
            cand[n++] = v >> low;
            PREFETCH(t->hashes + (size_t)(v >> low) * HASH_BYTES);
            if (n == CAND_BLOCK) {
                check_candidates(Q, j, cand, n);
                n = 0;
            }
        }
    }
    *nc = n;
}

static void search_chunk(const Query *Q, int j)
{
    const int R = Q->radius[j];
    if (R < 0)
        return;
    const int nb = Q->t->dbits[j];
    const int rtop = R < nb ? R : nb;
    const uint64_t limit = (uint64_t)1 << nb;
    const uint32_t qtop = Q->qc[j] >> (Q->t->bits[j] - nb);
    uint32_t top[PROBE_BLOCK], cand[CAND_BLOCK];
    uint8_t tdist[PROBE_BLOCK];
    int np = 0, nc = 0;

    /* Every top-bits value within rtop of the query's, by number of flipped bits; masks of k bits are walked in
     * increasing order with Gosper's hack. */
    for (int k = 0; k <= rtop; k++) {
        uint64_t mask = (k == 0) ? 0 : ((uint64_t)1 << k) - 1;
        while (mask < limit) {
            top[np] = qtop ^ (uint32_t)mask;
            tdist[np] = (uint8_t)k;
            if (++np == PROBE_BLOCK) {
                probe_block(Q, j, top, tdist, np, cand, &nc);
                np = 0;
            }
            if (k == 0)
                break;
            uint64_t c = mask & (~mask + 1), r = mask + c;
            mask = (((r ^ mask) >> 2) / c) | r;
        }
    }
    if (np > 0)
        probe_block(Q, j, top, tdist, np, cand, &nc);
    if (nc > 0)
        check_candidates(Q, j, cand, nc);
}

static void search_source(const Source *s, uint32_t qi, const uint64_t q[4], int T, HitBuf *hb)
{
    const TablesObject *t = s->tables;
    if (t == NULL || t->m == 0 || s->n == 0) {
        scan_linear(s, qi, q, T, hb);
        return;
    }
    Query Q;
    Q.t = t;
    Q.src = s;
    Q.qi = qi;
    Q.q = q;
    Q.T = T;
    Q.hb = hb;
    double cost = plan_radii(t->m, t->bits, t->dbits, (double)t->n, T, Q.radius);
    if (cost > linear_cost(T, (double)s->n)) {
        scan_linear(s, qi, q, T, hb);
        return;
    }
    for (int j = 0; j < t->m; j++)
        Q.qc[j] = chunk_of(q, t->off[j], t->bits[j]);
    unsigned long long t0 = STAT_TSC();
    (void)t0;
    for (int j = 0; j < t->m; j++)
        search_chunk(&Q, j);
    STAT(search_cycles, STAT_TSC() - t0);
    STAT(sources, 1);
}

static int hit_order(const void *a, const void *b)
{
    const Hit *x = a, *y = b;
    if (x->q != y->q)
        return x->q < y->q ? -1 : 1;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Python entry point. */

typedef struct {
    Source src[MAX_SOURCES];
    Py_buffer views[MAX_SOURCES * 3];
    int nviews;
    int nsrc;
} Sources;

static void sources_release(Sources *S)
{
    for (int i = 0; i < S->nviews; i++)
        PyBuffer_Release(&S->views[i]);
    S->nviews = 0;
}

static int get_view(Sources *S, PyObject *obj, Py_buffer **out)
{
    Py_buffer *v = &S->views[S->nviews];
    if (PyObject_GetBuffer(obj, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0)
        return -1;
    S->nviews++;
    *out = v;
    return 0;
}

/* Each source is (hashes, keys, dead, count, tables). With tables set, its own hashes and row count are used and
 * hashes may be None. keys: int64 (itemsize 8) or uint32 (itemsize 4); dead: a bitset or None. */
static int parse_sources(PyObject *seq_obj, Sources *S)
{
    S->nviews = 0;
    S->nsrc = 0;
    PyObject *seq = PySequence_Fast(seq_obj, "sources must be a sequence");
    if (seq == NULL)
        return -1;
    Py_ssize_t ns = PySequence_Fast_GET_SIZE(seq);
    if (ns > MAX_SOURCES) {
        PyErr_SetString(PyExc_ValueError, "too many sources");
        goto fail;
    }
    for (Py_ssize_t i = 0; i < ns; i++) {
        PyObject *hashes, *keys, *dead, *tables;
        Py_ssize_t count;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i),
                              "OOOnO;a source is (hashes, keys, dead, count, tables)", &hashes, &keys, &dead,
                              &count, &tables))
            goto fail;
        Source *s = &S->src[S->nsrc];
        memset(s, 0, sizeof(*s));
        Py_buffer *v;
        if (tables != Py_None) {
            if (!PyObject_TypeCheck(tables, &TablesType)) {
                PyErr_SetString(PyExc_TypeError, "tables must be a Tables or None");
                goto fail;
            }
            /* the caller's tuple holds a reference for the whole call */
            s->tables = (const TablesObject *)tables;
            s->hashes = s->tables->hashes;
            s->n = s->tables->n;
        } else {
            if (get_view(S, hashes, &v) != 0)
                goto fail;
            if (count < 0 || v->len < count * HASH_BYTES) {
                PyErr_SetString(PyExc_ValueError, "hashes shorter than count");
                goto fail;
            }
            s->hashes = v->buf;
            s->n = count;
        }
        if (get_view(S, keys, &v) != 0)
            goto fail;
        if ((v->itemsize != 8 && v->itemsize != 4) || v->len < s->n * v->itemsize) {
            PyErr_SetString(PyExc_ValueError, "keys must be int64 or uint32 with a key per row");
            goto fail;
        }
        s->keys = v->buf;
        s->key_size = (int)v->itemsize;
        if (dead != Py_None) {
            if (get_view(S, dead, &v) != 0)
                goto fail;
            if (v->len < (s->n + 7) / 8) {
                PyErr_SetString(PyExc_ValueError, "dead bitset too short");
                goto fail;
            }
            s->dead = v->buf;
        }
        S->nsrc++;
    }
    Py_DECREF(seq);
    return 0;
fail:
    Py_DECREF(seq);
    sources_release(S);
    return -1;
}

/* hit_type: NULL for plain (key, distance) tuples, or a tuple subclass of two fields (a NamedTuple such as
 * IndexHit) built the way tuple.__new__ builds one: a query near a large cluster returns hundreds of hits, and
 * converting plain tuples in Python cost more than the search. */
static PyObject *hits_to_list(const Hit *v, size_t n, PyTypeObject *hit_type)
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *key = PyLong_FromLongLong(v[i].key);
        PyObject *dist = PyLong_FromLong(v[i].dist);
        PyObject *pair = NULL;
        if (key && dist) {
            pair = hit_type ? hit_type->tp_alloc(hit_type, 2) : PyTuple_New(2);
            if (pair != NULL) { /* the tuple steals both references */
                PyTuple_SET_ITEM(pair, 0, key);
                PyTuple_SET_ITEM(pair, 1, dist);
                key = dist = NULL;
            }
        }
        Py_XDECREF(key);
        Py_XDECREF(dist);
        if (pair == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, pair);
    }
    return list;
}

/* search(sources, queries, threshold, batch[, hit_type]) -> list of (key, distance) sorted by (distance, key), or
 * with batch=True a list of such lists, one per 32-byte query; each pair a hit_type when given. */
static PyObject *mih_search(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *sources_obj, *hit_obj = Py_None;
    Py_buffer qview;
    int T, batch;
    if (!PyArg_ParseTuple(args, "Oy*ip|O:search", &sources_obj, &qview, &T, &batch, &hit_obj))
        return NULL;
    PyTypeObject *hit_type = NULL;
    if (hit_obj != Py_None) {
        if (!PyType_Check(hit_obj) || !PyType_IsSubtype((PyTypeObject *)hit_obj, &PyTuple_Type) ||
            ((PyTypeObject *)hit_obj)->tp_basicsize != PyTuple_Type.tp_basicsize) {
            PyBuffer_Release(&qview);
            PyErr_SetString(PyExc_TypeError, "hit_type must be a plain tuple subclass (a NamedTuple)");
            return NULL;
        }
        hit_type = (PyTypeObject *)hit_obj;
    }
    if (T < 0 || T > MAX_THRESHOLD) {
        PyBuffer_Release(&qview);
        PyErr_Format(PyExc_ValueError, "threshold must be 0..%d, got %d", MAX_THRESHOLD, T);
        return NULL;
    }
    if (qview.len % HASH_BYTES != 0 || (!batch && qview.len != HASH_BYTES)) {
        PyBuffer_Release(&qview);
        PyErr_SetString(PyExc_ValueError, "queries must be 32-byte hashes");
        return NULL;
    }
    Sources S;
    if (parse_sources(sources_obj, &S) != 0) {
        PyBuffer_Release(&qview);
        return NULL;
    }
    const size_t nq = (size_t)qview.len / HASH_BYTES;
    if (nq > UINT32_MAX) {
        sources_release(&S);
        PyBuffer_Release(&qview);
        PyErr_SetString(PyExc_ValueError, "too many queries");
        return NULL;
    }
    HitBuf hb = {NULL, 0, 0, 0};
    Py_BEGIN_ALLOW_THREADS
    /* Source by source, then query by query: a batch then works through one segment's tables at a time, whose
     * pages the TLB can cover (a 25M-row segment is ~1,100 huge pages), instead of all segments' for every query
     * (8+ GiB at 100M rows, beyond its reach). The hits are put in query order once at the end. */
    uint64_t q[4];
    for (int s = 0; s < S.nsrc && !hb.oom; s++) {
        for (size_t qi = 0; qi < nq && !hb.oom; qi++) {
            load_hash((const uint8_t *)qview.buf + qi * HASH_BYTES, q);
            search_source(&S.src[s], (uint32_t)qi, q, T, &hb);
        }
    }
    if (!hb.oom && hb.n > 1)
        qsort(hb.v, hb.n, sizeof(Hit), hit_order);
    Py_END_ALLOW_THREADS
    sources_release(&S);
    PyBuffer_Release(&qview);
    if (hb.oom) {
        free(hb.v);
        return PyErr_NoMemory();
    }

    PyObject *result;
    if (!batch) {
        result = hits_to_list(hb.v, hb.n, hit_type);
    } else {
        result = PyList_New((Py_ssize_t)nq);
        size_t i = 0;
        for (size_t qi = 0; result != NULL && qi < nq; qi++) {
            size_t start = i;
            while (i < hb.n && hb.v[i].q == qi)
                i++;
            PyObject *one = hits_to_list(hb.v + start, i - start, hit_type);
            if (one == NULL)
                Py_CLEAR(result);
            else
                PyList_SET_ITEM(result, (Py_ssize_t)qi, one);
        }
    }
    free(hb.v);
    return result;
}

/* estimate(chunk_bits, dir_bits, rows, threshold) -> modelled ns for one query: the cheaper of MIH and a linear
 * scan, the same choice search makes. pdq_index.py picks its layout with it, so the two never disagree. */
static PyObject *mih_estimate(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *bits_obj;
    Py_ssize_t n;
    int T, dir_bits;
    if (!PyArg_ParseTuple(args, "Oini:estimate", &bits_obj, &dir_bits, &n, &T))
        return NULL;
    PyObject *seq = PySequence_Fast(bits_obj, "chunk_bits must be a sequence of ints");
    if (seq == NULL)
        return NULL;
    Py_ssize_t m = PySequence_Fast_GET_SIZE(seq);
    int bits[MAX_CHUNKS], dbits[MAX_CHUNKS], radius[MAX_CHUNKS];
    if (m > MAX_CHUNKS || T < 0 || T > MAX_THRESHOLD || n < 0 ||
        (m > 0 && (dir_bits < 1 || dir_bits > MAX_CHUNK_BITS))) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "bad chunk count, threshold or row count");
        return NULL;
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        long b = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, j));
        if (b < MIN_CHUNK_BITS || b > MAX_CHUNK_BITS) {
            Py_DECREF(seq);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "bad chunk width");
            return NULL;
        }
        bits[j] = (int)b;
        dbits[j] = bits[j] < dir_bits ? bits[j] : dir_bits;
    }
    Py_DECREF(seq);
    double linear = linear_cost(T, (double)n);
    if (m == 0)
        return PyFloat_FromDouble(linear);
    double cost = plan_radii((int)m, bits, dbits, (double)n, T, radius);
    return PyFloat_FromDouble(cost < linear ? cost : linear);
}

#ifdef MIH_STATS
/* stats(reset=False) -> dict of the counters since the last reset (profiling build only). */
static PyObject *mih_stats_get(PyObject *self, PyObject *args)
{
    (void)self;
    int reset = 0;
    if (!PyArg_ParseTuple(args, "|p:stats", &reset))
        return NULL;
    PyObject *d = Py_BuildValue("{sKsKsKsKsKsKsK}", "probes", mih_stats.probes, "entries", mih_stats.entries,
                                "candidates", mih_stats.cands, "passed", mih_stats.passed, "check_cycles",
                                mih_stats.check_cycles, "search_cycles", mih_stats.search_cycles, "sources",
                                mih_stats.sources);
    if (reset)
        memset(&mih_stats, 0, sizeof(mih_stats));
    return d;
}
#endif

static PyMethodDef mih_methods[] = {
#ifdef MIH_STATS
    {"stats", mih_stats_get, METH_VARARGS, "stats(reset=False) -> counters (profiling build only)"},
#endif
    {"estimate", mih_estimate, METH_VARARGS,
     "estimate(chunk_bits, dir_bits, rows, threshold) -> modelled ns per query"},
    {"search", mih_search, METH_VARARGS,
     "search(sources, queries, threshold, batch[, hit_type]) -> hits sorted by (distance, key); see pdq_index.py"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TablesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bastion.hashing._mih.Tables",
    .tp_basicsize = sizeof(TablesObject),
    .tp_dealloc = (destructor)tables_dealloc,
    .tp_as_buffer = &tables_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Tables(hashes, chunk_bits, dir_bits): immutable MIH tables over an aligned copy of 32-byte hashes.",
    .tp_getset = tables_getset,
    .tp_methods = tables_methods,
    .tp_new = tables_new,
};

static struct PyModuleDef mih_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_mih",
    .m_doc = "Exact Hamming-radius search over 256-bit hashes by multi-index hashing.",
    .m_size = -1,
    .m_methods = mih_methods,
};

PyMODINIT_FUNC PyInit__mih(void)
{
    if (PyType_Ready(&TablesType) < 0)
        return NULL;
    PyObject *mod = PyModule_Create(&mih_module);
    if (mod == NULL)
        return NULL;
    Py_INCREF(&TablesType);
    if (PyModule_AddObject(mod, "Tables", (PyObject *)&TablesType) < 0) {
        Py_DECREF(&TablesType);
        Py_DECREF(mod);
        return NULL;
    }
    if (PyModule_AddIntConstant(mod, "MAX_ROWS", (long)MAX_ROWS) < 0 ||
        PyModule_AddIntConstant(mod, "MIN_CHUNK_BITS", MIN_CHUNK_BITS) < 0 ||
        PyModule_AddIntConstant(mod, "MAX_CHUNKS", MAX_CHUNKS) < 0 ||
        PyModule_AddIntConstant(mod, "MAX_CHUNK_BITS", MAX_CHUNK_BITS) < 0 ||
        PyModule_AddIntConstant(mod, "MAX_SOURCES", MAX_SOURCES) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
