// The output side of a generation: the seed a request runs with, the A1111 `parameters` text each
// image carries, its PNG bytes, and where a batch goes on disk. The CLI and the HTTP service both
// go through here, so a file written by one has the same bytes as a response served by the other.
import DeciImage
import Foundation

extension GenerationRequest {
    /// The seed to run with: `seed` itself, or for nil a random value in `0...UInt32.max` (what the
    /// CLI prints and records, so the image can be regenerated).
    public static func resolveSeed(_ seed: UInt64?) -> UInt64 {
        seed ?? UInt64(UInt32.random(in: 0...UInt32.max))
    }
}

extension DiffusionPipeline {
    /// The checkpoint folder's name (its last path component), recorded as the PNGs' `Model`.
    public var modelName: String { URL(fileURLWithPath: layout.root.path).lastPathComponent }
}

/// An image index outside a result's images.
public struct ImageIndexError: Error, CustomStringConvertible, Equatable {
    public let index: Int
    public let count: Int
    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }
    public var description: String { "image index: \(index) is outside 0..<\(count)" }
}

extension GenerationResult {
    /// The settings of image `index` as the web UI records them: the standard fields, then
    /// Guidance rescale (when on), Denoising strength (image-to-image and inpainting), Clip skip (in
    /// A1111's counting, when skipping), RNG and the image's position in the batch. The prompt is
    /// the first prompt of the request, as the CLI has always written it.
    public func parameters(forImage index: Int, model: String?) -> GenerationParameters {
        let req = request
        var extra: [GenerationParameters.Field] = []
        if req.guidanceRescale > 0 { extra.append(.init("Guidance rescale", String(req.guidanceRescale))) }
        if req.initImage != nil { extra.append(.init("Denoising strength", String(req.strength))) }
        if req.clipSkip > 0 { extra.append(.init("Clip skip", String(req.clipSkip + 1))) }
        extra.append(.init("RNG", "CPU"))
        extra.append(.init("Batch pos", String(index)))
        let size = images.indices.contains(index) ? (images[index].width, images[index].height) : (req.width, req.height)
        return GenerationParameters(prompt: req.prompts[0], negativePrompt: req.negativePrompts[0], steps: req.steps,
                                    sampler: sampler, cfgScale: req.guidanceScale, seed: req.seed, width: size.0,
                                    height: size.1, model: model, extra: extra)
    }

    /// Image `index` as PNG bytes with its ``parameters(forImage:model:)`` in a `parameters` text
    /// chunk: byte for byte what ``writePNGs(to:model:)`` writes.
    public func pngData(forImage index: Int, model: String?) throws -> [UInt8] {
        guard images.indices.contains(index) else { throw ImageIndexError(index: index, count: images.count) }
        let params = parameters(forImage: index, model: model)
        return try ImageFile.encodePNG(images[index], text: [PNGTextChunk(key: "parameters", value: params.text)])
    }

    /// Writes image `i` to `paths[i]`, each atomically (temporary file, then rename), so a reader
    /// never sees a half-written image under its final name.
    public func writePNGs(to paths: [String], model: String?) throws {
        guard paths.count == images.count else {
            throw OutputError("paths: \(paths.count) given for \(images.count) image(s)")
        }
        for (i, path) in paths.enumerated() {
            // The same chunk list as pngData(forImage:model:), through the atomic writer.
            try ImageFile.writePNG(images[i], to: path, parameters: parameters(forImage: i, model: model))
        }
    }
}
