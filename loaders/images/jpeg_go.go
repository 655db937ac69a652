//go:build !libjpeg

package images

import (
	"image"
	"io"
)

// JPEGDecoder names the JPEG decoder this build uses: Go's image/jpeg, whose IDCT and
// chroma upsampling differ slightly from libjpeg-turbo's, which PIL uses (build with
// the libjpeg tag for bit-identical JPEG preprocessing).
var JPEGDecoder = "Go image/jpeg"

// libjpeg says that JPEGs are decoded by decodeJPEGAt: not in this build.
const libjpeg = false

// decodeJPEGAt leaves every JPEG to Go's decoder in this build.
func decodeJPEGAt(io.ReaderAt, int64, image.Config, []byte) (*Image, bool, error) {
	return nil, false, nil
}
