/// EXIF orientation handling, matching Pillow's `ImageOps.exif_transpose` (which diffusers'
/// `load_image` applies): 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
/// 7 transverse, 8 rotate 90 counter-clockwise.
enum Orientation {
    static func apply(_ orientation: Int, to bytes: [UInt8], width: Int, height: Int, channels: Int)
        -> (bytes: [UInt8], width: Int, height: Int) {
        guard (2...8).contains(orientation) else { return (bytes, width, height) }
        let swaps = orientation >= 5
        let ow = swaps ? height : width
        let oh = swaps ? width : height
        var out = [UInt8](repeating: 0, count: bytes.count)
        for y in 0..<oh {
            for x in 0..<ow {
                // Source column and row for output pixel (x, y).
                let (sx, sy): (Int, Int)
                switch orientation {
                case 2: (sx, sy) = (width - 1 - x, y)
                case 3: (sx, sy) = (width - 1 - x, height - 1 - y)
                case 4: (sx, sy) = (x, height - 1 - y)
                case 5: (sx, sy) = (y, x)
                case 6: (sx, sy) = (y, height - 1 - x)
                case 7: (sx, sy) = (width - 1 - y, height - 1 - x)
                default: (sx, sy) = (width - 1 - y, x)
                }
                let d = (y * ow + x) * channels, s = (sy * width + sx) * channels
                for c in 0..<channels { out[d + c] = bytes[s + c] }
            }
        }
        return (out, ow, oh)
    }
}

extension RGBImage {
    /// The image turned upright according to an EXIF orientation value (1-8; others leave it as is).
    public func applyingEXIFOrientation(_ orientation: Int) -> RGBImage {
        let r = Orientation.apply(orientation, to: pixels, width: width, height: height, channels: 3)
        return RGBImage(uncheckedWidth: r.width, height: r.height, pixels: r.bytes)
    }
}
