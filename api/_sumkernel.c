/* The summing kernel: the exact sum of every number in a JSON document, in one pass over its
 * UTF-8 bytes, with no Python object per value.
 *
 * It gives exactly the answers of api/summing.py's pure-Python path (the reference), which wraps
 * it: scan() returns the canonical text, an error tuple for the wrapper to word, or None for
 * limits beyond the kernel's (the Python path's then). docs/performance.md says why it is built
 * this way.
 *
 * - Grammar: RFC 8259 as Python's json module reads it (the same error at the same place, with
 *   its message), UTF-8 checked as bytes.decode("utf-8") does, at any depth: containers are kept
 *   on an explicit stack of one byte per level, plus a small frame per open object.
 * - Sum: each literal is significand x 10^exponent; significands of up to 19 digits (cut into
 *   18-digit pieces when longer) are added into 128-bit buckets, one per power of ten, for
 *   positive and negative literals apart. A bucket gets at most two adds per input byte (one
 *   more where a repeated key shadows a value, below), each below 10^19 < 2^64, so none can
 *   overflow before the input reaches 2^63 bytes. At the end the buckets are carried into
 *   decimal digits and the canonical text is written.
 * - Repeated keys: the keys of the open objects sit in one open-addressing table, removed in
 *   reverse order of insertion as objects close (which linear probing allows without tombstones),
 *   hashed with SipHash under a key random per process, so that no document made without the
 *   key can make them collide.
 *   Where a key repeats, the last value wins: the earlier member's value is shadowed. It is
 *   added like any other during the scan and taken away after it: each shadowed value not
 *   inside another is read again into buckets of its own, which then count against the sum.
 *   A byte is read again at most once.
 *
 * The scan runs with the GIL released, on the buffer the caller passed (which must not change
 * meanwhile).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

/* SipHash-1-3 (Aumasson and Bernstein's reference construction, with the rounds CPython uses for
 * its str and bytes hashes), keyed once per process from os.urandom: the key table's hash is
 * secret whatever PYTHONHASHSEED says, and needs no interpreter state (the scan runs without the
 * GIL). */
static uint64_t SIP_K0, SIP_K1;

#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND(v0, v1, v2, v3)                                                              \
    do {                                                                                        \
        v0 += v1; v1 = SIP_ROTL(v1, 13); v1 ^= v0; v0 = SIP_ROTL(v0, 32);                       \
        v2 += v3; v3 = SIP_ROTL(v3, 16); v3 ^= v2;                                              \
        v0 += v3; v3 = SIP_ROTL(v3, 21); v3 ^= v0;                                              \
        v2 += v1; v1 = SIP_ROTL(v1, 17); v1 ^= v2; v2 = SIP_ROTL(v2, 32);                       \
    } while (0)

/* The little-endian word at `bytes`, whatever the machine's order. */
static uint64_t
le64(const unsigned char *bytes)
{
    uint64_t word;
    memcpy(&word, bytes, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64(word);
#endif
    return word;
}

/* Inlined into add_key, as the compiler would not for a function with a second caller (the
 * tests' siphash13 below): called out of line, it cost documents of long keys 15 %. */
static inline __attribute__((always_inline)) uint64_t
siphash13(uint64_t k0, uint64_t k1, const unsigned char *in, size_t len)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    uint64_t last = (uint64_t)len << 56, m;
    size_t whole = len & ~(size_t)7;

    for (size_t i = 0; i < whole; i += 8) {
        m = le64(in + i);
        v3 ^= m;
        SIP_ROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    const unsigned char *tail = in + whole;
    switch (len & 7) {
    case 7: last |= (uint64_t)tail[6] << 48; /* fall through */
    case 6: last |= (uint64_t)tail[5] << 40; /* fall through */
    case 5: last |= (uint64_t)tail[4] << 32; /* fall through */
    case 4: last |= (uint64_t)tail[3] << 24; /* fall through */
    case 3: last |= (uint64_t)tail[2] << 16; /* fall through */
    case 2: last |= (uint64_t)tail[1] << 8; /* fall through */
    case 1: last |= (uint64_t)tail[0];
    }
    v3 ^= last;
    SIP_ROUND(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xff;
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* Limits beyond this go to the Python path: the bucket window spans both of them. */
#define MAX_KERNEL_LIMIT (1L << 20)

enum status { ST_OK, ST_SYNTAX, ST_CONSTANT, ST_UTF8, ST_NOMEM };
enum limit_kind { LIMIT_NONE, LIMIT_LENGTH, LIMIT_EXPONENT };

typedef struct {
    u128 sides[2]; /* the positive literals' significands, and the negative ones' */
} Bucket;

typedef struct {
    size_t off;     /* in the key arena */
    size_t len;
    size_t level;   /* which open object: its index on the object stack */
    uint64_t hash;
    size_t value;   /* where its member's value starts (its latest member's) */
} Key;

typedef struct {
    size_t keys;    /* the key count when the object opened */
    size_t arena;   /* the arena's length then */
} ObjectFrame;

typedef struct {
    const unsigned char *buf;
    size_t len;
    size_t max_length;
    int64_t max_exponent;

    /* the sum: buckets[i] holds the coefficients of 10^(base + i) */
    Bucket *buckets;
    size_t nbuckets;
    int64_t base, lo, hi;

    /* the first literal over a limit: the scan goes on, since invalid JSON answers first */
    int limit;
    size_t limit_length;
    size_t limit_exp_start, limit_exp_len; /* the exponent's sign and digits, zeros stripped */
    int limit_exp_sign;                    /* '+', '-' or 0 */

    /* the error, if any */
    const char *message;
    size_t error_at;

    /* containers: one byte per level (0 array, 1 object) */
    unsigned char *stack;
    size_t depth, stack_cap;
    ObjectFrame *objects;
    size_t nobjects, objects_cap;

    /* keys of the open objects */
    unsigned char *arena;
    size_t arena_len, arena_cap;
    Key *keys;
    size_t *key_slot;
    size_t nkeys, keys_cap, key_slot_cap;
    size_t *table; /* key index + 1, 0 for an empty slot */
    size_t table_cap;

    /* where the values of members whose key came again in their object start */
    size_t *shadowed;
    size_t nshadowed, shadowed_cap;
} Scan;

static unsigned char PLAIN[256]; /* string bytes needing no attention */
static unsigned char SPACE[256];

#define IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)

static int
fail(Scan *s, const char *message, size_t at)
{
    s->message = message;
    s->error_at = at;
    return ST_SYNTAX;
}

static int
grow(void **array, size_t *cap, size_t need, size_t item)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need) {
        if (cap2 > SIZE_MAX / 2 / item)
            return -1;
        cap2 *= 2;
    }
    void *grown = realloc(*array, cap2 * item);
    if (grown == NULL)
        return -1;
    *array = grown;
    *cap = cap2;
    return 0;
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at p (a byte >= 0x80), or 0 if it is not one:
 * the same judgement as CPython's decoder (no overlongs, surrogates or code points past
 * U+10FFFF). */
static size_t
utf8_sequence(const unsigned char *b, size_t p, size_t n)
{
    unsigned c = b[p];
    unsigned lo = 0x80, hi = 0xBF;
    size_t length;
    if (c >= 0xC2 && c <= 0xDF)
        length = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        length = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        length = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    }
    else
        return 0;
    if (n - p < length)
        return 0;
    if (b[p + 1] < lo || b[p + 1] > hi)
        return 0;
    for (size_t i = 2; i < length; i++)
        if ((b[p + i] & 0xC0) != 0x80)
            return 0;
    return length;
}

/* The offset of the first byte that is not valid UTF-8, or n. */
static size_t
first_invalid_utf8(const unsigned char *b, size_t n)
{
    size_t p = 0;
    while (p < n) {
        if (b[p] < 0x80) {
            p++;
            continue;
        }
        size_t length = utf8_sequence(b, p, n);
        if (length == 0)
            return p;
        p += length;
    }
    return n;
}

/* ---- the sum ------------------------------------------------------------------------- */

static int
reach(Scan *s, int64_t exponent)
{
    if (s->buckets != NULL && exponent >= s->base &&
        exponent < s->base + (int64_t)s->nbuckets)
        return 0;
    int64_t lo = exponent, hi = exponent;
    if (s->buckets != NULL) {
        if (s->base < lo)
            lo = s->base;
        if (s->base + (int64_t)s->nbuckets - 1 > hi)
            hi = s->base + (int64_t)s->nbuckets - 1;
    }
    /* room around what is needed, so that a spread of exponents grows the window rarely */
    int64_t span = hi - lo + 1;
    int64_t slack = span < 32 ? 32 : span;
    lo -= slack;
    hi += slack;
    size_t count = (size_t)(hi - lo + 1);
    Bucket *grown = calloc(count, sizeof(Bucket));
    if (grown == NULL)
        return -1;
    if (s->buckets != NULL) {
        memcpy(grown + (s->base - lo), s->buckets, s->nbuckets * sizeof(Bucket));
        free(s->buckets);
    }
    s->buckets = grown;
    s->nbuckets = count;
    s->base = lo;
    return 0;
}

static inline int
add(Scan *s, int negative, uint64_t significand, int64_t exponent)
{
    if (significand == 0)
        return 0;
    if ((uint64_t)(exponent - s->base) >= s->nbuckets && reach(s, exponent))
        return -1;
    s->buckets[exponent - s->base].sides[negative] += significand; /* no branch on the sign */
    return 0;
}

/* A significand of more than 19 digits (integer digits [i0, i1), fraction digits [f0, f1)):
 * added in pieces of 18 digits from the last, each at its own power of ten. */
static int
add_long(Scan *s, int negative, size_t i0, size_t i1, size_t f0, size_t f1, int64_t exponent)
{
    const unsigned char *b = s->buf;
    uint64_t piece = 0, scale = 1;
    int digits = 0;
    for (size_t k = (f1 - f0) + (i1 - i0); k-- > 0;) {
        size_t at = k < i1 - i0 ? i0 + k : f0 + (k - (i1 - i0));
        piece += (uint64_t)(b[at] - '0') * scale;
        scale *= 10;
        if (++digits == 18) {
            if (add(s, negative, piece, exponent))
                return -1;
            exponent += 18;
            piece = 0;
            scale = 1;
            digits = 0;
        }
    }
    return add(s, negative, piece, exponent);
}

/* The bucket column's digits from s->lo upwards, carried; ndigits long. */
static void
carry_digits(const Scan *s, int negative, unsigned char *digits, size_t ndigits)
{
    u128 carry = 0;
    size_t span = (size_t)(s->hi - s->lo + 1);
    const Bucket *bucket = s->buckets + (s->lo - s->base);
    for (size_t i = 0; i < ndigits; i++) {
        u128 value = carry;
        if (i < span)
            value += bucket[i].sides[negative];
        if (value == 0) {
            digits[i] = 0;
            carry = 0;
            continue;
        }
        digits[i] = (unsigned char)(value % 10);
        carry = value / 10;
    }
}

/* The canonical text of the sum (malloc'd, NUL-terminated), or NULL when out of memory. */
static char *
canonical_text(Scan *s)
{
    /* the powers of ten that were added to */
    size_t first = 0, last = s->nbuckets;
    while (first < s->nbuckets && s->buckets[first].sides[0] == 0 && s->buckets[first].sides[1] == 0)
        first++;
    if (first == s->nbuckets)
        return strdup("0");
    while (s->buckets[last - 1].sides[0] == 0 && s->buckets[last - 1].sides[1] == 0)
        last--;
    s->lo = s->base + (int64_t)first;
    s->hi = s->base + (int64_t)last - 1;
    /* 40 more digits than buckets hold any u128 carry */
    size_t ndigits = (size_t)(s->hi - s->lo + 1) + 40;
    unsigned char *plus = malloc(ndigits), *minus = malloc(ndigits);
    if (plus == NULL || minus == NULL) {
        free(plus);
        free(minus);
        return NULL;
    }
    carry_digits(s, 0, plus, ndigits);
    carry_digits(s, 1, minus, ndigits);

    int order = 0;
    for (size_t i = ndigits; i-- > 0;)
        if (plus[i] != minus[i]) {
            order = plus[i] > minus[i] ? 1 : -1;
            break;
        }
    if (order == 0) {
        free(plus);
        free(minus);
        return strdup("0");
    }
    unsigned char *big = order > 0 ? plus : minus, *small = order > 0 ? minus : plus;
    int borrow = 0;
    for (size_t i = 0; i < ndigits; i++) {
        int digit = big[i] - small[i] - borrow;
        borrow = digit < 0;
        big[i] = (unsigned char)(digit + (borrow ? 10 : 0));
    }
    size_t top = ndigits - 1, bottom = 0;
    while (big[top] == 0)
        top--;
    while (big[bottom] == 0)
        bottom++;
    int64_t top_exp = s->lo + (int64_t)top, bottom_exp = s->lo + (int64_t)bottom;

    /* sign, integer digits (down to 10^0, zeros below the lowest bucket), point, fraction */
    size_t size = 4 + (size_t)(top_exp >= 0 ? top_exp + 1 : 1) +
                  (size_t)(bottom_exp < 0 ? -bottom_exp : 0);
    char *text = malloc(size);
    if (text != NULL) {
        char *out = text;
        if (order < 0)
            *out++ = '-';
        if (top_exp < 0)
            *out++ = '0';
        for (int64_t e = top_exp; e >= 0; e--)
            *out++ = (char)('0' + (e >= s->lo ? big[e - s->lo] : 0));
        if (bottom_exp < 0) {
            *out++ = '.';
            for (int64_t e = -1; e >= bottom_exp; e--)
                *out++ = (char)('0' + (e <= top_exp ? big[e - s->lo] : 0));
        }
        *out = '\0';
    }
    free(plus);
    free(minus);
    return text;
}

/* ---- keys ------------------------------------------------------------------------------ */

static int
arena_append(Scan *s, const void *bytes, size_t count)
{
    if (count == 0)
        return 0; /* memcpy's pointers must not be NULL, even for no bytes */
    if (count > SIZE_MAX - s->arena_len ||
        grow((void **)&s->arena, &s->arena_cap, s->arena_len + count, 1))
        return -1;
    memcpy(s->arena + s->arena_len, bytes, count);
    s->arena_len += count;
    return 0;
}

/* A code point as UTF-8, lone surrogates included (as Python's str keeps them). */
static int
arena_code_point(Scan *s, uint32_t c)
{
    unsigned char out[4];
    size_t count;
    if (c < 0x80) {
        out[0] = (unsigned char)c;
        count = 1;
    }
    else if (c < 0x800) {
        out[0] = (unsigned char)(0xC0 | (c >> 6));
        out[1] = (unsigned char)(0x80 | (c & 0x3F));
        count = 2;
    }
    else if (c < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (c >> 12));
        out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (c & 0x3F));
        count = 3;
    }
    else {
        out[0] = (unsigned char)(0xF0 | (c >> 18));
        out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
        out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        out[3] = (unsigned char)(0x80 | (c & 0x3F));
        count = 4;
    }
    return arena_append(s, out, count);
}

static size_t
probe_start(const Scan *s, uint64_t hash)
{
    return (size_t)(hash ^ (hash >> 29)) & (s->table_cap - 1);
}

static size_t
place(Scan *s, size_t index)
{
    size_t slot = probe_start(s, s->keys[index].hash);
    while (s->table[slot] != 0)
        slot = (slot + 1) & (s->table_cap - 1);
    s->table[slot] = index + 1;
    return slot;
}

/* Rebuilt by inserting the live keys in their order, which keeps removal in reverse order
 * exact. */
static int
grow_table(Scan *s)
{
    size_t cap = s->table_cap ? s->table_cap * 2 : 64;
    size_t *table = calloc(cap, sizeof(size_t));
    if (table == NULL)
        return -1;
    free(s->table);
    s->table = table;
    s->table_cap = cap;
    for (size_t i = 0; i < s->nkeys; i++)
        s->key_slot[i] = place(s, i);
    return 0;
}

/* The key just decoded into the arena from `off`; *member is its index. If its object has it
 * already, the earlier member's value is shadowed, and the key stays as it was. */
static int
add_key(Scan *s, size_t off, size_t *member)
{
    size_t len = s->arena_len - off, level = s->nobjects - 1;
    const unsigned char *bytes = s->arena + off;
    /* Keyed at random: keys that all fall on a few slots, making each insertion walk past all
     * the others, cannot be found without the key. The level keeps a key's objects apart. */
    uint64_t hash = siphash13(SIP_K0, SIP_K1, bytes, len);
    hash ^= level * 0x9E3779B97F4A7C15ULL;

    if (grow((void **)&s->keys, &s->keys_cap, s->nkeys + 1, sizeof(Key)) ||
        grow((void **)&s->key_slot, &s->key_slot_cap, s->nkeys + 1, sizeof(size_t)) ||
        ((s->nkeys + 1) * 2 > s->table_cap && grow_table(s)))
        return ST_NOMEM;

    size_t slot = probe_start(s, hash);
    while (s->table[slot] != 0) {
        const Key *other = &s->keys[s->table[slot] - 1];
        if (other->hash == hash && other->level == level && other->len == len &&
            (len == 0 || memcmp(s->arena + other->off, bytes, len) == 0)) {
            if (grow((void **)&s->shadowed, &s->shadowed_cap, s->nshadowed + 1, sizeof(size_t)))
                return ST_NOMEM;
            s->shadowed[s->nshadowed++] = other->value;
            *member = s->table[slot] - 1;
            s->arena_len = off;
            return ST_OK;
        }
        slot = (slot + 1) & (s->table_cap - 1);
    }
    s->keys[s->nkeys] = (Key){off, len, level, hash, 0};
    s->table[slot] = s->nkeys + 1;
    s->key_slot[s->nkeys] = slot;
    *member = s->nkeys++;
    return ST_OK;
}

static void
close_object(Scan *s)
{
    ObjectFrame frame = s->objects[--s->nobjects];
    while (s->nkeys > frame.keys)
        s->table[s->key_slot[--s->nkeys]] = 0;
    s->arena_len = frame.arena;
}

/* ---- strings --------------------------------------------------------------------------- */

static int
hex4(const unsigned char *b, size_t p, uint32_t *out)
{
    uint32_t value = 0;
    for (size_t i = 0; i < 4; i++) {
        unsigned c = b[p + i], digit;
        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if (c >= 'a' && c <= 'f')
            digit = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            digit = c - 'A' + 10;
        else
            return -1;
        value = value << 4 | digit;
    }
    *out = value;
    return 0;
}

/* The high bit of each byte of the word that is < 0x20, '"', '\\' or >= 0x80; borrows may also
 * mark bytes after (above) a marked one, never before it, so the lowest mark is exact. */
static inline uint64_t
attention(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    uint64_t hits = (w - ones * 0x20) | (quote - ones) | (backslash - ones);
    return ((hits & ~w) | w) & highs;
}

/* The string whose quote is at *pp; *pp ends after its closing quote. A key is decoded into
 * the arena (escapes resolved, surrogate pairs joined as Python's json does). */
static inline __attribute__((always_inline)) int
scan_string(Scan *s, size_t *pp, int is_key)
{
    const unsigned char *b = s->buf;
    size_t n = s->len, begin = *pp, p = begin + 1, run = p;
    for (;;) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* eight bytes at a time, to the first that needs attention */
        while (n - p >= 8) {
            uint64_t word, marks;
            memcpy(&word, b + p, 8);
            marks = attention(word);
            if (marks) {
                p += (size_t)__builtin_ctzll(marks) / 8;
                break;
            }
            p += 8;
        }
#endif
        while (p < n && PLAIN[b[p]])
            p++;
        if (p >= n)
            return fail(s, "Unterminated string starting at", begin);
        unsigned c = b[p];
        if (c == '"') {
            if (is_key && arena_append(s, b + run, p - run))
                return ST_NOMEM;
            *pp = p + 1;
            return ST_OK;
        }
        if (c == '\\') {
            if (is_key && arena_append(s, b + run, p - run))
                return ST_NOMEM;
            if (n - p < 2)
                return fail(s, "Unterminated string starting at", begin);
            uint32_t code;
            switch (b[p + 1]) {
            case '"': code = '"'; break;
            case '\\': code = '\\'; break;
            case '/': code = '/'; break;
            case 'b': code = '\b'; break;
            case 'f': code = '\f'; break;
            case 'n': code = '\n'; break;
            case 'r': code = '\r'; break;
            case 't': code = '\t'; break;
            case 'u': {
                size_t u = p + 1;
                /* four hex digits, and room for at least the closing quote after them */
                if (n - u <= 5 || hex4(b, u + 1, &code))
                    return fail(s, "Invalid \\uXXXX escape", u);
                p = u + 5;
                uint32_t low;
                if (code >= 0xD800 && code <= 0xDBFF && n - p > 6 && b[p] == '\\' &&
                    b[p + 1] == 'u' && hex4(b, p + 2, &low) == 0 && low >= 0xDC00 &&
                    low <= 0xDFFF) {
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                    p += 6;
                }
                if (is_key && arena_code_point(s, code))
                    return ST_NOMEM;
                run = p;
                continue;
            }
            default:
                return fail(s, "Invalid \\escape", p);
            }
            if (is_key && arena_code_point(s, code))
                return ST_NOMEM;
            p += 2;
            run = p;
            continue;
        }
        if (c < 0x20)
            return fail(s, "Invalid control character at", p);
        size_t length = utf8_sequence(b, p, n);
        if (length == 0) {
            s->error_at = p;
            return ST_UTF8;
        }
        p += length;
    }
}

/* ---- numbers --------------------------------------------------------------------------- */

/* The run of digits from p, appended to *value (modulo 2^64: runs of more than 19 digits are
 * read again by add_long); returns where it ends. Eight bytes at a time while they fit. */
static inline size_t
digits(const unsigned char *b, size_t p, size_t n, uint64_t *value)
{
    uint64_t v = *value;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (n - p >= 8) {
        uint64_t w;
        memcpy(&w, b + p, 8);
        /* a byte is a digit when its high nibble is 3 and adding 6 keeps it so */
        uint64_t other = ((w & 0xF0F0F0F0F0F0F0F0ULL) ^ 0x3030303030303030ULL) |
                         (((w + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) ^
                          0x3030303030303030ULL);
        unsigned count = other ? (unsigned)__builtin_ctzll(other) / 8 : 8;
        if (count == 0)
            break;
        /* the digits, most significant first, in the high bytes; zeros below */
        uint64_t d = (w - 0x3030303030303030ULL) << (8 * (8 - count) & 63);
        d = (d * 10) + (d >> 8);
        d = (((d & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32))) +
             (((d >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >> 32;
        static const uint64_t scale[9] = {1, 10, 100, 1000, 10000, 100000, 1000000,
                                          10000000, 100000000};
        v = v * scale[count] + d;
        p += count;
        if (count < 8) {
            *value = v;
            return p;
        }
    }
#endif
    while (p < n && IS_DIGIT(b[p])) {
        v = v * 10 + (uint64_t)(b[p] - '0');
        p++;
    }
    *value = v;
    return p;
}

static inline __attribute__((always_inline)) int
scan_number(Scan *s, size_t *pp)
{
    const unsigned char *b = s->buf;
    size_t n = s->len, start = *pp, p = start;
    int negative = 0;
    if (b[p] == '-') {
        negative = 1;
        p++;
        if (p >= n || !IS_DIGIT(b[p])) {
            if (n - start >= 9 && memcmp(b + start, "-Infinity", 9) == 0) {
                s->message = "-Infinity";
                s->error_at = start;
                return ST_CONSTANT;
            }
            return fail(s, "Expecting value", start);
        }
    }
    uint64_t significand = 0;
    size_t i0 = p;
    if (b[p] == '0')
        p++;
    else
        p = digits(b, p, n, &significand);
    size_t i1 = p, f0 = p, f1 = p;
    if (n - p >= 2 && b[p] == '.' && IS_DIGIT(b[p + 1])) {
        f0 = ++p;
        p = digits(b, p, n, &significand);
        f1 = p;
    }
    size_t e0 = 0, e1 = 0;
    int exponent_sign = 0;
    if (p < n && (b[p] == 'e' || b[p] == 'E')) {
        size_t q = p + 1;
        if (q < n && (b[q] == '+' || b[q] == '-'))
            exponent_sign = b[q++];
        if (q < n && IS_DIGIT(b[q])) {
            e0 = q;
            while (q < n && IS_DIGIT(b[q]))
                q++;
            e1 = q;
            p = q;
        }
        else
            exponent_sign = 0;
    }
    *pp = p;

    if (s->limit != LIMIT_NONE)
        return ST_OK; /* nothing more is added; the scan only checks the grammar now */
    if (p - start > s->max_length) {
        s->limit = LIMIT_LENGTH;
        s->limit_length = p - start;
        return ST_OK;
    }
    int64_t exponent = 0;
    if (e1 > e0) {
        while (e0 < e1 - 1 && b[e0] == '0')
            e0++;
        if (e1 - e0 <= 9)
            for (size_t k = e0; k < e1; k++)
                exponent = exponent * 10 + (b[k] - '0');
        if (e1 - e0 > 9 || exponent > s->max_exponent) {
            s->limit = LIMIT_EXPONENT;
            s->limit_exp_sign = exponent_sign;
            s->limit_exp_start = e0;
            s->limit_exp_len = e1 - e0;
            return ST_OK;
        }
        if (exponent_sign == '-')
            exponent = -exponent;
    }
    exponent -= (int64_t)(f1 - f0);
    if ((i1 - i0) + (f1 - f0) <= 19)
        return add(s, negative, significand, exponent) ? ST_NOMEM : ST_OK;
    return add_long(s, negative, i0, i1, f0, f1, exponent) ? ST_NOMEM : ST_OK;
}

/* ---- the document ---------------------------------------------------------------------- */

static int
matches(const Scan *s, size_t p, const char *word, size_t length)
{
    return s->len - p >= length && memcmp(s->buf + p, word, length) == 0;
}

static int
push(Scan *s, unsigned char kind)
{
    if (grow((void **)&s->stack, &s->stack_cap, s->depth + 1, 1))
        return -1;
    s->stack[s->depth++] = kind;
    if (kind) {
        if (grow((void **)&s->objects, &s->objects_cap, s->nobjects + 1, sizeof(ObjectFrame)))
            return -1;
        s->objects[s->nobjects++] = (ObjectFrame){s->nkeys, s->arena_len};
    }
    return 0;
}

#define SKIP_SPACE()                          \
    while (p < n && SPACE[b[p]])              \
        p++

static int
scan_document(Scan *s)
{
    const unsigned char *b = s->buf;
    size_t n = s->len, p = 0;
    int status;
    /* plain integers' significands, positive and negative: one add per input byte at most, as
     * for a bucket */
    u128 integers[2] = {0, 0};
    /* never NULL, so that an empty key's bytes are a valid pointer */
    if (grow((void **)&s->arena, &s->arena_cap, 64, 1))
        return ST_NOMEM;
    if (matches(s, 0, "\xEF\xBB\xBF", 3))
        return fail(s, "Unexpected UTF-8 BOM (decode using utf-8-sig)", 0);
    SKIP_SPACE();

value:
    if (p >= n)
        return fail(s, "Expecting value", p);
    /* numbers first, without the jump table: the common value in large documents */
    if (IS_DIGIT(b[p]) || b[p] == '-') {
        /* A plain integer (no leading zero, at most 19 digits, within the length limit) followed
         * at once by a comma or a closing bracket, as most are: added to the running sum of
         * integers here. Anything else is read by scan_number from its start. */
        for (;;) {
            size_t q = p + (b[p] == '-');
            if (q >= n || b[q] < '1' || b[q] > '9' || s->limit != LIMIT_NONE)
                break;
            uint64_t value = 0;
            size_t end = digits(b, q, n, &value);
            if (end >= n || (b[end] != ',' && b[end] != ']' && b[end] != '}') || end - q > 19 ||
                end - p > s->max_length)
                break;
            integers[b[p] == '-'] += value;
            p = end;
            /* the array's next member, when it follows the comma at once: read it here too */
            if (b[p] != ',' || s->depth == 0 || s->stack[s->depth - 1] != 0 || n - p < 2 ||
                !(IS_DIGIT(b[p + 1]) || b[p + 1] == '-'))
                goto after_value;
            p++;
        }
        if ((status = scan_number(s, &p)) != ST_OK)
            return status;
        goto after_value;
    }
    switch (b[p]) {
    case '[':
        p++;
        SKIP_SPACE();
        if (p < n && b[p] == ']') {
            p++;
            goto after_value;
        }
        if (push(s, 0))
            return ST_NOMEM;
        goto value;
    case '{':
        p++;
        SKIP_SPACE();
        if (p < n && b[p] == '}') {
            p++;
            goto after_value;
        }
        if (push(s, 1))
            return ST_NOMEM;
        goto key;
    case '"':
        if ((status = scan_string(s, &p, 0)) != ST_OK)
            return status;
        goto after_value;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        if ((status = scan_number(s, &p)) != ST_OK)
            return status;
        goto after_value;
    case 't':
        if (!matches(s, p, "true", 4))
            return fail(s, "Expecting value", p);
        p += 4;
        goto after_value;
    case 'f':
        if (!matches(s, p, "false", 5))
            return fail(s, "Expecting value", p);
        p += 5;
        goto after_value;
    case 'n':
        if (!matches(s, p, "null", 4))
            return fail(s, "Expecting value", p);
        p += 4;
        goto after_value;
    case 'N':
    case 'I': {
        const char *constant = b[p] == 'N' ? "NaN" : "Infinity";
        if (!matches(s, p, constant, strlen(constant)))
            return fail(s, "Expecting value", p);
        s->message = constant;
        s->error_at = p;
        return ST_CONSTANT;
    }
    default:
        return fail(s, "Expecting value", p);
    }

key:
    if (p >= n || b[p] != '"')
        return fail(s, "Expecting property name enclosed in double quotes", p);
    {
        size_t off = s->arena_len, member;
        if ((status = scan_string(s, &p, 1)) != ST_OK)
            return status;
        if ((status = add_key(s, off, &member)) != ST_OK)
            return status;
        SKIP_SPACE();
        if (p >= n || b[p] != ':')
            return fail(s, "Expecting ':' delimiter", p);
        p++;
        SKIP_SPACE();
        s->keys[member].value = p;
    }
    goto value;

after_value:
    SKIP_SPACE();
    if (s->depth == 0) {
        if (p != n)
            return fail(s, "Extra data", p);
        /* the plain integers' sums join the bucket of 10^0 */
        for (int side = 0; side < 2; side++)
            if (integers[side] != 0) {
                if (reach(s, 0))
                    return ST_NOMEM;
                s->buckets[-s->base].sides[side] += integers[side];
            }
        return ST_OK;
    }
    if (p < n) {
        unsigned char in_object = s->stack[s->depth - 1];
        if (b[p] == ',') {
            p++;
            SKIP_SPACE();
            if (in_object)
                goto key;
            goto value;
        }
        if (b[p] == (in_object ? '}' : ']')) {
            p++;
            s->depth--;
            if (in_object)
                close_object(s);
            goto after_value;
        }
    }
    return fail(s, "Expecting ',' delimiter", p);
}

static int
ascending(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* The value at *pp (valid JSON, read once already), its literals added to the buckets; *pp
 * ends after it. The bounds are checked all the same: a caller may break its promise not to
 * change the buffer meanwhile. */
static int
take_away(Scan *s, size_t *pp)
{
    const unsigned char *b = s->buf;
    size_t n = s->len, p = *pp, depth = 0;
    while (p < n) {
        switch (b[p]) {
        case '"':
            for (p++; p < n && b[p] != '"'; p += b[p] == '\\' ? 2 : 1)
                ;
            p++;
            break;
        case '[': case '{':
            depth++;
            p++;
            continue;
        case ']': case '}':
            depth--;
            p++;
            break;
        case '-': case '0': case '1': case '2': case '3': case '4':
        case '5': case '6': case '7': case '8': case '9': {
            int status = scan_number(s, &p);
            if (status != ST_OK)
                return status;
            break;
        }
        case 't': case 'n':
            p += 4;
            break;
        case 'f':
            p += 5;
            break;
        default: /* whitespace, commas and colons between the values of a container */
            p++;
            continue;
        }
        if (depth == 0)
            break;
    }
    *pp = p;
    return ST_OK;
}

/* Take away what the shadowed values added: each read once more (those inside another with
 * it: values nest or are apart) into buckets of their own, which then count against the sum. */
static int
take_away_shadowed(Scan *s)
{
    qsort(s->shadowed, s->nshadowed, sizeof(size_t), ascending);
    Bucket *kept = s->buckets;
    size_t nkept = s->nbuckets;
    int64_t kept_base = s->base;
    s->buckets = NULL;
    s->nbuckets = 0;
    int status = ST_OK;
    size_t done = 0;
    for (size_t i = 0; i < s->nshadowed && status == ST_OK; i++) {
        size_t p = s->shadowed[i];
        if (p < done)
            continue;
        status = take_away(s, &p);
        done = p;
    }
    Bucket *taken = s->buckets;
    size_t ntaken = s->nbuckets;
    int64_t taken_base = s->base;
    s->buckets = kept;
    s->nbuckets = nkept;
    s->base = kept_base;
    for (size_t i = 0; i < ntaken && status == ST_OK; i++) {
        int64_t exponent = taken_base + (int64_t)i;
        if (taken[i].sides[0] == 0 && taken[i].sides[1] == 0)
            continue;
        if (reach(s, exponent)) {
            status = ST_NOMEM;
            break;
        }
        Bucket *into = &s->buckets[exponent - s->base];
        into->sides[0] += taken[i].sides[1];
        into->sides[1] += taken[i].sides[0];
    }
    free(taken);
    return status;
}

static void
release(Scan *s)
{
    free(s->buckets);
    free(s->stack);
    free(s->objects);
    free(s->arena);
    free(s->keys);
    free(s->key_slot);
    free(s->table);
    free(s->shadowed);
}

/* ---- Python ---------------------------------------------------------------------------- */

PyDoc_STRVAR(scan_doc,
"scan(document: bytes-like, max_number_length: int, max_exponent: int)\n"
"\n"
"The document is read in place (any C-contiguous buffer: bytes, bytearray, memoryview), with\n"
"the GIL released: a mutable one must not change during the call. The canonical text of the exact sum of the numbers in a JSON document (str), or None for\n"
"limits beyond the kernel's (the Python path's to read), or a tuple naming\n"
"what is wrong:\n"
"  ('json', message, char_position, line, column)   invalid JSON, as json.JSONDecodeError\n"
"  ('constant', name)                                NaN, Infinity or -Infinity\n"
"  ('utf8', byte_offset)                             not UTF-8\n"
"  ('length', characters)                            a literal over max_number_length\n"
"  ('exponent', text)                                a written exponent beyond max_exponent");

static PyObject *
scan(PyObject *module, PyObject *args)
{
    Py_buffer document;
    long max_length, max_exponent;
    (void)module;
    /* y*: the caller's buffer itself, exported (a bytearray cannot be resized meanwhile) */
    if (!PyArg_ParseTuple(args, "y*ll:scan", &document, &max_length, &max_exponent))
        return NULL;
    if (max_length < 0 || max_exponent < 0 || max_length > MAX_KERNEL_LIMIT ||
        max_exponent > MAX_KERNEL_LIMIT) {
        PyBuffer_Release(&document);
        Py_RETURN_NONE;
    }

    Scan s;
    memset(&s, 0, sizeof s);
    s.buf = (const unsigned char *)document.buf;
    s.len = (size_t)document.len;
    s.max_length = (size_t)max_length;
    s.max_exponent = max_exponent;

    int status;
    char *text = NULL;
    size_t invalid_at = 0, chars = 0, line = 1, column = 0;
    Py_BEGIN_ALLOW_THREADS
    status = scan_document(&s);
    if (status == ST_SYNTAX || status == ST_CONSTANT || status == ST_UTF8) {
        /* The body is decoded before it is parsed: bad UTF-8 anywhere answers first. */
        invalid_at = first_invalid_utf8(s.buf, s.len);
        if (invalid_at < s.len)
            status = ST_UTF8;
        else if (status == ST_SYNTAX) {
            /* json.JSONDecodeError's position, line and column count characters */
            size_t last_newline = (size_t)-1;
            for (size_t i = 0; i < s.error_at; i++) {
                if ((s.buf[i] & 0xC0) == 0x80)
                    continue;
                if (s.buf[i] == '\n') {
                    line++;
                    last_newline = chars;
                }
                chars++;
            }
            column = chars - last_newline;
        }
    }
    else if (status == ST_OK && s.limit == LIMIT_NONE) {
        if (s.nshadowed > 0)
            status = take_away_shadowed(&s);
        if (status == ST_OK) {
            text = canonical_text(&s);
            if (text == NULL)
                status = ST_NOMEM;
        }
    }
    Py_END_ALLOW_THREADS

    PyObject *result = NULL;
    switch (status) {
    case ST_OK:
        if (s.limit == LIMIT_LENGTH)
            result = Py_BuildValue("(sn)", "length", (Py_ssize_t)s.limit_length);
        else if (s.limit == LIMIT_EXPONENT) {
            PyObject *digits = PyUnicode_FromStringAndSize(
                (const char *)s.buf + s.limit_exp_start, (Py_ssize_t)s.limit_exp_len);
            if (digits != NULL) {
                const char *sign = s.limit_exp_sign == '-'   ? "-"
                                   : s.limit_exp_sign == '+' ? "+"
                                                             : "";
                PyObject *exponent = PyUnicode_FromFormat("%s%U", sign, digits);
                Py_DECREF(digits);
                if (exponent != NULL)
                    result = Py_BuildValue("(sN)", "exponent", exponent);
            }
        }
        else
            result = PyUnicode_FromString(text);
        break;
    case ST_SYNTAX:
        result = Py_BuildValue("(ssnnn)", "json", s.message, (Py_ssize_t)chars,
                               (Py_ssize_t)line, (Py_ssize_t)column);
        break;
    case ST_CONSTANT:
        result = Py_BuildValue("(ss)", "constant", s.message);
        break;
    case ST_UTF8:
        result = Py_BuildValue("(sn)", "utf8", (Py_ssize_t)invalid_at);
        break;
    default:
        PyErr_NoMemory();
    }
    free(text);
    release(&s);
    PyBuffer_Release(&document);
    return result;
}

PyDoc_STRVAR(siphash13_doc,
"siphash13(key, data) -> int\n\n"
"SipHash-1-3 of the bytes `data` under the 16-byte `key` (two little-endian words), as the key\n"
"table hashes keys (under its own key): for the tests' known answers.");

static PyObject *
siphash13_py(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer key, data;
    if (!PyArg_ParseTuple(args, "y*y*", &key, &data))
        return NULL;
    PyObject *result = NULL;
    if (key.len != 16)
        PyErr_SetString(PyExc_ValueError, "the key is 16 bytes");
    else
        result = PyLong_FromUnsignedLongLong(siphash13(
            le64(key.buf), le64((const unsigned char *)key.buf + 8), data.buf, (size_t)data.len));
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {"siphash13", siphash13_py, METH_VARARGS, siphash13_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_sumkernel",
    .m_doc = "The compiled summing kernel behind api.summing.canonical_sum.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__sumkernel(void)
{
    for (int c = 0x20; c < 0x80; c++)
        PLAIN[c] = c != '"' && c != '\\';
    SPACE[' '] = SPACE['\t'] = SPACE['\n'] = SPACE['\r'] = 1;

    PyObject *os = PyImport_ImportModule("os");
    if (os == NULL)
        return NULL;
    PyObject *key = PyObject_CallMethod(os, "urandom", "i", 16);
    Py_DECREF(os);
    if (key == NULL)
        return NULL;
    if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) != 16) {
        Py_DECREF(key);
        PyErr_SetString(PyExc_RuntimeError, "os.urandom(16) gave no 16 bytes");
        return NULL;
    }
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(key);
    SIP_K0 = le64(bytes);
    SIP_K1 = le64(bytes + 8);
    Py_DECREF(key);
    return PyModule_Create(&module);
}
