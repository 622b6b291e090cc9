// How A1111's img2img prepares a mask and puts the result back (modules/processing.py,
// modules/masking.py), done around the library's inpainting: the mask from alpha or luminance,
// inverted and blurred as asked; "only masked" (inpaint_full_res) crops the masked region, runs it
// at the requested size and pastes it back; "fill" replaces the masked area with its blurred
// surroundings before encoding; finally the generated pixels are laid over the original through the
// blurred mask, so everything outside the mask is exactly the original image.
import DeciImage
import Foundation

/// A single-channel 8-bit image (a mask).
struct GrayImage: Equatable {
    var width: Int
    var height: Int
    var pixels: [UInt8]

    subscript(x: Int, y: Int) -> UInt8 { pixels[y * width + x] }

    /// A1111's `create_binary_mask`: a mask with a non-opaque alpha channel is that alpha
    /// (binarised at 128 when `round`); otherwise the luminance (ITU-R 601-2, as Pillow's "L").
    static func mask(from decoded: DecodedImage, round: Bool) -> GrayImage {
        mask(image: decoded.image, alpha: decoded.alpha, round: round)
    }

    static func mask(image img: RGBImage, alpha: [UInt8]?, round: Bool) -> GrayImage {
        if let alpha, alpha.contains(where: { $0 != 255 }) {
            return GrayImage(width: img.width, height: img.height, pixels: round ? alpha.map { $0 > 128 ? 255 : 0 } : alpha)
        }
        var out = [UInt8](repeating: 0, count: img.width * img.height)
        for i in 0..<out.count {
            let r = Int(img.pixels[3 * i]), g = Int(img.pixels[3 * i + 1]), b = Int(img.pixels[3 * i + 2])
            out[i] = UInt8((r * 299 + g * 587 + b * 114) / 1000)
        }
        return GrayImage(width: img.width, height: img.height, pixels: out)
    }

    var inverted: GrayImage { GrayImage(width: width, height: height, pixels: pixels.map { 255 - $0 }) }

    /// cv2.GaussianBlur with a (2·int(2.5σ+0.5)+1)-tap kernel along x and/or y, as A1111 blurs masks
    /// (`mask_blur_x`, `mask_blur_y`), borders reflected (cv2's BORDER_REFLECT_101).
    func gaussianBlurred(sigmaX: Double, sigmaY: Double) -> GrayImage {
        var plane = pixels.map(Float.init)
        if sigmaX > 0 { plane = Self.blur(plane, width: width, height: height, sigma: sigmaX, alongX: true) }
        if sigmaY > 0 { plane = Self.blur(plane, width: width, height: height, sigma: sigmaY, alongX: false) }
        return GrayImage(width: width, height: height, pixels: plane.map { UInt8(max(0, min(255, $0.rounded()))) })
    }

    private static func blur(_ src: [Float], width: Int, height: Int, sigma: Double, alongX: Bool) -> [Float] {
        let size = 2 * Int(2.5 * sigma + 0.5) + 1, half = size / 2
        var kernel = (0..<size).map { i -> Float in Float(exp(-Double((i - half) * (i - half)) / (2 * sigma * sigma))) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        let n = alongX ? width : height
        func reflect(_ i: Int) -> Int {
            guard n > 1 else { return 0 }
            var i = i
            while i < 0 || i >= n { i = i < 0 ? -i : 2 * n - 2 - i }
            return i
        }
        var out = [Float](repeating: 0, count: src.count)
        for y in 0..<height {
            for x in 0..<width {
                var acc: Float = 0
                for k in 0..<size {
                    let j = reflect((alongX ? x : y) + k - half)
                    acc += kernel[k] * src[alongX ? y * width + j : j * width + x]
                }
                out[y * width + x] = acc
            }
        }
        return out
    }

    /// The bounding box (x1, y1, x2, y2; x2/y2 exclusive) of the nonzero pixels grown by `padding`
    /// and clamped to the image (masking.get_crop_region); nil for an empty mask.
    func cropRegion(padding: Int) -> (Int, Int, Int, Int)? {
        var x1 = width, y1 = height, x2 = -1, y2 = -1
        for y in 0..<height {
            for x in 0..<width where self[x, y] != 0 {
                x1 = min(x1, x); x2 = max(x2, x); y1 = min(y1, y); y2 = max(y2, y)
            }
        }
        guard x2 >= 0 else { return nil }
        return (max(x1 - padding, 0), max(y1 - padding, 0), min(x2 + 1 + padding, width), min(y2 + 1 + padding, height))
    }

    func cropped(_ r: (Int, Int, Int, Int)) -> GrayImage {
        var out: [UInt8] = []
        out.reserveCapacity((r.2 - r.0) * (r.3 - r.1))
        for y in r.1..<r.3 { out += pixels[(y * width + r.0)..<(y * width + r.2)] }
        return GrayImage(width: r.2 - r.0, height: r.3 - r.1, pixels: out)
    }

    /// As an RGB image (the library takes masks as images, white = repaint).
    func rgb() throws -> RGBImage {
        var p = [UInt8](repeating: 0, count: pixels.count * 3)
        for (i, v) in pixels.enumerated() { (p[3 * i], p[3 * i + 1], p[3 * i + 2]) = (v, v, v) }
        return try RGBImage(width: width, height: height, pixels: p)
    }
}

enum A1111Inpainting {
    /// masking.expand_crop_region: grows the crop to the processing aspect ratio, inside the image.
    static func expandCropRegion(_ r: (Int, Int, Int, Int), width pw: Int, height ph: Int,
                                 imageWidth iw: Int, imageHeight ih: Int) -> (Int, Int, Int, Int) {
        var (x1, y1, x2, y2) = r
        let ratioCrop = Double(x2 - x1) / Double(y2 - y1)
        let ratioProcessing = Double(pw) / Double(ph)
        if ratioCrop > ratioProcessing {
            let diff = Int(Double(x2 - x1) / ratioProcessing - Double(y2 - y1))
            y1 -= diff / 2
            y2 += diff - diff / 2
            if y2 >= ih { let d = y2 - ih; y2 -= d; y1 -= d }
            if y1 < 0 { y2 -= y1; y1 = 0 }
            if y2 >= ih { y2 = ih }
        } else {
            let diff = Int(Double(y2 - y1) * ratioProcessing - Double(x2 - x1))
            x1 -= diff / 2
            x2 += diff - diff / 2
            if x2 >= iw { let d = x2 - iw; x2 -= d; x1 -= d }
            if x1 < 0 { x2 -= x1; x1 = 0 }
            if x2 >= iw { x2 = iw }
        }
        return (x1, y1, x2, y2)
    }

    static func crop(_ image: RGBImage, _ r: (Int, Int, Int, Int)) throws -> RGBImage {
        var out: [UInt8] = []
        out.reserveCapacity((r.2 - r.0) * (r.3 - r.1) * 3)
        for y in r.1..<r.3 { out += image.pixels[(3 * (y * image.width + r.0))..<(3 * (y * image.width + r.2))] }
        return try RGBImage(width: r.2 - r.0, height: r.3 - r.1, pixels: out)
    }

    /// A1111's "fill" (masking.fill / processing's inpainting_fill 0): the masked area replaced by
    /// ever finer blurs of the unmasked pixels, so the sampler starts from the surroundings' colours.
    /// Pillow's GaussianBlur is three box blurs; so is this.
    static func fill(_ image: RGBImage, mask: GrayImage) throws -> RGBImage {
        let n = image.width * image.height
        // Premultiplied RGBA of the unmasked part.
        var masked = [Float](repeating: 0, count: n * 4)
        for i in 0..<n {
            let a = Float(255 - mask.pixels[i]) / 255
            for c in 0..<3 { masked[4 * i + c] = Float(image.pixels[3 * i + c]) * a }
            masked[4 * i + 3] = a
        }
        var result = [Float](repeating: 0, count: n * 4)  // straight RGB + alpha, starts transparent
        for (radius, repeats) in [(256.0, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)] {
            let blurred = radius > 0 ? boxBlur3(masked, width: image.width, height: image.height, sigma: radius) : masked
            for _ in 0..<repeats {
                for i in 0..<n {
                    let sa = blurred[4 * i + 3]
                    guard sa > 0 else { continue }
                    let da = result[4 * i + 3]
                    let oa = sa + da * (1 - sa)
                    for c in 0..<3 {
                        let sc = blurred[4 * i + c] / sa  // un-premultiply
                        result[4 * i + c] = (sc * sa + result[4 * i + c] * da * (1 - sa)) / oa
                    }
                    result[4 * i + 3] = oa
                }
            }
        }
        var out = [UInt8](repeating: 0, count: n * 3)
        for i in 0..<n { for c in 0..<3 { out[3 * i + c] = UInt8(max(0, min(255, result[4 * i + c].rounded()))) } }
        return try RGBImage(width: image.width, height: image.height, pixels: out)
    }

    /// Three box blurs per axis approximating a Gaussian of `sigma` on 4-channel interleaved data,
    /// edges extended (as Pillow does).
    static func boxBlur3(_ src: [Float], width: Int, height: Int, sigma: Double) -> [Float] {
        let r = max(0, Int((sqrt(12 * sigma * sigma / 3 + 1) - 1) / 2))
        guard r > 0 else { return src }
        var a = src
        for _ in 0..<3 {
            a = boxPass(a, width: width, height: height, radius: r, alongX: true)
            a = boxPass(a, width: width, height: height, radius: r, alongX: false)
        }
        return a
    }

    private static func boxPass(_ src: [Float], width: Int, height: Int, radius r: Int, alongX: Bool) -> [Float] {
        var out = [Float](repeating: 0, count: src.count)
        let lines = alongX ? height : width, n = alongX ? width : height
        let scale = 1 / Float(2 * r + 1)
        for line in 0..<lines {
            func index(_ i: Int) -> Int { 4 * (alongX ? line * width + min(max(i, 0), n - 1) : min(max(i, 0), n - 1) * width + line) }
            for c in 0..<4 {
                var acc: Float = 0
                for i in -r...r { acc += src[index(i) + c] }
                for i in 0..<n {
                    out[index(i) + c] = acc * scale
                    acc += src[index(i + r + 1) + c] - src[index(i - r) + c]
                }
            }
        }
        return out
    }

    /// The generated pixels laid over `original` through `mask` (255 = generated), at `origin`.
    static func overlay(_ generated: RGBImage, onto original: RGBImage, mask: GrayImage, at origin: (x: Int, y: Int)) throws -> RGBImage {
        var out = original.pixels
        for y in 0..<generated.height {
            for x in 0..<generated.width {
                let ox = origin.x + x, oy = origin.y + y
                guard ox < original.width, oy < original.height else { continue }
                let m = Int(mask[ox, oy])
                for c in 0..<3 {
                    let o = 3 * (oy * original.width + ox) + c
                    let g = Int(generated.pixels[3 * (y * generated.width + x) + c])
                    out[o] = UInt8((g * m + Int(out[o]) * (255 - m) + 127) / 255)
                }
            }
        }
        return try RGBImage(width: original.width, height: original.height, pixels: out)
    }
}
