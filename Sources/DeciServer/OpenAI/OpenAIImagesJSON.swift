// What the OpenAI image routes send: the images response and the streamed events, in the shapes
// the `openai` SDKs read (`ImagesResponse`, `ImageGenPartialImageEvent`, `ImageGenCompletedEvent`
// and their image_edit twins).
import Foundation

/// `{created, data: [{b64_json | url}], output_format, size, background}`.
struct OpenAIImagesResponseJSON: Encodable {
    struct Item: Encodable {
        var b64JSON: String?
        var url: String?
        enum CodingKeys: String, CodingKey { case b64JSON = "b64_json", url }
    }
    var created: Int
    var data: [Item]
    var outputFormat: String
    var size: String
    /// The engine paints every pixel: never transparent.
    var background = "opaque"
    enum CodingKeys: String, CodingKey {
        case created, data, size, background
        case outputFormat = "output_format"
    }
}

/// One Server-Sent Event of a streamed answer: `event: <type>` and its JSON. The client picks the
/// event class by the `type` field of the data; the `event:` line is for other readers.
struct OpenAIImageEvent: Encodable {
    /// `image_generation` or `image_edit`: the prefix of the event types.
    var type: String
    var b64JSON: String
    var partialImageIndex: Int?
    var createdAt: Int
    var outputFormat: String
    var size: String
    var background = "opaque"
    var quality = "auto"
    /// On the completed event: the SDK's `usage` object. The engine counts no tokens, so zeros.
    var usage: Usage?

    struct Usage: Encodable {
        struct Details: Encodable {
            var imageTokens = 0
            var textTokens = 0
            enum CodingKeys: String, CodingKey { case imageTokens = "image_tokens", textTokens = "text_tokens" }
        }
        var inputTokens = 0
        var inputTokensDetails = Details()
        var outputTokens = 0
        var totalTokens = 0
        enum CodingKeys: String, CodingKey {
            case inputTokens = "input_tokens", inputTokensDetails = "input_tokens_details", outputTokens = "output_tokens",
                 totalTokens = "total_tokens"
        }
    }

    enum CodingKeys: String, CodingKey {
        case type, size, background, quality, usage
        case b64JSON = "b64_json", partialImageIndex = "partial_image_index", createdAt = "created_at", outputFormat = "output_format"
    }

    static func partial(_ prefix: String, index: Int, b64: String, created: Int, format: String, size: String) -> OpenAIImageEvent {
        OpenAIImageEvent(type: prefix + ".partial_image", b64JSON: b64, partialImageIndex: index, createdAt: created,
                         outputFormat: format, size: size)
    }

    static func completed(_ prefix: String, b64: String, created: Int, format: String, size: String) -> OpenAIImageEvent {
        OpenAIImageEvent(type: prefix + ".completed", b64JSON: b64, createdAt: created, outputFormat: format, size: size, usage: Usage())
    }

    /// The SSE frame: `event: <type>`, `data: <one JSON line>`, a blank line.
    var frame: String { Self.frame(name: type, self) }

    static func frame(name: String, _ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return "event: \(name)\ndata: \(data)\n\n"
    }

    /// A failure after the stream began: the `openai` client raises an APIError for an `error`
    /// event, with the message and the error object.
    static func errorFrame(_ error: APIError) -> String {
        struct Payload: Encodable {
            var type = "error"
            var error: OpenAIErrors.Body.Inner
        }
        let inner = OpenAIErrors.Body.Inner(message: error.message, type: OpenAIErrors.type(for: error.status), param: error.field, code: error.code)
        return frame(name: "error", Payload(error: inner))
    }
}
