#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Matches Pillow's `Image.resize(size, Image.LANCZOS)` for 8-bit images (src/libImaging/Resample.c):
// a separable Lanczos-3 filter whose support widens with the downscale factor, coefficients
// normalised per output pixel and quantised to 22-bit fixed point, a horizontal pass over the rows
// the vertical pass needs, then the vertical pass, each rounding and clamping to 8 bits. diffusers'
// VaeImageProcessor.resize uses exactly this (resample "lanczos", no reducing_gap) when an init
// image or mask differs from the requested size.

extension RGBImage {
    /// The image resized to `width` x `height` with Pillow's Lanczos (a = 3) filter, bit-identical to
    /// `PIL.Image.resize((width, height), Image.LANCZOS)` on an RGB image. Returns `self` unchanged
    /// when the size already matches, as Pillow does.
    public func resizedLanczos(width newWidth: Int, height newHeight: Int) throws(ImageError) -> RGBImage {
        guard newWidth > 0, newHeight > 0 else {
            throw .invalidArgument("resize target must be positive, got \(newWidth)x\(newHeight)")
        }
        if newWidth == width && newHeight == height { return self }
        let vertical = LanczosCoefficients(inSize: height, outSize: newHeight)
        var rows = pixels
        var rowsWidth = width
        var firstRow = 0
        var rowCount = height
        if newWidth != width {
            // Only the source rows the vertical pass reads are filtered horizontally.
            let horizontal = LanczosCoefficients(inSize: width, outSize: newWidth)
            firstRow = vertical.bounds[0].start
            let lastRow = vertical.bounds[newHeight - 1].start + vertical.bounds[newHeight - 1].count
            rowCount = lastRow - firstRow
            rows = Self.resampleHorizontal(pixels, width: width, firstRow: firstRow, rowCount: rowCount,
                                           outWidth: newWidth, coefficients: horizontal)
            rowsWidth = newWidth
        }
        guard newHeight != height else {
            return RGBImage(uncheckedWidth: rowsWidth, height: rowCount, pixels: rows)
        }
        let out = Self.resampleVertical(rows, width: rowsWidth, rowOffset: firstRow, outHeight: newHeight,
                                        coefficients: vertical)
        return RGBImage(uncheckedWidth: rowsWidth, height: newHeight, pixels: out)
    }

    private static func resampleHorizontal(_ src: [UInt8], width: Int, firstRow: Int, rowCount: Int, outWidth: Int,
                                           coefficients c: LanczosCoefficients) -> [UInt8] {
        resample(src, outputCount: outWidth * rowCount * 3, coefficients: c) { s, o, kk in
            for y in 0..<rowCount {
                let rowBase = (y + firstRow) * width * 3
                for x in 0..<outWidth {
                    let b = c.bounds[x]
                    let k = x * c.kernelSize
                    var s0 = LanczosCoefficients.half, s1 = s0, s2 = s0
                    for i in 0..<b.count {
                        let p = rowBase + (b.start + i) * 3
                        let w = kk[k + i]
                        s0 &+= Int32(s[p]) &* w
                        s1 &+= Int32(s[p + 1]) &* w
                        s2 &+= Int32(s[p + 2]) &* w
                    }
                    let d = (y * outWidth + x) * 3
                    o[d] = LanczosCoefficients.clip8(s0)
                    o[d + 1] = LanczosCoefficients.clip8(s1)
                    o[d + 2] = LanczosCoefficients.clip8(s2)
                }
            }
        }
    }

    private static func resampleVertical(_ src: [UInt8], width: Int, rowOffset: Int, outHeight: Int,
                                         coefficients c: LanczosCoefficients) -> [UInt8] {
        resample(src, outputCount: width * outHeight * 3, coefficients: c) { s, o, kk in
            for y in 0..<outHeight {
                let b = c.bounds[y]
                let k = y * c.kernelSize
                for x in 0..<(width * 3) {
                    var acc = LanczosCoefficients.half
                    for i in 0..<b.count {
                        acc &+= Int32(s[(b.start - rowOffset + i) * width * 3 + x]) &* kk[k + i]
                    }
                    o[y * width * 3 + x] = LanczosCoefficients.clip8(acc)
                }
            }
        }
    }

    /// A zeroed output of `outputCount` bytes filled by `pass`, which reads the source and the
    /// filter weights through buffer pointers (the passes index them in their innermost loops).
    private static func resample(_ src: [UInt8], outputCount: Int, coefficients c: LanczosCoefficients,
                                 _ pass: (UnsafeBufferPointer<UInt8>, UnsafeMutableBufferPointer<UInt8>, UnsafeBufferPointer<Int32>) -> Void) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: outputCount)
        src.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                c.weights.withUnsafeBufferPointer { kk in pass(s, o, kk) }
            }
        }
        return out
    }
}

/// Pillow's per-output-pixel filter taps for one axis, already quantised to fixed point.
struct LanczosCoefficients {
    static let precisionBits: Int32 = 32 - 8 - 2
    static let half: Int32 = 1 << (precisionBits - 1)

    let kernelSize: Int
    let bounds: [(start: Int, count: Int)]
    let weights: [Int32]

    static func clip8(_ value: Int32) -> UInt8 {
        let v = value >> precisionBits
        return v < 0 ? 0 : (v > 255 ? 255 : UInt8(v))
    }

    static func lanczos(_ x: Double) -> Double {
        guard -3.0 <= x && x < 3.0 else { return 0 }
        return sinc(x) * sinc(x / 3)
    }

    static func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let t = x * Double.pi
        return sin(t) / t
    }

    init(inSize: Int, outSize: Int) {
        let support0 = 3.0
        let scale = Double(Float(inSize)) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = support0 * filterScale
        let ksize = Int(ceil(support)) * 2 + 1
        var bounds: [(Int, Int)] = []
        bounds.reserveCapacity(outSize)
        var weights = [Int32](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1.0 / filterScale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var ww = 0.0
            for x in 0..<ksize { k[x] = 0 }
            for x in 0..<max(xmax, 0) {
                let w = Self.lanczos((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w
                ww += w
            }
            for x in 0..<max(xmax, 0) where ww != 0 { k[x] /= ww }
            for x in 0..<ksize {
                let scaled = k[x] * Double(1 << Self.precisionBits)
                weights[xx * ksize + x] = Int32(k[x] < 0 ? -0.5 + scaled : 0.5 + scaled)
            }
            bounds.append((xmin, max(xmax, 0)))
        }
        self.kernelSize = ksize
        self.bounds = bounds
        self.weights = weights
    }
}
