//go:build libjpeg

package images

/*
#cgo LDFLAGS: -ljpeg
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

#ifndef LIBJPEG_TURBO_VERSION_NUMBER
#define LIBJPEG_TURBO_VERSION_NUMBER 0
#endif

enum { gc_libjpeg_turbo = LIBJPEG_TURBO_VERSION_NUMBER };

struct gc_jpeg_err {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	int eof;
};

static void gc_jpeg_exit(j_common_ptr c) {
	longjmp(((struct gc_jpeg_err *)c->err)->jump, 1);
}

// Warnings do not stop libjpeg, as they do not stop PIL; running out of data does,
// as PIL refuses a truncated file (even one missing only its end marker).
static void gc_jpeg_emit(j_common_ptr c, int level) {
	if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
		((struct gc_jpeg_err *)c->err)->eof = 1;
	}
}

// gc_jpeg_decode decodes the n bytes of data into out, w*h*comps bytes, as RGB
// (comps 3) or grey (comps 1), with libjpeg's defaults as PIL keeps them (the
// integer IDCT, fancy upsampling). It returns 0, else 1 with msg set.
static int gc_jpeg_decode(const unsigned char *data, unsigned long n, unsigned char *out,
		int w, int h, int comps, char *msg) {
	struct jpeg_decompress_struct cinfo;
	struct gc_jpeg_err err;
	cinfo.err = jpeg_std_error(&err.pub);
	err.pub.error_exit = gc_jpeg_exit;
	err.pub.emit_message = gc_jpeg_emit;
	err.eof = 0;
	if (setjmp(err.jump)) {
		(*cinfo.err->format_message)((j_common_ptr)&cinfo, msg);
		jpeg_destroy_decompress(&cinfo);
		return 1;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, data, n);
	jpeg_read_header(&cinfo, TRUE);
	cinfo.out_color_space = comps == 3 ? JCS_RGB : JCS_GRAYSCALE;
	jpeg_start_decompress(&cinfo);
	if ((int)cinfo.output_width != w || (int)cinfo.output_height != h || cinfo.output_components != comps) {
		snprintf(msg, JMSG_LENGTH_MAX, "libjpeg decodes %ux%u with %d channels, the header said %dx%d with %d",
			cinfo.output_width, cinfo.output_height, cinfo.output_components, w, h, comps);
		jpeg_destroy_decompress(&cinfo);
		return 1;
	}
	JSAMPROW rows[16];
	size_t stride = (size_t)w * comps;
	while (cinfo.output_scanline < cinfo.output_height && !err.eof) {
		JDIMENSION k, left = cinfo.output_height - cinfo.output_scanline;
		JDIMENSION m = left < 16 ? left : 16;
		for (k = 0; k < m; k++) {
			rows[k] = out + (size_t)(cinfo.output_scanline + k) * stride;
		}
		jpeg_read_scanlines(&cinfo, rows, m);
	}
	if (!err.eof) {
		jpeg_finish_decompress(&cinfo); // reads on to the end marker, as PIL does
	}
	jpeg_destroy_decompress(&cinfo);
	if (err.eof) {
		snprintf(msg, JMSG_LENGTH_MAX, "truncated: the data ends before the image does");
		return 1;
	}
	return 0;
}
*/
import "C"

import (
	"cmp"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"unsafe"
)

// JPEGDecoder names the JPEG decoder this build uses: libjpeg-turbo, as PIL does, so
// JPEG preprocessing is bit-identical to OpenAI's (build tag libjpeg).
var JPEGDecoder = func() string {
	v := int(C.gc_libjpeg_turbo)
	if v == 0 {
		return "libjpeg"
	}
	return fmt.Sprintf("libjpeg-turbo %d.%d.%d", v/1000000, v/1000%1000, v%1000)
}()

// libjpeg says that JPEGs are decoded by decodeJPEGAt.
const libjpeg = true

// decodeJPEGAt decodes the size bytes of the JPEG in r, whose header Go read as cfg,
// with decodeJPEG: data when they are held in memory, else a copy read from r.
func decodeJPEGAt(r io.ReaderAt, size int64, cfg image.Config, data []byte) (*Image, bool, error) {
	if data != nil {
		return decodeJPEG(data, cfg)
	}
	data = make([]byte, size)
	if n, err := r.ReadAt(data, 0); n != len(data) {
		return nil, true, fmt.Errorf("reading %d of %d bytes: %w", n, size, cmp.Or(err, io.ErrUnexpectedEOF))
	}
	return decodeJPEG(data, cfg)
}

// decodeJPEG decodes the JPEG data, whose header Go read as cfg, with libjpeg, as PIL
// does: grey to ModeL, YCbCr and RGB to ModeRGB. ok is false for what it leaves to
// Go's decoder (CMYK and YCCK, which PIL opens through its own conversion).
func decodeJPEG(data []byte, cfg image.Config) (img *Image, ok bool, err error) {
	comps, mode := 3, ModeRGB
	switch cfg.ColorModel {
	case color.GrayModel:
		comps, mode = 1, ModeL
	case color.YCbCrModel, color.RGBAModel:
	default:
		return nil, false, nil
	}
	if len(data) == 0 {
		return nil, true, errors.New("empty JPEG")
	}
	img = &Image{Mode: mode, Width: cfg.Width, Height: cfg.Height, Pix: make([]uint8, cfg.Width*cfg.Height*comps)}
	var msg [C.JMSG_LENGTH_MAX]C.char
	if C.gc_jpeg_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), (*C.uchar)(unsafe.Pointer(&img.Pix[0])),
		C.int(cfg.Width), C.int(cfg.Height), C.int(comps), &msg[0]) != 0 {
		return nil, true, fmt.Errorf("libjpeg: %s", C.GoString(&msg[0]))
	}
	return img, true, nil
}
