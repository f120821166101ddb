#ifndef APUS_CZLIB_SHIM_H
#define APUS_CZLIB_SHIM_H
#include <zlib.h>

/* inflateInit2/deflateInit2 are macros (they pass ZLIB_VERSION and the struct size),
   which Swift cannot call: wrap them. */
static inline int apus_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
static inline int apus_deflateInit2(z_streamp strm, int level, int windowBits) {
    return deflateInit2(strm, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}
#endif
