#pragma once
// A small C interface over libpng and libjpeg for DeciImage. Everything works on memory buffers;
// files are read and written (atomically) by the Swift side. libpng and libjpeg report fatal
// errors by longjmp; every such jump lands inside this shim, and callers only ever see a return
// code plus a message in `err`.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One text chunk. `key` is Latin-1 (1-79 bytes); `text` is UTF-8 when `is_utf8` (an iTXt chunk),
/// Latin-1 otherwise (tEXt/zTXt). Both are NUL-terminated; `text_length` excludes the NUL.
typedef struct {
    char *key;
    char *text;
    size_t text_length;
    int is_utf8;
    int is_compressed;
} cic_text;

/// Decoded pixels: 8 bits per channel, rows packed without padding, `channels` is 3 (RGB) or
/// 4 (RGBA). Free with cic_image_free.
typedef struct {
    uint8_t *pixels;
    uint32_t width;
    uint32_t height;
    uint32_t channels;
    /// Describes the source: PNG color type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA) or, for
    /// JPEG, the number of components (1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK).
    int32_t source_color_type;
    int32_t source_bit_depth;
    /// EXIF orientation 1-8 for JPEGs carrying it; 0 when absent or not a JPEG.
    int32_t exif_orientation;
    cic_text *texts;
    size_t text_count;
} cic_image;

/// Status codes; the message in `err` names what is wrong.
enum {
    CIC_OK = 0,
    CIC_NOT_THIS_FORMAT = 1,  // the signature does not match
    CIC_CORRUPT = 2,          // damaged or truncated data
    CIC_UNSUPPORTED = 3,      // valid but not supported here
    CIC_TOO_LARGE = 4,        // dimensions beyond the allowed pixel count
    CIC_NO_MEMORY = 5,
    CIC_INVALID_ARGUMENT = 6
};

/// Largest width * height accepted by the decoders (guards allocations on hostile headers).
#define CIC_MAX_PIXELS ((uint64_t)1 << 28)

/// Decodes a PNG of any bit depth and color type into 8-bit RGB or RGBA (16-bit samples keep
/// their high byte, palette and gray are expanded, tRNS becomes alpha). Text chunks are returned.
int cic_png_decode(const uint8_t *data, size_t size, cic_image *out, char *err, size_t err_size);

/// Decodes a baseline or progressive JPEG into 8-bit RGB (gray expanded; CMYK/YCCK converted as
/// Pillow does). Truncated data is an error, not a gray-filled image.
int cic_jpeg_decode(const uint8_t *data, size_t size, cic_image *out, char *err, size_t err_size);

/// Encodes 8-bit interleaved RGB (`channels` 3) or RGBA (4) as PNG in memory, with the given text
/// chunks (tEXt for Latin-1 entries, uncompressed iTXt for `is_utf8` entries). `*out` is malloc'd;
/// free it with cic_free.
int cic_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, uint32_t channels,
                   int compression_level, const cic_text *texts, size_t text_count,
                   uint8_t **out, size_t *out_size, char *err, size_t err_size);

/// Encodes 8-bit interleaved RGB as a baseline JFIF JPEG in memory (4:2:0 chroma subsampling, as
/// libjpeg and Pillow default to), `quality` 1-100 on libjpeg's scale. `*out` is malloc'd; free it
/// with cic_free.
int cic_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int quality,
                    uint8_t **out, size_t *out_size, char *err, size_t err_size);

void cic_image_free(cic_image *image);
void cic_free(void *pointer);

/// The linked library versions, for diagnostics.
const char *cic_libpng_version(void);
int cic_libjpeg_version(void);

#ifdef __cplusplus
}
#endif
