// How a job's request and results travel through the database: JSON mirrors of the library's
// (non-Codable) types. Images inside a request (init image, mask) travel as lossless PNG, so the
// worker generates from exactly the pixels the API node received.
import DeciDiffusion
import DeciImage
import Foundation

/// A ``JobSpec`` as stored in the `spec` column.
struct StoredSpec: Codable {
    var prompts: [String]
    var negativePrompts: [String]?
    var imagesPerPrompt: Int
    var width: Int?
    var height: Int?
    var steps: Int?
    var guidanceScale: Double?
    var guidanceRescale: Double?
    var scheduler: String?
    var seed: UInt64
    var eta: Double
    var clipSkip: Int
    var initImagePNG: Data?
    var strength: Double?
    var maskPNG: Data?
    var vaeTiling: Bool
    var promptWeighting: PromptWeighting
    var padCondUncond: Bool
    var model: String?
    var previewEvery: Int
    var previewDecodeEvery: Int
    var previewUpscale: Bool
    var keepPartialOnCancel: Bool
    var loras: [StoredLoRA]

    struct StoredLoRA: Codable {
        var name: String
        var textEncoder: Float
        var denoiser: Float
    }

    init(_ spec: JobSpec, seed: UInt64) throws(ServiceError) {
        let r = spec.request
        (prompts, negativePrompts, imagesPerPrompt, width, height, steps) = (r.prompts, r.negativePrompts, r.imagesPerPrompt, r.width, r.height, r.steps)
        (guidanceScale, guidanceRescale, scheduler, self.seed, eta, clipSkip) = (r.guidanceScale, r.guidanceRescale, r.scheduler, seed, r.eta, r.clipSkip)
        (strength, vaeTiling, promptWeighting, padCondUncond, model) = (r.strength, r.vaeTiling, r.promptWeighting, r.padCondUncond, spec.model)
        (previewEvery, previewDecodeEvery, previewUpscale) = (spec.preview.every, spec.preview.decodeEvery, spec.preview.upscale)
        keepPartialOnCancel = spec.keepPartialOnCancel
        loras = spec.loras.map { StoredLoRA(name: $0.name, textEncoder: $0.textEncoderMultiplier, denoiser: $0.denoiserMultiplier) }
        do {
            initImagePNG = try r.initImage.map { Data(try ImageFile.encodePNG($0, compressionLevel: 1)) }
            maskPNG = try r.mask.map { Data(try ImageFile.encodePNG($0, compressionLevel: 1)) }
        } catch {
            throw .invalidRequest("init image: cannot be stored for the queue (\(error))")
        }
    }

    /// The spec a worker runs.
    func jobSpec() throws -> JobSpec {
        var r = GenerationRequest(prompts: prompts, negativePrompts: negativePrompts)
        (r.imagesPerPrompt, r.width, r.height, r.steps) = (imagesPerPrompt, width, height, steps)
        (r.guidanceScale, r.guidanceRescale, r.scheduler, r.seed, r.eta, r.clipSkip) = (guidanceScale, guidanceRescale, scheduler, seed, eta, clipSkip)
        (r.strength, r.vaeTiling, r.promptWeighting, r.padCondUncond) = (strength, vaeTiling, promptWeighting, padCondUncond)
        r.initImage = try initImagePNG.map { try ImageFile.decode([UInt8]($0)).image }
        r.mask = try maskPNG.map { try ImageFile.decode([UInt8]($0)).image }
        return JobSpec(request: r, seed: seed, model: model,
                       preview: PreviewOptions(every: previewEvery, decodeEvery: previewDecodeEvery, upscale: previewUpscale),
                       keepPartialOnCancel: keepPartialOnCancel,
                       loras: loras.map { LoRAReference(name: $0.name, textEncoderMultiplier: $0.textEncoder, denoiserMultiplier: $0.denoiser) })
    }
}

/// A ``ResolvedRequest`` without its images (the API node attaches the request's own).
struct StoredResolved: Codable {
    var prompts: [String]
    var negativePrompts: [String]
    var imagesPerPrompt, width, height, steps, clipSkip: Int
    var guidanceScale, guidanceRescale, eta, strength: Double
    var seed: UInt64
    var scheduler: String?
    var vaeTiling: Bool
    var promptWeighting: PromptWeighting
    var padCondUncond: Bool

    init(_ r: ResolvedRequest) {
        (prompts, negativePrompts, imagesPerPrompt, width, height, steps, clipSkip) = (r.prompts, r.negativePrompts, r.imagesPerPrompt, r.width, r.height, r.steps, r.clipSkip)
        (guidanceScale, guidanceRescale, eta, strength, seed, scheduler) = (r.guidanceScale, r.guidanceRescale, r.eta, r.strength, r.seed, r.scheduler)
        (vaeTiling, promptWeighting, padCondUncond) = (r.vaeTiling, r.promptWeighting, r.padCondUncond)
    }

    func resolved(initImage: RGBImage?, mask: RGBImage?) -> ResolvedRequest {
        ResolvedRequest(prompts: prompts, negativePrompts: negativePrompts, imagesPerPrompt: imagesPerPrompt, width: width, height: height,
                        steps: steps, guidanceScale: guidanceScale, guidanceRescale: guidanceRescale, seed: seed, eta: eta, clipSkip: clipSkip,
                        strength: strength, scheduler: scheduler, initImage: initImage, mask: mask, vaeTiling: vaeTiling,
                        promptWeighting: promptWeighting, padCondUncond: padCondUncond)
    }
}

struct StoredTimings: Codable {
    var textEncoder, denoising, vaeEncode, vaeDecode: Double
    var steps: Int

    init(_ t: GenerationResult.Timings) {
        (textEncoder, denoising, vaeEncode, vaeDecode, steps) = (t.textEncoder, t.denoising, t.vaeEncode, t.vaeDecode, t.steps)
    }

    var timings: GenerationResult.Timings {
        GenerationResult.Timings(textEncoder: textEncoder, denoising: denoising, vaeEncode: vaeEncode, vaeDecode: vaeDecode, steps: steps)
    }
}

/// An image's `parameters` (A1111 infotext fields), stored beside its PNG.
struct StoredParameters: Codable {
    var prompt, negativePrompt, sampler: String
    var steps, width, height: Int
    var cfgScale: Double
    var seed: UInt64
    var model: String?
    var extra: [[String]]

    init(_ p: GenerationParameters) {
        (prompt, negativePrompt, sampler, steps, width, height) = (p.prompt, p.negativePrompt, p.sampler, p.steps, p.width, p.height)
        (cfgScale, seed, model, extra) = (p.cfgScale, p.seed, p.model, p.extra.map { [$0.key, $0.value] })
    }

    var parameters: GenerationParameters {
        GenerationParameters(prompt: prompt, negativePrompt: negativePrompt, steps: steps, sampler: sampler, cfgScale: cfgScale, seed: seed,
                             width: width, height: height, model: model,
                             extra: extra.compactMap { $0.count == 2 ? GenerationParameters.Field($0[0], $0[1]) : nil })
    }
}

/// One result image as the worker hands it to the database in its single result statement.
struct StoredImage: Codable {
    var png: String  // base64: the statement carries all images as one JSON array
    var parameters: StoredParameters
}

enum StoredJSON {
    static func encode<T: Encodable>(_ value: T) -> String {
        // Encoding these plain structs cannot fail; an empty object would show as a decoding error later.
        (try? String(decoding: JSONEncoder().encode(value), as: UTF8.self)) ?? "{}"
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String, column: String) throws(QueueError) -> T {
        do { return try JSONDecoder().decode(type, from: Data(text.utf8)) } catch {
            throw .corrupt("\(column): cannot decode the stored JSON (\(error))")
        }
    }
}
