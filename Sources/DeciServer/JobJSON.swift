// The native job API's JSON: the body of `POST /v1/jobs` (decoded with errors that name the field)
// and the job object every other route returns. snake_case on the wire; absent values are `null`
// so every job object has the same keys.
import DeciDiffusion
import DeciImage
import Foundation

/// The body of `POST /v1/jobs`. Unknown keys are ignored.
struct JobRequestBody: Decodable {
    var prompt: String
    var negativePrompt: String?
    var width: Int?
    var height: Int?
    var steps: Int?
    var guidanceScale: Double?
    var guidanceRescale: Double?
    var scheduler: String?
    /// nil: random (absent, null or negative).
    var seed: UInt64?
    var numImages: Int?
    var initImage: String?
    var mask: String?
    var strength: Double?
    var eta: Double?
    var clipSkip: Int?
    var model: String?
    var vaeTiling: Bool?
    var previewEvery: Int?
    var previewDecodeEvery: Int?
    var previewUpscale: Bool?
    var keepPartial: Bool?
    /// "none" (the default: diffusers' encoding) or "a1111".
    var promptWeighting: PromptWeighting?
    var padCondUncond: Bool?
    /// `[{"name": "style", "multiplier": 0.8}]`: LoRAs from the server's LoRA folder.
    var loras: [LoRAEntry]?

    struct LoRAEntry: Decodable {
        var name: String
        /// Both components' multiplier (default 1); `unet_multiplier` overrides it for the denoiser.
        var multiplier: Float?
        var unetMultiplier: Float?
        enum CodingKeys: String, CodingKey { case name, multiplier, unetMultiplier = "unet_multiplier" }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case prompt, width, height, steps, scheduler, seed, mask, strength, eta, model
        case negativePrompt = "negative_prompt", guidanceScale = "guidance_scale", guidanceRescale = "guidance_rescale"
        case numImages = "num_images", initImage = "init_image", clipSkip = "clip_skip", vaeTiling = "vae_tiling"
        case previewEvery = "preview_every", previewDecodeEvery = "preview_decode_every", previewUpscale = "preview_upscale"
        case keepPartial = "keep_partial", promptWeighting = "prompt_weighting", padCondUncond = "pad_cond_uncond", loras
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        prompt = try c.decode(String.self, forKey: .prompt)
        negativePrompt = try c.decodeIfPresent(String.self, forKey: .negativePrompt)
        width = try c.decodeIfPresent(Int.self, forKey: .width)
        height = try c.decodeIfPresent(Int.self, forKey: .height)
        steps = try c.decodeIfPresent(Int.self, forKey: .steps)
        guidanceScale = try c.decodeIfPresent(Double.self, forKey: .guidanceScale)
        guidanceRescale = try c.decodeIfPresent(Double.self, forKey: .guidanceRescale)
        scheduler = try c.decodeIfPresent(String.self, forKey: .scheduler)
        // Seeds span UInt64 (beyond Int64's range), and -1 (any negative) means random.
        if let s = try? c.decodeIfPresent(UInt64.self, forKey: .seed) {
            seed = s
        } else {
            let s = try c.decodeIfPresent(Int64.self, forKey: .seed)
            seed = s.flatMap { $0 < 0 ? nil : UInt64($0) }
        }
        numImages = try c.decodeIfPresent(Int.self, forKey: .numImages)
        initImage = try c.decodeIfPresent(String.self, forKey: .initImage)
        mask = try c.decodeIfPresent(String.self, forKey: .mask)
        strength = try c.decodeIfPresent(Double.self, forKey: .strength)
        eta = try c.decodeIfPresent(Double.self, forKey: .eta)
        clipSkip = try c.decodeIfPresent(Int.self, forKey: .clipSkip)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        vaeTiling = try c.decodeIfPresent(Bool.self, forKey: .vaeTiling)
        previewEvery = try c.decodeIfPresent(Int.self, forKey: .previewEvery)
        previewDecodeEvery = try c.decodeIfPresent(Int.self, forKey: .previewDecodeEvery)
        previewUpscale = try c.decodeIfPresent(Bool.self, forKey: .previewUpscale)
        keepPartial = try c.decodeIfPresent(Bool.self, forKey: .keepPartial)
        promptWeighting = try c.decodeIfPresent(PromptWeighting.self, forKey: .promptWeighting)
        padCondUncond = try c.decodeIfPresent(Bool.self, forKey: .padCondUncond)
        loras = try c.decodeIfPresent([LoRAEntry].self, forKey: .loras)
    }

    /// Decodes a body, turning every decoding failure into a 400 that names the field.
    static func decode(_ bytes: some Collection<UInt8>) throws(APIError) -> JobRequestBody {
        let data = Data(bytes)
        guard !data.isEmpty else { throw .badRequest("the request body is empty; send a JSON object with at least \"prompt\"", field: nil, code: "invalid_json") }
        do {
            return try JSONDecoder().decode(JobRequestBody.self, from: data)
        } catch let error as DecodingError {
            throw APIError(decoding: error)
        } catch {
            throw .badRequest("the body is not valid JSON: \(error)", field: nil, code: "invalid_json")
        }
    }

    /// The service's job spec; images are decoded here (a 400 naming the field when they cannot be).
    func jobSpec() throws(APIError) -> JobSpec {
        var request = GenerationRequest(prompt: prompt, negativePrompt: negativePrompt)
        request.width = width
        request.height = height
        request.steps = steps
        request.guidanceScale = guidanceScale
        request.guidanceRescale = guidanceRescale
        request.scheduler = scheduler.flatMap { $0.isEmpty ? nil : $0 }
        if let n = numImages {
            guard n >= 1 else { throw .badRequest("num_images: \(n) must be at least 1", field: "num_images") }
            request.imagesPerPrompt = n
        }
        if let eta { request.eta = eta }
        if let clipSkip {
            guard clipSkip >= 0 else { throw .badRequest("clip_skip: \(clipSkip) must be 0 or more", field: "clip_skip") }
            request.clipSkip = clipSkip
        }
        request.strength = strength
        request.vaeTiling = vaeTiling ?? false
        request.promptWeighting = promptWeighting ?? .none
        request.padCondUncond = padCondUncond ?? false
        if let initImage { request.initImage = try Self.decodeImage(initImage, field: "init_image") }
        if let mask { request.mask = try Self.decodeImage(mask, field: "mask") }
        for (name, value) in [("preview_every", previewEvery), ("preview_decode_every", previewDecodeEvery)] {
            if let value, value < 0 { throw .badRequest("\(name): \(value) must be 0 (off) or a positive step interval", field: name) }
        }
        let preview = PreviewOptions(every: previewEvery ?? 0, decodeEvery: previewDecodeEvery ?? 0, upscale: previewUpscale ?? false)
        var references: [LoRAReference] = []
        for entry in loras ?? [] {
            for v in [entry.multiplier, entry.unetMultiplier].compactMap({ $0 }) where !v.isFinite {
                throw .badRequest("loras: the multiplier of \(entry.name) is not finite", field: "loras")
            }
            references.append(LoRAReference(name: entry.name, textEncoderMultiplier: entry.multiplier ?? 1,
                                            denoiserMultiplier: entry.unetMultiplier ?? entry.multiplier ?? 1))
        }
        return JobSpec(request: request, seed: seed, model: model.flatMap { $0.isEmpty ? nil : $0 }, preview: preview,
                       keepPartialOnCancel: keepPartial ?? true, loras: references)
    }

    /// A PNG or JPEG sent as base64, raw or as a `data:image/...;base64,` URL. Never a path or a URL
    /// to fetch: the server reads no file a request names.
    static func decodeImage(_ text: String, field: String) throws(APIError) -> RGBImage {
        var payload = Substring(text)
        if payload.hasPrefix("data:") {
            guard let comma = payload.firstIndex(of: ","), payload[..<comma].hasSuffix(";base64") else {
                throw .badRequest("\(field): a data URL must be data:image/png;base64,... or data:image/jpeg;base64,...", field: field)
            }
            payload = payload[payload.index(after: comma)...]
        }
        let cleaned = payload.filter { !$0.isWhitespace }
        guard !cleaned.isEmpty, let data = Data(base64Encoded: cleaned) ?? Data(base64Encoded: Self.padded(cleaned)) else {
            throw .badRequest("\(field): not valid base64", field: field)
        }
        do {
            return try ImageFile.decode([UInt8](data), path: field).image
        } catch {
            throw .badRequest("\(field): cannot decode the image (\(error))", field: field)
        }
    }

    static func padded(_ s: String) -> String {
        let r = s.count % 4
        return r == 0 ? s : s + String(repeating: "=", count: 4 - r)
    }
}

extension APIError {
    /// 400 naming the field a decoding failure is about.
    init(decoding error: DecodingError) {
        func name(_ path: [any CodingKey], _ extra: (any CodingKey)? = nil) -> String? {
            let keys = path + (extra.map { [$0] } ?? [])
            return keys.isEmpty ? nil : keys.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case let .keyNotFound(key, ctx):
            let field = name(ctx.codingPath, key) ?? key.stringValue
            self = .badRequest("\(field): required", field: field, code: "missing_field")
        case let .typeMismatch(type, ctx), let .valueNotFound(type, ctx):
            let field = name(ctx.codingPath)
            if let field {
                self = .badRequest("\(field): expected \(Self.jsonTypeName(type))", field: field, code: "invalid_type")
            } else {
                self = .badRequest("the body must be a JSON object", field: nil, code: "invalid_json")
            }
        case let .dataCorrupted(ctx):
            if let field = name(ctx.codingPath) {
                self = .badRequest("\(field): \(ctx.debugDescription)", field: field, code: "invalid_type")
            } else {
                self = .badRequest("the body is not valid JSON", field: nil, code: "invalid_json")
            }
        @unknown default:
            self = .badRequest("the body could not be read: \(error)", field: nil, code: "invalid_json")
        }
    }

    static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type, is UInt64.Type: "an integer"
        case is Double.Type: "a number"
        default: "a JSON object"
        }
    }
}

// MARK: - Responses

/// ISO 8601 with milliseconds, UTC.
func iso8601(_ date: Date?) -> String? {
    date.map { $0.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)) }
}

/// The job object (`GET /v1/jobs/{id}`, cancel, and the `done` / `failed` / `cancelled` events).
struct JobJSON: Encodable {
    struct Timings: Encodable {
        var textEncoder: Double
        var denoising: Double
        var vaeEncode: Double
        var vaeDecode: Double
        var steps: Int
        enum CodingKeys: String, CodingKey {
            case denoising, steps
            case textEncoder = "text_encoder", vaeEncode = "vae_encode", vaeDecode = "vae_decode"
        }
    }

    var id: String
    var status: String
    var model: String
    var queuePosition: Int?
    var step: Int?
    var totalSteps: Int?
    var secondsPerStep: Double?
    var etaSeconds: Double?
    var seed: UInt64
    var error: String?
    var images: [String]
    var partial: Bool
    var warnings: [String]
    var created: String?
    var started: String?
    var finished: String?
    var timings: Timings?
    var width: Int?
    var height: Int?
    var steps: Int?

    init(_ s: JobSnapshot) {
        id = s.id.rawValue
        status = s.status.rawValue
        model = s.model
        queuePosition = s.queuePosition
        step = s.progress?.step
        totalSteps = s.progress?.totalSteps ?? s.resolved?.stepsToRun
        secondsPerStep = s.progress?.secondsPerStep
        etaSeconds = s.status.isFinished ? nil : s.progress?.etaSeconds
        seed = s.seed
        error = s.error
        images = (0..<s.imageCount).map { JobRoutes.imagePath(s.id, index: $0) }
        partial = s.partial
        warnings = s.warnings
        created = iso8601(s.created)
        started = iso8601(s.started)
        finished = iso8601(s.finished)
        timings = s.timings.map {
            Timings(textEncoder: $0.textEncoder, denoising: $0.denoising, vaeEncode: $0.vaeEncode, vaeDecode: $0.vaeDecode, steps: $0.steps)
        }
        width = s.resolved?.width
        height = s.resolved?.height
        steps = s.resolved?.steps
    }

    enum CodingKeys: String, CodingKey {
        case id, status, model, step, seed, error, images, partial, warnings, created, started, finished, timings, width, height, steps
        case queuePosition = "queue_position", totalSteps = "total_steps", secondsPerStep = "seconds_per_step", etaSeconds = "eta_seconds"
    }

    /// Every key always present (null when unknown).
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(status, forKey: .status)
        try c.encode(model, forKey: .model)
        try c.encode(queuePosition, forKey: .queuePosition)
        try c.encode(step, forKey: .step)
        try c.encode(totalSteps, forKey: .totalSteps)
        try c.encode(secondsPerStep, forKey: .secondsPerStep)
        try c.encode(etaSeconds, forKey: .etaSeconds)
        try c.encode(seed, forKey: .seed)
        try c.encode(error, forKey: .error)
        try c.encode(images, forKey: .images)
        try c.encode(partial, forKey: .partial)
        try c.encode(warnings, forKey: .warnings)
        try c.encode(created, forKey: .created)
        try c.encode(started, forKey: .started)
        try c.encode(finished, forKey: .finished)
        try c.encode(timings, forKey: .timings)
        try c.encode(width, forKey: .width)
        try c.encode(height, forKey: .height)
        try c.encode(steps, forKey: .steps)
    }
}

/// The answer to `POST /v1/jobs` (202).
struct JobCreatedJSON: Encodable {
    var id: String
    var status: String
    var queuePosition: Int?
    var created: String?
    var pollURL: String
    var eventsURL: String

    init(_ s: JobSnapshot) {
        id = s.id.rawValue
        status = s.status.rawValue
        queuePosition = s.queuePosition
        created = iso8601(s.created)
        pollURL = JobRoutes.jobPath(s.id)
        eventsURL = JobRoutes.jobPath(s.id) + "/events"
    }

    enum CodingKeys: String, CodingKey {
        case id, status, created
        case queuePosition = "queue_position", pollURL = "poll_url", eventsURL = "events_url"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(status, forKey: .status)
        try c.encode(queuePosition, forKey: .queuePosition)
        try c.encode(created, forKey: .created)
        try c.encode(pollURL, forKey: .pollURL)
        try c.encode(eventsURL, forKey: .eventsURL)
    }
}
