/// An 8-bit RGB image: `pixels` holds `width * height * 3` bytes, rows top to bottom, each pixel
/// R, G, B. This is what PNG files are written from and what decoded inputs are converted to.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    /// Wraps existing interleaved RGB bytes; throws when the count does not match the size.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0 else {
            throw ImageError.invalidArgument("image size must be positive, got \(width)x\(height)")
        }
        let (count, overflow) = width.multipliedReportingOverflow(by: height * 3)
        guard !overflow, pixels.count == count else {
            throw ImageError.invalidArgument("\(width)x\(height) RGB needs \(width * height * 3) bytes, got \(pixels.count)")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A uniformly coloured image.
    public init(width: Int, height: Int, red: UInt8 = 0, green: UInt8 = 0, blue: UInt8 = 0) throws {
        guard width > 0, height > 0 else {
            throw ImageError.invalidArgument("image size must be positive, got \(width)x\(height)")
        }
        var bytes = [UInt8](repeating: 0, count: width * height * 3)
        for i in stride(from: 0, to: bytes.count, by: 3) {
            bytes[i] = red
            bytes[i + 1] = green
            bytes[i + 2] = blue
        }
        self.width = width
        self.height = height
        self.pixels = bytes
    }

    /// Unchecked initialiser for values built inside this module with a known-good size.
    init(uncheckedWidth width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The (r, g, b) at column `x`, row `y`.
    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Luma as Pillow's `convert("L")` computes it (ITU-R 601-2 weights in 16-bit fixed point),
    /// which is what diffusers' mask processor sees.
    public func luminance() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height)
        pixels.withUnsafeBufferPointer { p in
            for i in 0..<(width * height) {
                let r = UInt32(p[3 * i]), g = UInt32(p[3 * i + 1]), b = UInt32(p[3 * i + 2])
                out[i] = UInt8((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)
            }
        }
        return out
    }

    /// An RGB image with every channel set to the given gray levels (`values.count == width * height`),
    /// e.g. to use an alpha channel as a mask.
    public init(gray values: [UInt8], width: Int, height: Int) throws {
        guard width > 0, height > 0, values.count == width * height else {
            throw ImageError.invalidArgument("gray image \(width)x\(height) needs \(max(0, width * height)) values, got \(values.count)")
        }
        var bytes = [UInt8](repeating: 0, count: values.count * 3)
        for (i, v) in values.enumerated() {
            bytes[3 * i] = v
            bytes[3 * i + 1] = v
            bytes[3 * i + 2] = v
        }
        self.init(uncheckedWidth: width, height: height, pixels: bytes)
    }
}
