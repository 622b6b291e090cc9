// Matches diffusers 0.42 VaeImageProcessor: `postprocess` (denormalize, pt_to_numpy, numpy_to_pil)
// for output images and `preprocess` (pil_to_numpy, normalize; binarize for masks) for inputs. All
// arithmetic is float32 in the same order, so 8-bit outputs equal diffusers' for equal tensors.

extension RGBImage {
    /// An 8-bit image from one HWC float image in the pipeline's [-1, 1] convention, rounded exactly as
    /// diffusers does: `clamp(x * 0.5 + 0.5, 0, 1)` in float32, then `(v * 255).round()` (ties to even,
    /// numpy's rounding) cast to uint8. NaN becomes 0.
    public init(denormalizing values: [Float], width: Int, height: Int) throws(ImageError) {
        guard width > 0, height > 0, values.count == width * height * 3 else {
            throw .invalidArgument("an HWC float image of \(width)x\(height)x3 needs \(max(0, width * height * 3)) values, got \(values.count)")
        }
        var bytes = [UInt8](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { v in
            for i in 0..<v.count { bytes[i] = Self.byte(fromNormalized: v[i]) }
        }
        self.init(uncheckedWidth: width, height: height, pixels: bytes)
    }

    /// One image per batch item from an NHWC float batch in [-1, 1] (see `init(denormalizing:width:height:)`).
    public static func batch(denormalizing nhwc: [Float], count: Int, width: Int, height: Int) throws(ImageError) -> [RGBImage] {
        let per = width * height * 3
        guard count > 0, width > 0, height > 0, nhwc.count == count * per else {
            throw .invalidArgument("an NHWC batch of \(count)x\(height)x\(width)x3 needs \(max(0, count * per)) values, got \(nhwc.count)")
        }
        var images: [RGBImage] = []
        for n in 0..<count {
            images.append(try RGBImage(denormalizing: Array(nhwc[(n * per)..<((n + 1) * per)]), width: width, height: height))
        }
        return images
    }

    /// The uint8 value diffusers produces for one float in [-1, 1].
    @inline(__always)
    public static func byte(fromNormalized x: Float) -> UInt8 {
        var v = x * 0.5 + 0.5
        if v.isNaN { return 0 }
        v = min(max(v, 0), 1)
        return UInt8((v * 255).rounded(.toNearestOrEven))
    }

    /// The image as HWC floats in [-1, 1], as VaeImageProcessor.preprocess makes it for the VAE
    /// encoder: `2 * (b / 255) - 1` in float32.
    public func normalizedFloats() -> [Float] {
        pixels.map { Self.normalized(fromByte: $0) }
    }

    @inline(__always)
    public static func normalized(fromByte b: UInt8) -> Float {
        let unit = Float(b) / 255
        return 2 * unit - 1
    }

    /// The image as HWC floats in [0, 1] (`b / 255` in float32), for callers that normalise later.
    public func unitFloats() -> [Float] {
        pixels.map { Float($0) / 255 }
    }

    /// A `width * height` mask of 0s and 1s as diffusers' inpainting mask processor makes it:
    /// Pillow's `convert("L")` luma, `/ 255` in float32, then values below 0.5 become 0 and the rest 1
    /// (so luma 128 and above is masked, i.e. repainted).
    public func binarizedMask() -> [Float] {
        luminance().map { Float($0) / 255 < 0.5 ? 0 : 1 }
    }

    /// The size diffusers' VaeImageProcessor works at: the requested size (or the image's own when nil),
    /// each side rounded down to a multiple of `scaleFactor` (`get_default_height_width`).
    public func vaeSize(width: Int? = nil, height: Int? = nil, scaleFactor: Int = 8) throws(ImageError) -> (width: Int, height: Int) {
        guard scaleFactor > 0 else { throw .invalidArgument("VAE scale factor must be positive, got \(scaleFactor)") }
        let w = width ?? self.width, h = height ?? self.height
        let size = (width: w - w % scaleFactor, height: h - h % scaleFactor)
        guard size.width > 0, size.height > 0 else {
            throw .invalidArgument("image size \(w)x\(h) is smaller than the VAE scale factor \(scaleFactor)")
        }
        return size
    }

    /// An init image prepared as diffusers' `image_processor.preprocess(image, height, width)` does for
    /// an RGB PIL input: the size from `vaeSize` (img2img passes no size, so the image's own size
    /// rounded down to a multiple of 8), Lanczos-resized when that differs, then normalised to
    /// [-1, 1] (HWC).
    public func preprocessedForVAE(width: Int? = nil, height: Int? = nil, scaleFactor: Int = 8) throws(ImageError)
        -> (values: [Float], width: Int, height: Int) {
        let size = try vaeSize(width: width, height: height, scaleFactor: scaleFactor)
        let values = try resizedLanczos(width: size.width, height: size.height).normalizedFloats()
        return (values, size.width, size.height)
    }

    /// A mask prepared as StableDiffusionInpaintPipeline's `mask_processor.preprocess(mask, height, width)`
    /// does for an RGB PIL input: Lanczos-resized in RGB to `vaeSize`, converted to luma, binarised
    /// (HW, 0 or 1).
    public func preprocessedMask(width: Int? = nil, height: Int? = nil, scaleFactor: Int = 8) throws(ImageError)
        -> (values: [Float], width: Int, height: Int) {
        let size = try vaeSize(width: width, height: height, scaleFactor: scaleFactor)
        let values = try resizedLanczos(width: size.width, height: size.height).binarizedMask()
        return (values, size.width, size.height)
    }
}
