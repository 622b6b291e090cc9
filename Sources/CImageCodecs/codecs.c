// libpng / libjpeg shim for DeciImage. Both libraries signal fatal errors with longjmp; the
// setjmp points live in the functions below, so no jump ever crosses into Swift frames.
#include "imagecodecs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

static void set_err(char *err, size_t err_size, const char *fmt, ...) {
    if (!err || err_size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

static void free_texts(cic_text *texts, size_t count) {
    if (!texts) return;
    for (size_t i = 0; i < count; i++) {
        free(texts[i].key);
        free(texts[i].text);
    }
    free(texts);
}

void cic_image_free(cic_image *image) {
    if (!image) return;
    free(image->pixels);
    free_texts(image->texts, image->text_count);
    memset(image, 0, sizeof *image);
}

void cic_free(void *pointer) { free(pointer); }

const char *cic_libpng_version(void) { return png_get_libpng_ver(NULL); }
int cic_libjpeg_version(void) { return JPEG_LIB_VERSION; }

// ---------------------------------------------------------------------------------------------
// PNG

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
} mem_reader;

typedef struct {
    uint8_t *buf;
    size_t size;
    size_t cap;
} mem_writer;

typedef struct {
    char *err;
    size_t err_size;
    int code;  // status to return when libpng jumps back
} png_err_ctx;

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
    mem_reader *r = (mem_reader *)png_get_io_ptr(png);
    if (r->size - r->pos < n) {
        png_error(png, "unexpected end of data (file truncated)");
    }
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

static void png_write_mem(png_structp png, png_bytep data, size_t n) {
    mem_writer *w = (mem_writer *)png_get_io_ptr(png);
    if (w->cap - w->size < n) {
        size_t cap = w->cap ? w->cap : 65536;
        while (cap - w->size < n) {
            if (cap > SIZE_MAX / 2) png_error(png, "out of memory");
            cap *= 2;
        }
        uint8_t *grown = (uint8_t *)realloc(w->buf, cap);
        if (!grown) png_error(png, "out of memory");
        w->buf = grown;
        w->cap = cap;
    }
    memcpy(w->buf + w->size, data, n);
    w->size += n;
}

static void png_flush_mem(png_structp png) { (void)png; }

static void png_on_error(png_structp png, png_const_charp msg) {
    png_err_ctx *e = (png_err_ctx *)png_get_error_ptr(png);
    if (e) set_err(e->err, e->err_size, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    // Warnings (bad ancillary chunks, odd gamma) do not stop decoding, as in Pillow.
    (void)png;
    (void)msg;
}

static char *dup_bytes(const char *s, size_t n) {
    char *d = (char *)malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static void png_collect_texts(png_structp png, png_infop info, png_err_ctx *ectx, cic_text **out,
                              size_t *out_count) {
    png_textp text = NULL;
    int num = 0;
    png_get_text(png, info, &text, &num);
    if (num <= 0) return;
    cic_text *texts = (cic_text *)calloc((size_t)num, sizeof(cic_text));
    if (!texts) {
        ectx->code = CIC_NO_MEMORY;
        png_error(png, "out of memory");
    }
    *out = texts;
    for (int i = 0; i < num; i++) {
        int itxt = text[i].compression == PNG_ITXT_COMPRESSION_NONE ||
                   text[i].compression == PNG_ITXT_COMPRESSION_zTXt;
        size_t len = itxt ? text[i].itxt_length : text[i].text_length;
        if (!text[i].text) len = 0;
        texts[i].key = dup_bytes(text[i].key ? text[i].key : "", text[i].key ? strlen(text[i].key) : 0);
        texts[i].text = dup_bytes(text[i].text ? text[i].text : "", len);
        texts[i].text_length = len;
        texts[i].is_utf8 = itxt;
        texts[i].is_compressed = text[i].compression == PNG_TEXT_COMPRESSION_zTXt ||
                                 text[i].compression == PNG_ITXT_COMPRESSION_zTXt;
        *out_count = (size_t)i + 1;
        if (!texts[i].key || !texts[i].text) {
            ectx->code = CIC_NO_MEMORY;
            png_error(png, "out of memory");
        }
    }
}

int cic_png_decode(const uint8_t *data, size_t size, cic_image *out, char *err, size_t err_size) {
    if (!out || (!data && size)) {
        set_err(err, err_size, "invalid arguments");
        return CIC_INVALID_ARGUMENT;
    }
    memset(out, 0, sizeof *out);
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        set_err(err, err_size, "not a PNG file (no PNG signature)");
        return CIC_NOT_THIS_FORMAT;
    }
    png_err_ctx ectx = {err, err_size, CIC_CORRUPT};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ectx, png_on_error, png_on_warning);
    if (!png) {
        set_err(err, err_size, "out of memory");
        return CIC_NO_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_err(err, err_size, "out of memory");
        return CIC_NO_MEMORY;
    }
    // Written between setjmp and a possible longjmp, so they must be volatile to be reliable after it.
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    mem_reader reader = {data, size, 0};

    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(pixels);
        free_texts(out->texts, out->text_count);
        memset(out, 0, sizeof *out);
        png_destroy_read_struct(&png, &info, NULL);
        return ectx.code;
    }

    png_set_read_fn(png, &reader, png_read_mem);
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    if ((uint64_t)width * (uint64_t)height > CIC_MAX_PIXELS) {
        ectx.code = CIC_TOO_LARGE;
        char msg[96];
        snprintf(msg, sizeof msg, "image is %ux%u, more pixels than the limit of %llu", (unsigned)width,
                 (unsigned)height, (unsigned long long)CIC_MAX_PIXELS);
        png_error(png, msg);
    }

    // Pillow keeps the high byte of 16-bit samples; png_set_strip_16 does the same.
    if (bit_depth == 16) png_set_strip_16(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    png_byte channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((channels != 3 && channels != 4) || rowbytes != (size_t)width * channels ||
        png_get_bit_depth(png, info) != 8) {
        ectx.code = CIC_UNSUPPORTED;
        png_error(png, "unsupported PNG layout after conversion to 8-bit RGB");
    }
    pixels = (uint8_t *)malloc(rowbytes * (size_t)height ? rowbytes * (size_t)height : 1);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (height ? height : 1));
    if (!pixels || !rows) {
        ectx.code = CIC_NO_MEMORY;
        png_error(png, "out of memory");
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, info);

    png_collect_texts(png, info, &ectx, &out->texts, &out->text_count);

    out->pixels = pixels;
    out->width = width;
    out->height = height;
    out->channels = channels;
    out->source_color_type = color_type;
    out->source_bit_depth = bit_depth;
    out->exif_orientation = 0;
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return CIC_OK;
}

int cic_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, uint32_t channels,
                   int compression_level, const cic_text *texts, size_t text_count, uint8_t **out,
                   size_t *out_size, char *err, size_t err_size) {
    if (!pixels || !out || !out_size || width == 0 || height == 0 || (channels != 3 && channels != 4) ||
        compression_level < 0 || compression_level > 9 || (text_count && !texts)) {
        set_err(err, err_size, "invalid arguments to PNG encoder");
        return CIC_INVALID_ARGUMENT;
    }
    *out = NULL;
    *out_size = 0;
    png_err_ctx ectx = {err, err_size, CIC_CORRUPT};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ectx, png_on_error, png_on_warning);
    if (!png) {
        set_err(err, err_size, "out of memory");
        return CIC_NO_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        set_err(err, err_size, "out of memory");
        return CIC_NO_MEMORY;
    }
    mem_writer writer = {NULL, 0, 0};
    png_textp volatile ptexts = NULL;
    png_bytep *volatile rows = NULL;

    if (setjmp(png_jmpbuf(png))) {
        free(writer.buf);
        free(ptexts);
        free(rows);
        png_destroy_write_struct(&png, &info);
        return ectx.code;
    }

    png_set_write_fn(png, &writer, png_write_mem, png_flush_mem);
    png_set_compression_level(png, compression_level);
    png_set_IHDR(png, info, width, height, 8, channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (text_count) {
        ptexts = (png_textp)calloc(text_count, sizeof(png_text));
        if (!ptexts) {
            ectx.code = CIC_NO_MEMORY;
            png_error(png, "out of memory");
        }
        for (size_t i = 0; i < text_count; i++) {
            ptexts[i].compression = texts[i].is_utf8 ? PNG_ITXT_COMPRESSION_NONE : PNG_TEXT_COMPRESSION_NONE;
            ptexts[i].key = texts[i].key;
            ptexts[i].text = texts[i].text;
            if (texts[i].is_utf8) {
                ptexts[i].itxt_length = texts[i].text_length;
            } else {
                ptexts[i].text_length = texts[i].text_length;
            }
        }
        png_set_text(png, info, ptexts, (int)text_count);
    }
    png_write_info(png, info);

    size_t rowbytes = (size_t)width * channels;
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (!rows) {
        ectx.code = CIC_NO_MEMORY;
        png_error(png, "out of memory");
    }
    for (uint32_t y = 0; y < height; y++) rows[y] = (png_bytep)(pixels + (size_t)y * rowbytes);
    png_write_image(png, rows);
    png_write_end(png, info);

    free(rows);
    free(ptexts);
    png_destroy_write_struct(&png, &info);
    *out = writer.buf;
    *out_size = writer.size;
    return CIC_OK;
}

// ---------------------------------------------------------------------------------------------
// JPEG

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *err;
    size_t err_size;
    int code;
} jpeg_err_ctx;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_err_ctx *e = (jpeg_err_ctx *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, msg);
    set_err(e->err, e->err_size, "%s", msg);
    longjmp(e->jump, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;  // trace messages
    // libjpeg pads a truncated stream with gray and only warns; Pillow refuses such files, and
    // so do we. Other corrupt-data warnings are tolerated, as in Pillow.
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_err_ctx *e = (jpeg_err_ctx *)cinfo->err;
        set_err(e->err, e->err_size, "unexpected end of data (file truncated)");
        longjmp(e->jump, 1);
    }
    cinfo->err->num_warnings++;
}

static uint32_t exif_u16(const uint8_t *p, int little) {
    return little ? (uint32_t)(p[0] | (p[1] << 8)) : (uint32_t)((p[0] << 8) | p[1]);
}

static uint32_t exif_u32(const uint8_t *p, int little) {
    return little ? ((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24))
                  : (((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3]);
}

// Orientation tag (0x0112) of IFD0 in an APP1 "Exif" segment; 0 when absent or malformed.
static int exif_orientation(const uint8_t *seg, size_t len) {
    if (len < 6 + 8 || memcmp(seg, "Exif\0\0", 6) != 0) return 0;
    const uint8_t *tiff = seg + 6;
    size_t tlen = len - 6;
    int little;
    if (tiff[0] == 'I' && tiff[1] == 'I') little = 1;
    else if (tiff[0] == 'M' && tiff[1] == 'M') little = 0;
    else return 0;
    if (exif_u16(tiff + 2, little) != 42) return 0;
    uint32_t ifd = exif_u32(tiff + 4, little);
    if (ifd > tlen - 2 || tlen < 2) return 0;
    uint32_t count = exif_u16(tiff + ifd, little);
    for (uint32_t i = 0; i < count; i++) {
        size_t entry = (size_t)ifd + 2 + (size_t)i * 12;
        if (entry + 12 > tlen) return 0;
        if (exif_u16(tiff + entry, little) == 0x0112) {
            uint32_t type = exif_u16(tiff + entry + 2, little);
            if (type != 3) return 0;
            uint32_t value = exif_u16(tiff + entry + 8, little);
            return (value >= 1 && value <= 8) ? (int)value : 0;
        }
    }
    return 0;
}

static uint8_t muldiv255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

int cic_jpeg_decode(const uint8_t *data, size_t size, cic_image *out, char *err, size_t err_size) {
    if (!out || (!data && size)) {
        set_err(err, err_size, "invalid arguments");
        return CIC_INVALID_ARGUMENT;
    }
    memset(out, 0, sizeof *out);
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
        set_err(err, err_size, "not a JPEG file (no SOI marker)");
        return CIC_NOT_THIS_FORMAT;
    }
    struct jpeg_decompress_struct cinfo;
    jpeg_err_ctx jerr;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_on_error;
    jerr.pub.emit_message = jpeg_on_message;
    jerr.err = err;
    jerr.err_size = err_size;
    jerr.code = CIC_CORRUPT;
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile row = NULL;

    if (setjmp(jerr.jump)) {
        free(pixels);
        free(row);
        jpeg_destroy_decompress(&cinfo);
        memset(out, 0, sizeof *out);
        return jerr.code;
    }

    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)size);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);

    int orientation = 0;
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1) {
            orientation = exif_orientation(m->data, m->data_length);
            if (orientation) break;
        }
    }

    if ((uint64_t)cinfo.image_width * cinfo.image_height > CIC_MAX_PIXELS) {
        jerr.code = CIC_TOO_LARGE;
        set_err(err, err_size, "image is %ux%u, more pixels than the limit of %llu", cinfo.image_width,
                cinfo.image_height, (unsigned long long)CIC_MAX_PIXELS);
        longjmp(jerr.jump, 1);
    }
    int components = cinfo.num_components;
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    if (cmyk) {
        cinfo.out_color_space = JCS_CMYK;
    } else if (cinfo.jpeg_color_space == JCS_GRAYSCALE || cinfo.jpeg_color_space == JCS_YCbCr ||
               cinfo.jpeg_color_space == JCS_RGB) {
        cinfo.out_color_space = JCS_RGB;
    } else {
        jerr.code = CIC_UNSUPPORTED;
        set_err(err, err_size, "unsupported JPEG color space (%d components)", components);
        longjmp(jerr.jump, 1);
    }
    jpeg_start_decompress(&cinfo);

    uint32_t width = cinfo.output_width, height = cinfo.output_height;
    size_t rowbytes = (size_t)width * 3;
    pixels = (uint8_t *)malloc(rowbytes * height ? rowbytes * height : 1);
    row = (uint8_t *)malloc((size_t)width * (size_t)cinfo.output_components + 1);
    if (!pixels || !row) {
        jerr.code = CIC_NO_MEMORY;
        set_err(err, err_size, "out of memory");
        longjmp(jerr.jump, 1);
    }
    while (cinfo.output_scanline < height) {
        uint32_t y = cinfo.output_scanline;
        JSAMPROW target = cmyk ? (JSAMPROW)row : (JSAMPROW)(pixels + (size_t)y * rowbytes);
        if (jpeg_read_scanlines(&cinfo, &target, 1) != 1) {
            set_err(err, err_size, "unexpected end of data (file truncated)");
            longjmp(jerr.jump, 1);
        }
        if (cmyk) {
            // Adobe writes inverted CMYK; Pillow reads it as "CMYK;I" and converts with
            // rgb = (255 - k) - (255 - k) * c / 255 per channel, k and c after inversion.
            uint8_t *dst = pixels + (size_t)y * rowbytes;
            for (uint32_t x = 0; x < width; x++) {
                const uint8_t *p = row + (size_t)x * 4;
                unsigned nk = p[3];
                for (int c = 0; c < 3; c++) {
                    unsigned ink = 255u - p[c];
                    int v = (int)nk - (int)muldiv255(ink, nk);
                    dst[x * 3 + c] = (uint8_t)(v < 0 ? 0 : v);
                }
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);

    out->pixels = pixels;
    out->width = width;
    out->height = height;
    out->channels = 3;
    out->source_color_type = components;
    out->source_bit_depth = 8;
    out->exif_orientation = orientation;
    return CIC_OK;
}

int cic_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int quality,
                    uint8_t **out, size_t *out_size, char *err, size_t err_size) {
    if (!pixels || !out || !out_size || width == 0 || height == 0 || width > 65500 || height > 65500 ||
        quality < 1 || quality > 100) {
        set_err(err, err_size, "invalid arguments to JPEG encoder (size %ux%u, at most 65500 a side; quality %d, 1-100)",
                width, height, quality);
        return CIC_INVALID_ARGUMENT;
    }
    *out = NULL;
    *out_size = 0;
    struct jpeg_compress_struct cinfo;
    jpeg_err_ctx jerr;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_on_error;
    jerr.err = err;
    jerr.err_size = err_size;
    jerr.code = CIC_CORRUPT;
    // jpeg_mem_dest mallocs the buffer and moves it as it grows, updating `buffer` through its
    // address; the address is taken, so the value read after a longjmp is the library's latest.
    unsigned char *buffer = NULL;
    unsigned long size = 0;

    if (setjmp(jerr.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return jerr.code;
    }

    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &buffer, &size);
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    size_t rowbytes = (size_t)width * 3;
    while (cinfo.next_scanline < height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * rowbytes);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = buffer;
    *out_size = (size_t)size;
    return CIC_OK;
}
