import CImageCodecs

/// A text chunk of a PNG file (tEXt, zTXt or iTXt).
public struct PNGTextChunk: Sendable, Equatable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// The container format of an image file.
public enum ImageFormat: String, Sendable {
    case png = "PNG"
    case jpeg = "JPEG"
}

/// An image as read from a file: 8-bit RGB plus what the file carried besides.
public struct DecodedImage: Sendable {
    /// The pixels as 8-bit RGB. For inputs with alpha, the color channels as stored (not composited),
    /// which is what Pillow's `convert("RGB")` gives.
    public var image: RGBImage
    /// The alpha channel (`width * height` bytes) when the file had one (PNG RGBA, gray+alpha, or
    /// tRNS transparency), for callers that take masks from alpha.
    public var alpha: [UInt8]?
    public var format: ImageFormat
    /// PNG text chunks in file order; empty for JPEG.
    public var textChunks: [PNGTextChunk]
    /// PNG color type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA) or JPEG component count.
    public var sourceColorType: Int
    public var sourceBitDepth: Int
    /// The EXIF orientation (1-8) a JPEG declared, or nil.
    public var exifOrientation: Int?

    /// The value of the first text chunk with this key.
    public func text(_ key: String) -> String? { textChunks.first { $0.key == key }?.value }
}

/// Reading PNG/JPEG files and writing PNG (and encoding JPEG) through libpng and libjpeg.
public enum ImageFile {
    /// Reads a PNG or JPEG file (chosen by its signature, not its name) as 8-bit RGB.
    ///
    /// PNGs of every color type and bit depth are accepted: palette and gray are expanded, 16-bit
    /// samples keep their high byte (as Pillow does for RGB), alpha is returned separately.
    /// JPEG EXIF orientation is applied when `applyEXIFOrientation` is set, as diffusers'
    /// `load_image` does with `ImageOps.exif_transpose`.
    public static func read(path: String, applyEXIFOrientation: Bool = true) throws(ImageError) -> DecodedImage {
        let bytes = try FileIO.readAll(path: path)
        return try decode(bytes, path: path, applyEXIFOrientation: applyEXIFOrientation)
    }

    /// Decodes PNG or JPEG bytes; `path` only labels error messages.
    public static func decode(_ bytes: [UInt8], path: String = "<memory>", applyEXIFOrientation: Bool = true) throws(ImageError) -> DecodedImage {
        if bytes.count >= 8, bytes[0] == 0x89, bytes[1] == 0x50, bytes[2] == 0x4E, bytes[3] == 0x47 {
            return try decodeWith(cic_png_decode, bytes, format: .png, path: path, applyEXIFOrientation: false)
        }
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF {
            return try decodeWith(cic_jpeg_decode, bytes, format: .jpeg, path: path, applyEXIFOrientation: applyEXIFOrientation)
        }
        throw .unrecognizedFormat(path: path)
    }

    private typealias Decoder = (UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<cic_image>?, UnsafeMutablePointer<CChar>?, Int) -> Int32

    private static func decodeWith(_ decoder: Decoder, _ bytes: [UInt8], format: ImageFormat, path: String,
                                   applyEXIFOrientation: Bool) throws(ImageError) -> DecodedImage {
        var raw = cic_image()
        var message = [CChar](repeating: 0, count: 512)
        let status = bytes.withUnsafeBufferPointer { buf in
            message.withUnsafeMutableBufferPointer { msg in
                decoder(buf.baseAddress, buf.count, &raw, msg.baseAddress, msg.count)
            }
        }
        defer { cic_image_free(&raw) }
        let reason = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        guard status == Int32(CIC_OK) else {
            switch Int(status) {
            case Int(CIC_NOT_THIS_FORMAT): throw .unrecognizedFormat(path: path)
            case Int(CIC_UNSUPPORTED), Int(CIC_TOO_LARGE):
                throw .unsupported(path: path, format: format.rawValue, reason: reason)
            case Int(CIC_NO_MEMORY): throw .io(path: path, reason: "out of memory while decoding")
            default: throw .corrupt(path: path, format: format.rawValue, reason: reason)
            }
        }
        let width = Int(raw.width), height = Int(raw.height), channels = Int(raw.channels)
        guard width > 0, height > 0, channels == 3 || channels == 4, let src = raw.pixels else {
            throw .corrupt(path: path, format: format.rawValue, reason: "decoder returned no pixels")
        }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        var alpha: [UInt8]? = nil
        if channels == 3 {
            rgb.withUnsafeMutableBufferPointer { dst in
                dst.baseAddress!.update(from: src, count: dst.count)
            }
        } else {
            var a = [UInt8](repeating: 0, count: width * height)
            for i in 0..<(width * height) {
                rgb[3 * i] = src[4 * i]
                rgb[3 * i + 1] = src[4 * i + 1]
                rgb[3 * i + 2] = src[4 * i + 2]
                a[i] = src[4 * i + 3]
            }
            alpha = a
        }
        var chunks: [PNGTextChunk] = []
        for i in 0..<raw.text_count {
            let t = raw.texts[i]
            let key = latin1String(t.key, count: t.key.map { strlenC($0) } ?? 0)
            let value = t.is_utf8 != 0
                ? utf8String(t.text, count: t.text_length)
                : latin1String(t.text, count: t.text_length)
            chunks.append(PNGTextChunk(key: key, value: value))
        }
        var image = RGBImage(uncheckedWidth: width, height: height, pixels: rgb)
        let orientation = raw.exif_orientation > 0 ? Int(raw.exif_orientation) : nil
        if applyEXIFOrientation, let o = orientation, o != 1 {
            image = image.applyingEXIFOrientation(o)
            if let a = alpha {
                alpha = Orientation.apply(o, to: a, width: width, height: height, channels: 1).bytes
            }
        }
        return DecodedImage(image: image, alpha: alpha, format: format, textChunks: chunks,
                            sourceColorType: Int(raw.source_color_type), sourceBitDepth: Int(raw.source_bit_depth),
                            exifOrientation: orientation)
    }

    private static func strlenC(_ p: UnsafePointer<CChar>) -> Int {
        var n = 0
        while p[n] != 0 { n += 1 }
        return n
    }

    private static func latin1String(_ p: UnsafeMutablePointer<CChar>?, count: Int) -> String {
        guard let p else { return "" }
        var s = String.UnicodeScalarView()
        for i in 0..<count { s.append(Unicode.Scalar(UInt8(bitPattern: p[i]))) }
        return String(s)
    }

    private static func utf8String(_ p: UnsafeMutablePointer<CChar>?, count: Int) -> String {
        guard let p else { return "" }
        let buf = UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: count)
        return String(decoding: buf, as: UTF8.self)
    }

    /// Encodes `image` as an 8-bit RGB PNG with the given text chunks. Latin-1 values go into tEXt
    /// chunks and others into uncompressed UTF-8 iTXt chunks, as Pillow's `PngInfo.add_text` does.
    /// `compressionLevel` is zlib's 0-9 (6, Pillow's default, by default).
    public static func encodePNG(_ image: RGBImage, text: [PNGTextChunk] = [], compressionLevel: Int = 6) throws(ImageError) -> [UInt8] {
        guard (0...9).contains(compressionLevel) else {
            throw .invalidArgument("PNG compression level must be 0-9, got \(compressionLevel)")
        }
        var keys: [[CChar]] = []
        var values: [[CChar]] = []
        var utf8Flags: [Int32] = []
        for chunk in text {
            let keyScalars = chunk.key.unicodeScalars
            guard (1...79).contains(keyScalars.count),
                  keyScalars.allSatisfy({ ($0.value >= 32 && $0.value <= 126) || ($0.value >= 161 && $0.value <= 255) }),
                  keyScalars.first != " ", keyScalars.last != " ", !chunk.key.contains("  ") else {
                throw .invalidArgument("PNG text key \"\(chunk.key)\" is invalid: it must be 1-79 printable Latin-1 characters without leading, trailing or double spaces")
            }
            guard !chunk.value.unicodeScalars.contains("\0") else {
                throw .invalidArgument("PNG text value for key \"\(chunk.key)\" contains a NUL character")
            }
            keys.append(keyScalars.map { CChar(bitPattern: UInt8($0.value)) } + [0])
            if chunk.value.unicodeScalars.allSatisfy({ $0.value <= 255 }) {
                values.append(chunk.value.unicodeScalars.map { CChar(bitPattern: UInt8($0.value)) } + [0])
                utf8Flags.append(0)
            } else {
                values.append(chunk.value.utf8.map { CChar(bitPattern: $0) } + [0])
                utf8Flags.append(1)
            }
        }
        var message = [CChar](repeating: 0, count: 512)
        var output: UnsafeMutablePointer<UInt8>? = nil
        var outputSize = 0
        let status: Int32 = withCStringArrays(keys, values) { keyPtrs, valuePtrs in
            var entries = (0..<keyPtrs.count).map { i in
                cic_text(key: keyPtrs[i], text: valuePtrs[i], text_length: values[i].count - 1,
                         is_utf8: utf8Flags[i], is_compressed: 0)
            }
            return image.pixels.withUnsafeBufferPointer { px in
                entries.withUnsafeMutableBufferPointer { e in
                    message.withUnsafeMutableBufferPointer { msg in
                        cic_png_encode(px.baseAddress, UInt32(image.width), UInt32(image.height), 3,
                                       Int32(compressionLevel), e.baseAddress, e.count, &output, &outputSize,
                                       msg.baseAddress, msg.count)
                    }
                }
            }
        }
        defer { cic_free(output) }
        guard status == Int32(CIC_OK), let output else {
            let reason = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw .invalidArgument("PNG encoding failed: \(reason)")
        }
        return Array(UnsafeBufferPointer(start: output, count: outputSize))
    }

    /// Encodes `image` as a baseline JPEG (JFIF, 4:2:0 chroma) at libjpeg `quality` 1-100 (75 is
    /// libjpeg's and Pillow's default). No metadata is written: JPEG has no `parameters` chunk.
    public static func encodeJPEG(_ image: RGBImage, quality: Int = 75) throws(ImageError) -> [UInt8] {
        guard (1...100).contains(quality) else {
            throw .invalidArgument("JPEG quality must be 1-100, got \(quality)")
        }
        var message = [CChar](repeating: 0, count: 512)
        var output: UnsafeMutablePointer<UInt8>? = nil
        var outputSize = 0
        let status = image.pixels.withUnsafeBufferPointer { px in
            message.withUnsafeMutableBufferPointer { msg in
                cic_jpeg_encode(px.baseAddress, UInt32(image.width), UInt32(image.height), Int32(quality),
                                &output, &outputSize, msg.baseAddress, msg.count)
            }
        }
        defer { cic_free(output) }
        guard status == Int32(CIC_OK), let output else {
            let reason = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw .invalidArgument("JPEG encoding failed: \(reason)")
        }
        return Array(UnsafeBufferPointer(start: output, count: outputSize))
    }

    /// Writes `image` as PNG to `path` atomically (temporary file in the same directory, fsync,
    /// rename), so an interrupted run never leaves a half-written image under the final name.
    public static func writePNG(_ image: RGBImage, to path: String, text: [PNGTextChunk] = [], compressionLevel: Int = 6) throws(ImageError) {
        let bytes = try encodePNG(image, text: text, compressionLevel: compressionLevel)
        try FileIO.writeAtomically(bytes, to: path)
    }

    /// Writes `image` as PNG with the generation parameters in a `parameters` text chunk, the
    /// layout AUTOMATIC1111's web UI and stable-diffusion.cpp use, so their readers show them.
    public static func writePNG(_ image: RGBImage, to path: String, parameters: GenerationParameters,
                                extraText: [PNGTextChunk] = []) throws(ImageError) {
        try writePNG(image, to: path, text: [PNGTextChunk(key: "parameters", value: parameters.text)] + extraText)
    }

    private static func withCStringArrays<R>(_ a: [[CChar]], _ b: [[CChar]],
                                             _ body: ([UnsafeMutablePointer<CChar>], [UnsafeMutablePointer<CChar>]) -> R) -> R {
        // Copies into heap buffers whose addresses stay valid for the whole call.
        let pa = a.map { arr -> UnsafeMutablePointer<CChar> in
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: arr.count)
            p.initialize(from: arr, count: arr.count)
            return p
        }
        let pb = b.map { arr -> UnsafeMutablePointer<CChar> in
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: arr.count)
            p.initialize(from: arr, count: arr.count)
            return p
        }
        defer {
            pa.forEach { $0.deallocate() }
            pb.forEach { $0.deallocate() }
        }
        return body(pa, pb)
    }
}
