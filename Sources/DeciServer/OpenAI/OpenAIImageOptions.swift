// What an OpenAI images request asks for, checked field by field, and the service job it becomes.
// Shared by generations (JSON) and edits (multipart). OpenAI's own fields are honoured where the
// engine can (prompt, n, size, response_format, output_format, output_compression, model, stream,
// partial_images), accepted and ignored where they describe OpenAI's models (quality, style, user,
// background, moderation, ...: never read, like every unknown field), and refused where honouring
// them is impossible (webp and other output formats: no encoder backs them). The engine's own
// controls come as extension fields, which the `openai` client sends through `extra_body`.
import DeciDiffusion
import Foundation

enum OpenAIResponseFormat: String {
    case b64JSON = "b64_json"
    case url
}

enum OpenAIOutputFormat: String {
    case png, jpeg
}

struct OpenAIImageOptions {
    var prompt: String
    var n = 1
    /// nil: the model's default size (absent or "auto"); for edits, the image's own size.
    var size: (width: Int, height: Int)?
    var responseFormat = OpenAIResponseFormat.b64JSON
    var outputFormat = OpenAIOutputFormat.png
    /// OpenAI's output_compression (0-100, default 100), used as JPEG quality.
    var compression = 100
    /// The catalog's name for the model (the default one when the request named none).
    var model: String
    var stream = false
    /// Previews to stream before the final image (0-3).
    var partialImages = 0
    /// Extensions (`extra_body`).
    var seed: UInt64?
    var negativePrompt: String?
    var steps: Int?
    var guidanceScale: Double?
    var scheduler: String?

    /// Reads and checks every field the server honours; a field it ignores is never read, so any
    /// value of it is accepted.
    init(_ fields: OpenAIFields, service: any JobQueue) throws(APIError) {
        guard let prompt = try fields.string("prompt") else { throw .openAI("prompt: required", param: "prompt", code: "missing_field") }
        guard !prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw .openAI("prompt: must not be empty", param: "prompt")
        }
        self.prompt = prompt
        let maxBatch = service.configuration.limits.maxBatch
        if let n = try fields.int("n") {
            guard (1...maxBatch).contains(n) else {
                throw .openAI("n: \(n) is outside 1...\(maxBatch) (the server's --max-batch)", param: "n")
            }
            self.n = n
        }
        let requested = try fields.string("model").flatMap { $0.isEmpty ? nil : $0 }
        do { model = try service.catalog.entry(named: requested).name } catch { throw APIError(openAI: error) }
        if let text = try fields.string("size") {
            size = try Self.parseSize(text, pipeline: service.loadedPipeline(model), limits: service.configuration.limits)
        }
        if let text = try fields.string("response_format") {
            guard let format = OpenAIResponseFormat(rawValue: text) else {
                throw .openAI("response_format: \"\(text)\" is not one of b64_json, url", param: "response_format")
            }
            responseFormat = format
        }
        if let text = try fields.string("output_format") {
            guard let format = OpenAIOutputFormat(rawValue: text) else {
                throw .openAI("output_format: \"\(text)\" is not supported here: this server encodes png and jpeg only (no webp encoder)",
                              param: "output_format")
            }
            outputFormat = format
        }
        if let c = try fields.int("output_compression") {
            guard (0...100).contains(c) else { throw .openAI("output_compression: \(c) is outside 0...100", param: "output_compression") }
            compression = c
        }
        if responseFormat == .url && outputFormat != .png {
            // The URL is the job's image route, which serves the PNG the service keeps.
            throw .openAI("output_format: \(outputFormat.rawValue) is only available with response_format b64_json; url responses are PNG",
                          param: "output_format")
        }
        stream = try fields.bool("stream") ?? false
        if let k = try fields.int("partial_images") {
            guard (0...3).contains(k) else { throw .openAI("partial_images: \(k) is outside 0...3", param: "partial_images") }
            partialImages = k
        }
        if stream && responseFormat == .url {
            throw .openAI("response_format: url cannot be streamed; stream events carry b64_json", param: "response_format")
        }
        seed = try fields.seed("seed")
        negativePrompt = try fields.string("negative_prompt")
        steps = try fields.int("steps")
        guidanceScale = try fields.double("guidance_scale")
        scheduler = try fields.string("scheduler").flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The generation request (the edit route adds its image and mask). Ranges of steps, guidance
    /// scale and scheduler names are the library's to check: its messages name the field.
    var generationRequest: GenerationRequest {
        var request = GenerationRequest(prompt: prompt, negativePrompt: negativePrompt)
        request.imagesPerPrompt = n
        request.width = size?.width
        request.height = size?.height
        request.steps = steps
        request.guidanceScale = guidanceScale
        request.scheduler = scheduler
        return request
    }

    /// "WxH" or "auto". With the model loaded, a size it cannot make is refused here with its rule;
    /// otherwise the service checks it when the job starts.
    static func parseSize(_ text: String, pipeline: DiffusionPipeline?, limits: GenerationLimits) throws(APIError) -> (width: Int, height: Int)? {
        if text.isEmpty || text == "auto" { return nil }
        let multiple = pipeline?.imageSizeMultiple ?? 8
        let example = pipeline.map { "\($0.defaults.width)x\($0.defaults.height)" } ?? "512x512"
        let rule = "width and height must be positive multiples of \(multiple) up to 4096, with at most \(limits.maxPixelsPerImage) pixels (--max-pixels), e.g. \(example); or auto for the model's default"
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]) else {
            throw .openAI("size: \"\(text)\" is not WIDTHxHEIGHT: \(rule)", param: "size")
        }
        guard w > 0, h > 0, w % multiple == 0, h % multiple == 0, w <= 4096, h <= 4096, w * h <= limits.maxPixelsPerImage else {
            throw .openAI("size: \(text) is not a size this model can make: \(rule)", param: "size")
        }
        return (w, h)
    }

    /// The OpenAI field a library message is about (its messages use the native API's names).
    static func openAIName(ofNative field: String) -> String {
        switch field {
        case "width", "height": "size"
        case "num_images": "n"
        case "init_image": "image"
        default: field
        }
    }
}
