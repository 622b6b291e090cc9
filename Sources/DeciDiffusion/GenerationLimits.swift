// Size limits a long-running server puts on requests, checked before any model work so that one
// oversized job is refused in microseconds instead of exhausting memory half way through.

/// Upper bounds on what one request may ask for.
public struct GenerationLimits: Sendable, Equatable {
    /// Most `width * height` pixels one image may have (default 1024 x 1024).
    public var maxPixelsPerImage: Int = 1024 * 1024
    /// Most images one request may make: prompts x images per prompt (default 8).
    public var maxBatch: Int = 8

    public init(maxPixelsPerImage: Int = 1024 * 1024, maxBatch: Int = 8) {
        self.maxPixelsPerImage = maxPixelsPerImage
        self.maxBatch = maxBatch
    }

    /// Throws naming the size or batch that is over its limit.
    public func check(_ req: ResolvedRequest) throws(RequestError) {
        let pixels = req.width * req.height
        guard pixels <= maxPixelsPerImage else {
            throw RequestError("width x height: \(req.width)x\(req.height) = \(pixels) pixels is over the limit of \(maxPixelsPerImage) pixels per image (--max-pixels)")
        }
        guard req.batch <= maxBatch else {
            throw RequestError("batch: \(req.prompts.count) prompt(s) x \(req.imagesPerPrompt) image(s) per prompt = \(req.batch) images is over the limit of \(maxBatch) images per request (--max-batch)")
        }
    }
}

extension DiffusionPipeline {
    /// ``resolve(_:)``, then the request checked against `limits`: a request over them is refused
    /// before any model work.
    public func resolve(_ request: GenerationRequest, limits: GenerationLimits) throws -> ResolvedRequest {
        let req = try resolve(request)
        try limits.check(req)
        return req
    }
}
